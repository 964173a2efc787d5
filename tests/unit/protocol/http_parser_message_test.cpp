// MessageParser: whole messages from slices, the same answer for every split, pipelining, EOF.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "protocol/http_parser.h"

using namespace protocol;

namespace {

std::string describe_headers(const Headers& headers) {
  std::string out;
  for (const Header& header : headers) out += "[" + header.name + "|" + header.value + "]";
  return out;
}

std::string describe_head(const RequestHead& head) {
  return head.method + " " + head.target + " 1." + std::to_string(head.version_minor) + " " +
         describe_headers(head.headers);
}

std::string describe_head(const ResponseHead& head) {
  return "1." + std::to_string(head.version_minor) + " " + std::to_string(head.status) + " " +
         head.reason + " " + describe_headers(head.headers);
}

// Everything a caller can observe, as one comparable string. Not unconsumed(): feeds after the end
// are ignored, so what is left over depends on the slices by design.
template <class Head>
std::string outcome(const MessageParser<Head>& parser, ParseStatus status) {
  std::string out = "status=" + std::to_string(static_cast<int>(status));
  if (status == ParseStatus::kError) return out + " error=" + std::string(describe(parser.error()));
  if (status == ParseStatus::kIncomplete) return out;
  const auto& message = parser.message();
  return out + " consumed=" + std::to_string(parser.consumed()) +
         " head=" + describe_head(message.head) + " body=" + message.body +
         " trailers=" + describe_headers(message.trailers);
}

template <class Head>
std::string parse_slices(const std::vector<std::string_view>& slices, const Limits& limits,
                         std::string_view method, bool at_eof) {
  MessageParser<Head> parser(limits, method);
  ParseStatus status = ParseStatus::kIncomplete;
  for (std::string_view slice : slices) status = parser.feed(slice);
  if (at_eof) status = parser.finish();
  return outcome(parser, status);
}

// Feeds `bytes` whole, split in two at every boundary, and one byte at a time; all must agree.
template <class Head>
std::string check_every_split(std::string_view bytes, const Limits& limits = {},
                              std::string_view method = "GET") {
  for (bool at_eof : {false, true}) {
    std::string whole = parse_slices<Head>({bytes}, limits, method, at_eof);
    for (std::size_t i = 0; i <= bytes.size(); ++i) {
      CAPTURE(i);
      CHECK(parse_slices<Head>({bytes.substr(0, i), bytes.substr(i)}, limits, method, at_eof) ==
            whole);
    }
    std::vector<std::string_view> bytewise;
    for (std::size_t i = 0; i < bytes.size(); ++i) bytewise.push_back(bytes.substr(i, 1));
    CHECK(parse_slices<Head>(bytewise, limits, method, at_eof) == whole);
  }
  return parse_slices<Head>({bytes}, limits, method, false);
}

Limits small_limits() {
  Limits limits;
  limits.max_head_bytes = 48;
  limits.max_headers = 2;
  limits.max_body_bytes = 8;
  return limits;
}

}  // namespace

TEST_CASE("message parser: every split of a request gives the same result") {
  const char* samples[] = {
      "GET / HTTP/1.1\r\nHost: a\r\n\r\n",
      "\r\nGET /x?y HTTP/1.0\nHost: a\n\n",
      "POST /p HTTP/1.1\r\nContent-Length: 5\r\n\r\nhelloGET / HTTP/1.1\r\n\r\n",
      "POST /c HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3;x=y\r\nabc\r\n2\nde\n0\r\nT: 1\n\nX",
      "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 1\r\n\r\nx",
      "POST / HTTP/1.1\r\nContent-Length: 1\r\nTransfer-Encoding: chunked\r\n\r\n",
      "GET / HTTP/1.1\r\nA: b\r\n folded\r\n\r\n",
      "GET / HTTP/3.0\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc",
      "POST / HTTP/1.1\r\nContent-Length: 10\r\n\r\nabc",
      "GET / HTTP/1.1\r\nHost: a\r\n",
  };
  for (const char* sample : samples) {
    CAPTURE(sample);
    check_every_split<RequestHead>(sample);
  }
}

TEST_CASE("message parser: every split agrees at the limits") {
  const char* samples[] = {
      "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n",
      "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
      "GET / HTTP/1.1\r\nX: 0123456789012345678901234567890\r\n\r\n",
      "GET / HTTP/1.1\r\nX: 01234567890123456789012345678901234567890123456789",
      "POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\n123456789",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n5\r\nefghi\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n4\r\nabcd\r\n4\r\nefgh\r\n0\r\n\r\n",
      "POST / HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",
  };
  for (const char* sample : samples) {
    CAPTURE(sample);
    check_every_split<RequestHead>(sample, small_limits());
  }
}

TEST_CASE("message parser: every split of a response gives the same result") {
  const char* samples[] = {
      "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi",
      "HTTP/1.1 200 OK\nContent-Type: text/plain\n\nuntil the end",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
      "HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n",
      "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n",
      "HTTP/1.1 2OO OK\r\n\r\n",
      "HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n",
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n",
  };
  for (const char* sample : samples) {
    CAPTURE(sample);
    check_every_split<ResponseHead>(sample);
  }
  check_every_split<ResponseHead>("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nHTTP/", {}, "HEAD");
  check_every_split<ResponseHead>("HTTP/1.1 200 OK\r\n\r\n123456789", small_limits());
}

