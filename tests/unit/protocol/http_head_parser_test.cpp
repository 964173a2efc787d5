// HeadParser: the incremental head parse gives, after every slice, what a parse of all the bytes so
// far from their start gives, and does so scanning each byte once.
#include <doctest/doctest.h>

#include <string>
#include <vector>

#include "protocol/http_parser.h"

using namespace protocol;

namespace {

std::string describe(const RequestHead& head) {
  std::string out = head.method + " " + head.target + " 1." + std::to_string(head.version_minor);
  for (const Header& header : head.headers) out += " [" + header.name + "|" + header.value + "]";
  return out;
}

std::string describe(const ResponseHead& head) {
  std::string out = "1." + std::to_string(head.version_minor) + " " + std::to_string(head.status) +
                    " " + head.reason;
  for (const Header& header : head.headers) out += " [" + header.name + "|" + header.value + "]";
  return out;
}

template <class Head>
HeadResult<Head> parse_whole(std::string_view bytes, const Limits& limits) {
  if constexpr (std::is_same_v<Head, RequestHead>) {
    return parse_request_head(bytes, limits);
  } else {
    return parse_response_head(bytes, limits);
  }
}

// What a caller can observe, as one comparable string.
template <class Head>
std::string outcome(ParseStatus status, ParseError error, std::size_t consumed, const Head& head) {
  if (status == ParseStatus::kIncomplete) return "incomplete";
  if (status == ParseStatus::kError) return "error: " + std::string(protocol::describe(error));
  return "complete " + std::to_string(consumed) + " " + describe(head);
}

template <class Head>
std::string whole_outcome(std::string_view bytes, const Limits& limits) {
  auto result = parse_whole<Head>(bytes, limits);
  return outcome(result.status, result.error, result.consumed, result.head);
}

// Feeds `bytes` to one HeadParser at the given cut points (growing prefixes, as a connection's
// buffer grows); after each, the answer must be the whole parse of that prefix.
template <class Head>
void check_cuts(std::string_view bytes, const std::vector<std::size_t>& cuts, const Limits& limits) {
  HeadParser<Head> parser(limits);
  for (std::size_t cut : cuts) {
    CAPTURE(cut);
    std::string_view prefix = bytes.substr(0, cut);
    ParseStatus status = parser.parse(prefix);
    std::string got = outcome(status, parser.error(), parser.consumed(), parser.head());
    std::string want = whole_outcome<Head>(prefix, limits);
    // After the end, the parser keeps its answer: the whole parse of any longer input agrees.
    REQUIRE(got == want);
  }
}

// Every split in two, and a byte at a time.
template <class Head>
void check_every_split(std::string_view bytes, const Limits& limits = {}) {
  CAPTURE(bytes);
  for (std::size_t i = 0; i <= bytes.size(); ++i) check_cuts<Head>(bytes, {i, bytes.size()}, limits);
  std::vector<std::size_t> bytewise;
  for (std::size_t i = 0; i <= bytes.size(); ++i) bytewise.push_back(i);
  check_cuts<Head>(bytes, bytewise, limits);
  SUBCASE("the same prefix twice changes nothing") {
    std::vector<std::size_t> twice;
    for (std::size_t i = 0; i <= bytes.size(); ++i) twice.insert(twice.end(), {i, i});
    check_cuts<Head>(bytes, twice, limits);
  }
}

Limits small_limits() {
  Limits limits;
  limits.max_head_bytes = 40;
  limits.max_headers = 2;
  return limits;
}

}  // namespace

TEST_CASE("head parser: every split of a request head agrees with the whole parse") {
  for (std::string_view head : {
           "GET /a?b=c HTTP/1.1\r\nHost: x\r\nX-Y:  v  \r\n\r\nBODY",
           "POST / HTTP/1.0\nContent-Length: 3\n\nabc",  // bare LF
           "\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\n\r\n",   // empty lines before the request line
           "GET / HTTP/1.1\r\nHost: x\r\n\n",             // blank line by bare LF after CRLF lines
           "GET / HTTP/1.1\r\n\r\n",                      // no headers
       }) {
    check_every_split<RequestHead>(head);
  }
}

TEST_CASE("head parser: every split agrees on errors, and reports them with their line") {
  for (std::string_view head : {
           "GET / HTTP/2.0\r\nHost: x\r\n\r\n",     // bad version
           "G@T / HTTP/1.1\r\n\r\n",                // bad method
           "GET / HTTP/1.1\r\nX : y\r\n\r\n",       // space before the colon
           "GET / HTTP/1.1\r\nA: 1\r\n folded\r\n\r\n",  // obs-fold
           "GET / HTTP/1.1\r\nA: o\x01k\r\n\r\n",   // control character in a value
           "GET / HTTP/1.1\r\nA: 1\rB: 2\r\n\r\n",  // bare CR
       }) {
    check_every_split<RequestHead>(head);
  }
  SUBCASE("a bad request line fails as soon as its line ends, without waiting for the head") {
    RequestHeadParser parser;
    CHECK(parser.parse("GET / HTTP/9.9") == ParseStatus::kIncomplete);
    CHECK(parser.parse("GET / HTTP/9.9\r\n") == ParseStatus::kError);
    CHECK(parser.error() == ParseError::kBadVersion);
  }
}

TEST_CASE("head parser: every split agrees at the limits") {
  Limits limits = small_limits();
  for (std::string_view head : {
           "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\n\r\n",           // 30 bytes, two headers: fits
           "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n",   // one header too many
           "GET / HTTP/1.1\r\nA: 0123456789012345678901\r\n\r\n",  // 42 bytes: too large
           "GET / HTTP/1.1\r\nA: 01234567890123456\r\n\r\n",   // exactly 40 bytes
           "GET /0123456789012345678901234567890123456789",   // no line end within the limit
       }) {
    check_every_split<RequestHead>(head, limits);
  }
}

TEST_CASE("head parser: every split of a response head agrees with the whole parse") {
  for (std::string_view head : {
           "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok",
           "HTTP/1.0 204\r\n\r\n",
           "HTTP/1.1 299 Custom Thing\nX: y\n\n",
           "\r\nHTTP/1.1 200 OK\r\n\r\n",  // responses get no empty lines first
           "HTTP/1.1 20 OK\r\n\r\n",
       }) {
    check_every_split<ResponseHead>(head);
  }
  check_every_split<ResponseHead>("HTTP/1.1 200 OK\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n", small_limits());
}

TEST_CASE("head parser: a 64 KiB head a byte at a time is parsed") {
  std::string head = "GET / HTTP/1.1\r\nHost: x\r\n";
  for (int i = 0; i < 60; ++i) head += "X-Pad-" + std::to_string(i) + ": " + std::string(1000, 'a') + "\r\n";
  head += "\r\n";
  REQUIRE(head.size() < 64 * 1024);
  RequestHeadParser parser;
  ParseStatus status = ParseStatus::kIncomplete;
  for (std::size_t i = 1; i <= head.size() && status == ParseStatus::kIncomplete; ++i)
    status = parser.parse(std::string_view(head).substr(0, i));
  CHECK(status == ParseStatus::kComplete);
  CHECK(parser.consumed() == head.size());
  CHECK(parser.head().headers.size() == 61);
}