TEST_CASE("message parser: pipelined requests") {
  std::string first = "POST /a HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc";
  std::string second = "GET /b HTTP/1.1\r\nHost: h\r\n\r\n";
  RequestParser parser;
  REQUIRE(parser.feed(first + second) == ParseStatus::kComplete);
  CHECK(parser.consumed() == first.size());
  CHECK(parser.unconsumed() == second);
  CHECK(parser.message().body == "abc");
  RequestParser next;
  REQUIRE(next.feed(parser.unconsumed()) == ParseStatus::kComplete);
  CHECK(next.message().head.target == "/b");
  CHECK(next.consumed() == second.size());
  CHECK(next.unconsumed().empty());
}

TEST_CASE("message parser: feeds after the end are ignored") {
  RequestParser parser;
  REQUIRE(parser.feed("GET / HTTP/1.1\r\n\r\n") == ParseStatus::kComplete);
  CHECK(parser.feed("garbage") == ParseStatus::kComplete);
  CHECK(parser.consumed() == 18);
  RequestParser failed;
  REQUIRE(failed.feed("GET / HTTP/9.9\r\n\r\n") == ParseStatus::kError);
  CHECK(failed.feed("GET / HTTP/1.1\r\n\r\n") == ParseStatus::kError);
  CHECK(failed.error() == ParseError::kBadVersion);
}

TEST_CASE("message parser: a large body in slices keeps every byte") {
  std::string body;
  for (int i = 0; i < 100000; ++i) body += static_cast<char>('a' + i % 26);
  std::string bytes = "HTTP/1.1 200 OK\r\nContent-Length: " + std::to_string(body.size()) +
                      "\r\n\r\n" + body + "HTTP/1.1 204 No Content\r\n\r\n";
  ResponseParser parser;
  ParseStatus status = ParseStatus::kIncomplete;
  for (std::size_t i = 0; i < bytes.size(); i += 1000) status = parser.feed(bytes.substr(i, 1000));
  REQUIRE(status == ParseStatus::kComplete);
  CHECK(parser.message().body == body);
  CHECK(parser.consumed() == bytes.size() - 27);
  CHECK(parser.unconsumed() == "HTTP/1.1 204 No Content\r\n\r\n");
}

TEST_CASE("message parser: finish") {
  SUBCASE("nothing received") {
    ResponseParser parser;
    CHECK(parser.finish() == ParseStatus::kIncomplete);
  }
  SUBCASE("until-close body completes") {
    ResponseParser parser;
    CHECK(parser.feed("HTTP/1.1 200 OK\r\n\r\nsome") == ParseStatus::kIncomplete);
    CHECK(parser.feed(" more") == ParseStatus::kIncomplete);
    REQUIRE(parser.finish() == ParseStatus::kComplete);
    CHECK(parser.message().body == "some more");
    CHECK(parser.consumed() == 28);
  }
  SUBCASE("head cut short") {
    ResponseParser parser;
    parser.feed("HTTP/1.1 200 OK\r\nA: b");
    CHECK(parser.finish() == ParseStatus::kError);
    CHECK(parser.error() == ParseError::kBadHeader);
  }
  SUBCASE("a fault in a head cut short is named") {
    RequestParser parser;
    parser.feed("GET / HTTP/2.0\r\nHost: x\r\n");
    CHECK(parser.finish() == ParseStatus::kError);
    CHECK(parser.error() == ParseError::kBadVersion);
  }
  SUBCASE("chunked body cut short") {
    ResponseParser parser;
    parser.feed("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab");
    CHECK(parser.finish() == ParseStatus::kError);
    CHECK(parser.error() == ParseError::kBadChunk);
  }
  SUBCASE("length body cut short") {
    ResponseParser parser;
    parser.feed("HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nab");
    CHECK(parser.finish() == ParseStatus::kError);
    CHECK(parser.error() == ParseError::kBadContentLength);
  }
  SUBCASE("a complete message stays complete") {
    RequestParser parser;
    parser.feed("GET / HTTP/1.1\r\n\r\n");
    CHECK(parser.finish() == ParseStatus::kComplete);
  }
}

TEST_CASE("message parser: limits") {
  SUBCASE("head too large while trickling in") {
    RequestParser parser;
    parser.feed("GET / HTTP/1.1\r\nX: ");
    ParseStatus status = ParseStatus::kIncomplete;
    for (int i = 0; i < 70 && status == ParseStatus::kIncomplete; ++i) {
      status = parser.feed(std::string(1024, 'a'));
    }
    CHECK(status == ParseStatus::kError);
    CHECK(parser.error() == ParseError::kHeadTooLarge);
  }
  SUBCASE("too many headers") {
    RequestParser parser(small_limits());
    CHECK(parser.feed("GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n") == ParseStatus::kError);
    CHECK(parser.error() == ParseError::kTooManyHeaders);
  }
  SUBCASE("announced Content-Length over the body limit fails before the body") {
    RequestParser parser(small_limits());
    CHECK(parser.feed("POST / HTTP/1.1\r\nContent-Length: 9\r\n\r\n") == ParseStatus::kError);
    CHECK(parser.error() == ParseError::kBodyTooLarge);
  }
  SUBCASE("until-close body over the limit") {
    ResponseParser parser(small_limits());
    CHECK(parser.feed("HTTP/1.1 200 OK\r\n\r\n12345678") == ParseStatus::kIncomplete);
    CHECK(parser.feed("9") == ParseStatus::kError);
    CHECK(parser.error() == ParseError::kBodyTooLarge);
  }
}

TEST_CASE("message parser: a HEAD response has no body") {
  ResponseParser parser({}, "HEAD");
  REQUIRE(parser.feed("HTTP/1.1 200 OK\r\nContent-Length: 99\r\n\r\n") == ParseStatus::kComplete);
  CHECK(parser.message().body.empty());
}
