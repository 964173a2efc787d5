// Heads and framing. BodyDecoder and MessageParser have their own files.
#include "protocol/http_parser.h"

#include <doctest/doctest.h>

#include <string>

using namespace protocol;

namespace {

ParseError request_error(std::string_view bytes, const Limits& limits = {}) {
  auto result = parse_request_head(bytes, limits);
  REQUIRE(result.status == ParseStatus::kError);
  return result.error;
}

ParseError response_error(std::string_view bytes) {
  auto result = parse_response_head(bytes);
  REQUIRE(result.status == ParseStatus::kError);
  return result.error;
}

RequestHead request_with(Headers headers) {
  RequestHead head{"POST", "/", 1, std::move(headers)};
  return head;
}

FramingResult framing_of(Headers headers) {
  return request_framing(request_with(std::move(headers)));
}

ParseError framing_error(Headers headers) {
  FramingResult result = framing_of(std::move(headers));
  REQUIRE_FALSE(result.ok);
  return result.error;
}

}  // namespace

TEST_CASE("parser: parses a request head") {
  std::string bytes =
      "POST /fn/a?x=1 HTTP/1.1\r\nHost: example\r\nX-Mixed-Case:  v a l \t\r\n\r\nbody";
  auto result = parse_request_head(bytes);
  REQUIRE(result.status == ParseStatus::kComplete);
  CHECK(result.consumed == bytes.size() - 4);
  CHECK(result.head.method == "POST");
  CHECK(result.head.target == "/fn/a?x=1");
  CHECK(result.head.version_minor == 1);
  REQUIRE(result.head.headers.size() == 2);
  CHECK(result.head.headers[0].name == "Host");
  CHECK(result.head.headers[0].value == "example");
  CHECK(result.head.headers[1].name == "X-Mixed-Case");
  CHECK(result.head.headers[1].value == "v a l");
}

TEST_CASE("parser: accepts bare LF line endings and empty values") {
  auto result = parse_request_head("GET * HTTP/1.0\nA:\nB: 1\r\n\n");
  REQUIRE(result.status == ParseStatus::kComplete);
  CHECK(result.head.target == "*");
  CHECK(result.head.version_minor == 0);
  REQUIRE(result.head.headers.size() == 2);
  CHECK(result.head.headers[0].value == "");
}

TEST_CASE("parser: skips empty lines before a request line") {
  auto result = parse_request_head("\r\n\nGET / HTTP/1.1\r\n\r\n");
  REQUIRE(result.status == ParseStatus::kComplete);
  CHECK(result.consumed == 21);
  CHECK(parse_response_head("\r\nHTTP/1.1 200 OK\r\n\r\n").status == ParseStatus::kError);
}

TEST_CASE("parser: every proper prefix of a head is incomplete") {
  std::string bytes = "GET /a HTTP/1.1\r\nHost: h\r\nAccept: */*\r\n\r\n";
  for (std::size_t i = 0; i < bytes.size(); ++i) {
    CAPTURE(i);
    CHECK(parse_request_head(bytes.substr(0, i)).status == ParseStatus::kIncomplete);
  }
  CHECK(parse_request_head(bytes).status == ParseStatus::kComplete);
}

TEST_CASE("parser: rejects a malformed request line") {
  SUBCASE("no version") { CHECK(request_error("GET /\r\n\r\n") == ParseError::kBadRequestLine); }
  SUBCASE("empty target") {
    CHECK(request_error("GET  HTTP/1.1\r\n\r\n") == ParseError::kBadRequestLine);
  }
  SUBCASE("space in target") {
    CHECK(request_error("GET /a b HTTP/1.1\r\n\r\n") == ParseError::kBadRequestLine);
  }
  SUBCASE("control in target") {
    CHECK(request_error("GET /a\x01 HTTP/1.1\r\n\r\n") == ParseError::kBadRequestLine);
    CHECK(request_error("GET /a\x7f HTTP/1.1\r\n\r\n") == ParseError::kBadRequestLine);
    CHECK(request_error("GET /a\tb HTTP/1.1\r\n\r\n") == ParseError::kBadRequestLine);
  }
  SUBCASE("invalid method token") {
    CHECK(request_error("G(T / HTTP/1.1\r\n\r\n") == ParseError::kBadRequestLine);
    CHECK(request_error(" GET / HTTP/1.1\r\n\r\n") == ParseError::kBadRequestLine);
  }
  SUBCASE("bare CR") {
    CHECK(request_error("GET / HTTP/1.1\r\rX: y\r\n\r\n") == ParseError::kBadRequestLine);
  }
  SUBCASE("trailing garbage") {
    CHECK(request_error("GET / HTTP/1.1 x\r\n\r\n") == ParseError::kBadRequestLine);
  }
  SUBCASE("malformed version") {
    CHECK(request_error("GET / http/1.1\r\n\r\n") == ParseError::kBadRequestLine);
    CHECK(request_error("GET / HTTP/1\r\n\r\n") == ParseError::kBadRequestLine);
    CHECK(request_error("GET / HTTP/1.11\r\n\r\n") == ParseError::kBadRequestLine);
  }
}

TEST_CASE("parser: rejects versions other than HTTP/1.0 and HTTP/1.1") {
  CHECK(request_error("GET / HTTP/1.2\r\n\r\n") == ParseError::kBadVersion);
  CHECK(request_error("GET / HTTP/2.0\r\n\r\n") == ParseError::kBadVersion);
  CHECK(request_error("GET / HTTP/0.9\r\n\r\n") == ParseError::kBadVersion);
  CHECK(response_error("HTTP/2.0 200 OK\r\n\r\n") == ParseError::kBadVersion);
}

TEST_CASE("parser: rejects NUL anywhere in the head") {
  using namespace std::string_literals;
  SUBCASE("method") {
    CHECK(request_error("G\0T / HTTP/1.1\r\n\r\n"s) == ParseError::kBadRequestLine);
  }
  SUBCASE("target") {
    CHECK(request_error("GET /\0 HTTP/1.1\r\n\r\n"s) == ParseError::kBadRequestLine);
  }
  SUBCASE("name") {
    CHECK(request_error("GET / HTTP/1.1\r\nA\0: b\r\n\r\n"s) == ParseError::kBadHeader);
  }
  SUBCASE("value") {
    CHECK(request_error("GET / HTTP/1.1\r\nA: b\0c\r\n\r\n"s) == ParseError::kBadHeader);
  }
  SUBCASE("reason") {
    CHECK(response_error("HTTP/1.1 200 O\0K\r\n\r\n"s) == ParseError::kBadStatusLine);
  }
}

TEST_CASE("parser: rejects malformed header lines") {
  auto error_for = [](std::string_view line) {
    return request_error("GET / HTTP/1.1\r\nHost: h\r\n" + std::string(line) + "\r\n\r\n");
  };
  SUBCASE("obs-fold") { CHECK(error_for(" continued") == ParseError::kBadHeader); }
  SUBCASE("obs-fold with tab") { CHECK(error_for("\tcontinued") == ParseError::kBadHeader); }
  SUBCASE("space before colon") { CHECK(error_for("Host : h") == ParseError::kBadHeader); }
  SUBCASE("tab before colon") { CHECK(error_for("Host\t: h") == ParseError::kBadHeader); }
  SUBCASE("invalid name token") { CHECK(error_for("Ho(st: h") == ParseError::kBadHeader); }
  SUBCASE("empty name") { CHECK(error_for(": h") == ParseError::kBadHeader); }
  SUBCASE("no colon") { CHECK(error_for("Host h") == ParseError::kBadHeader); }
  SUBCASE("control in value") { CHECK(error_for("X: a\x01z") == ParseError::kBadHeader); }
  SUBCASE("DEL in value") { CHECK(error_for("X: a\x7fz") == ParseError::kBadHeader); }
  SUBCASE("bare CR in value") { CHECK(error_for("X: a\rb") == ParseError::kBadHeader); }
  SUBCASE("escape in value") { CHECK(error_for("X: \x1b[31m") == ParseError::kBadHeader); }
}

TEST_CASE("parser: accepts HTAB and obs-text in values") {
  auto result = parse_request_head("GET / HTTP/1.1\r\nX: a\tb \xc3\xa9\r\n\r\n");
  REQUIRE(result.status == ParseStatus::kComplete);
  CHECK(result.head.headers[0].value == "a\tb \xc3\xa9");
}

TEST_CASE("parser: parses status lines") {
  SUBCASE("with reason") {
    auto result = parse_response_head("HTTP/1.1 404 Not Found\r\nA: b\r\n\r\n");
    REQUIRE(result.status == ParseStatus::kComplete);
    CHECK(result.head.status == 404);
    CHECK(result.head.reason == "Not Found");
    CHECK(result.head.headers.size() == 1);
  }
  SUBCASE("empty reason") {
    auto result = parse_response_head("HTTP/1.0 200 \n\n");
    REQUIRE(result.status == ParseStatus::kComplete);
    CHECK(result.head.version_minor == 0);
    CHECK(result.head.reason == "");
  }
  SUBCASE("no space before an empty reason") {
    auto result = parse_response_head("HTTP/1.1 204\r\n\r\n");
    REQUIRE(result.status == ParseStatus::kComplete);
    CHECK(result.head.status == 204);
  }
  SUBCASE("999 is the top") {
    CHECK(parse_response_head("HTTP/1.1 999 X\r\n\r\n").head.status == 999);
  }
}

TEST_CASE("parser: rejects a malformed status line") {
  for (std::string_view line :
       {"HTTP/1.1 20 OK", "HTTP/1.1 2000 OK", "HTTP/1.1 099 OK", "HTTP/1.1 abc OK",
        "HTTP/1.1  200 OK", "HTTP/1.1", "HTTP/1.1 -20 OK", "HTTP/1.1 200\tOK",
        "HTTP/1.1 200 O\x01K", "FTP/1.1 200 OK", ""}) {
    CAPTURE(line);
    CHECK(response_error(std::string(line) + "\r\n\r\n") == ParseError::kBadStatusLine);
  }
}

TEST_CASE("parser: enforces the head size limit") {
  Limits limits;
  std::string head = "GET / HTTP/1.1\r\nX: " + std::string(100, 'a') + "\r\n\r\n";
  SUBCASE("a head of exactly the limit is complete") {
    limits.max_head_bytes = head.size();
    CHECK(parse_request_head(head, limits).status == ParseStatus::kComplete);
  }
  SUBCASE("a complete head one byte over is too large") {
    limits.max_head_bytes = head.size() - 1;
    CHECK(request_error(head, limits) == ParseError::kHeadTooLarge);
  }
  SUBCASE("incomplete within the limit, too large past it") {
    limits.max_head_bytes = 50;
    CHECK(parse_request_head(head.substr(0, 50), limits).status == ParseStatus::kIncomplete);
    CHECK(request_error(head.substr(0, 51), limits) == ParseError::kHeadTooLarge);
  }
  SUBCASE("the default is 64 KiB") {
    std::string big = "GET / HTTP/1.1\r\nX: " + std::string(64 * 1024, 'a');
    CHECK(request_error(big) == ParseError::kHeadTooLarge);
    CHECK(response_error("HTTP/1.1 200 OK\r\nX: " + std::string(64 * 1024, 'a')) ==
          ParseError::kHeadTooLarge);
  }
}

TEST_CASE("parser: enforces the header count limit") {
  Limits limits;
  limits.max_headers = 3;
  std::string three = "GET / HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n";
  CHECK(parse_request_head(three + "\r\n", limits).status == ParseStatus::kComplete);
  CHECK(request_error(three + "D: 4\r\n\r\n", limits) == ParseError::kTooManyHeaders);
  std::string many = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 101; ++i) many += "X: y\r\n";
  CHECK(response_error(many + "\r\n") == ParseError::kTooManyHeaders);
}

TEST_CASE("parser: is_token follows RFC 9110") {
  CHECK(is_token("Content-Length"));
  CHECK(is_token("!#$%&'*+-.^_`|~09azAZ"));
  CHECK_FALSE(is_token(""));
  for (char c : std::string_view("\"(),/:;<=>?@[\\]{} \t\x7f")) {
    CAPTURE(c);
    CHECK_FALSE(is_token(std::string("a") + c));
  }
  CHECK_FALSE(is_token("\xc3\xa9"));
}

TEST_CASE("framing: request framing") {
  SUBCASE("none") { CHECK(framing_of({{"Host", "h"}}).framing.kind == BodyKind::kNone); }
  SUBCASE("content-length") {
    auto result = framing_of({{"content-length", "42"}});
    REQUIRE(result.ok);
    CHECK(result.framing.kind == BodyKind::kLength);
    CHECK(result.framing.length == 42);
  }
  SUBCASE("largest content-length") {
    CHECK(framing_of({{"Content-Length", "18446744073709551615"}}).framing.length == UINT64_MAX);
    CHECK(framing_of({{"Content-Length", "007"}}).framing.length == 7);
  }
  SUBCASE("chunked, in any case, with whitespace") {
    for (std::string_view value : {"chunked", "Chunked", " CHUNKED\t"}) {
      auto result = framing_of({{"Transfer-Encoding", std::string(value)}});
      REQUIRE(result.ok);
      CHECK(result.framing.kind == BodyKind::kChunked);
    }
  }
}

TEST_CASE("framing: rejects negative Content-Length") {
  CHECK(framing_error({{"Content-Length", "-1"}}) == ParseError::kBadContentLength);
}

TEST_CASE("framing: rejects a Content-Length that is not plain decimal") {
  for (std::string_view value : {"", "+5", "5a", "0x10", "1 2", "5,5", "1.0",
                                 "18446744073709551616", "99999999999999999999999"}) {
    CAPTURE(value);
    CHECK(framing_error({{"Content-Length", std::string(value)}}) == ParseError::kBadContentLength);
  }
}

TEST_CASE("framing: rejects duplicate Content-Length even when equal") {
  SUBCASE("equal") {
    CHECK(framing_error({{"Content-Length", "5"}, {"content-length", "5"}}) ==
          ParseError::kDuplicateContentLength);
  }
  SUBCASE("different") {
    CHECK(framing_error({{"Content-Length", "5"}, {"Content-Length", "6"}}) ==
          ParseError::kDuplicateContentLength);
  }
}

TEST_CASE("framing: rejects Content-Length with Transfer-Encoding") {
  CHECK(framing_error({{"Content-Length", "5"}, {"Transfer-Encoding", "chunked"}}) ==
        ParseError::kLengthAndChunked);
  CHECK(framing_error({{"Transfer-Encoding", "gzip"}, {"Content-Length", "5"}}) ==
        ParseError::kLengthAndChunked);
}

TEST_CASE("framing: rejects any Transfer-Encoding but one chunked") {
  SUBCASE("another coding") {
    CHECK(framing_error({{"Transfer-Encoding", "gzip"}}) == ParseError::kBadTransferEncoding);
  }
  SUBCASE("chunked not alone") {
    CHECK(framing_error({{"Transfer-Encoding", "gzip, chunked"}}) ==
          ParseError::kBadTransferEncoding);
  }
  SUBCASE("chunked twice in one field") {
    CHECK(framing_error({{"Transfer-Encoding", "chunked, chunked"}}) ==
          ParseError::kBadTransferEncoding);
  }
  SUBCASE("chunked in two fields") {
    CHECK(framing_error({{"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}}) ==
          ParseError::kBadTransferEncoding);
  }
  SUBCASE("empty") {
    CHECK(framing_error({{"Transfer-Encoding", ""}}) == ParseError::kBadTransferEncoding);
  }
  SUBCASE("lookalike") {
    CHECK(framing_error({{"Transfer-Encoding", "chunked;q=1"}}) ==
          ParseError::kBadTransferEncoding);
  }
}

TEST_CASE("framing: response framing") {
  ResponseHead head;
  SUBCASE("until close without length") {
    CHECK(response_framing(head).framing.kind == BodyKind::kUntilClose);
  }
  SUBCASE("content-length and chunked") {
    head.headers = {{"Content-Length", "3"}};
    CHECK(response_framing(head).framing.kind == BodyKind::kLength);
    head.headers = {{"Transfer-Encoding", "chunked"}};
    CHECK(response_framing(head).framing.kind == BodyKind::kChunked);
  }
  SUBCASE("no body for HEAD, 1xx, 204 and 304") {
    head.headers = {{"Content-Length", "3"}};
    CHECK(response_framing(head, "HEAD").framing.kind == BodyKind::kNone);
    for (int status : {100, 101, 199, 204, 304}) {
      CAPTURE(status);
      head.status = status;
      CHECK(response_framing(head).framing.kind == BodyKind::kNone);
    }
  }
  SUBCASE("the same rejections as requests") {
    head.headers = {{"Content-Length", "3"}, {"Content-Length", "3"}};
    CHECK(response_framing(head).error == ParseError::kDuplicateContentLength);
    head.headers = {{"Transfer-Encoding", "gzip"}};
    CHECK_FALSE(response_framing(head).ok);
    CHECK(response_framing(head).error == ParseError::kBadTransferEncoding);
  }
}

TEST_CASE("parser: describe names every error") {
  for (int i = 0; i <= static_cast<int>(ParseError::kBadChunk); ++i) {
    CAPTURE(i);
    CHECK_FALSE(describe(static_cast<ParseError>(i)).empty());
  }
  CHECK(describe(ParseError::kHeadTooLarge) != describe(ParseError::kBodyTooLarge));
}

TEST_CASE("framing: an HTTP/1.0 message with Transfer-Encoding closes its connection") {
  // RFC 9112 6.1: decoded, but its sender may not know chunked and may have left bytes behind.
  RequestHead request{"POST", "/", 0, {{"Transfer-Encoding", "chunked"}}};
  FramingResult framing = request_framing(request);
  REQUIRE(framing.ok);
  CHECK(framing.framing.kind == BodyKind::kChunked);
  CHECK(framing.close_after);
  SUBCASE("not in HTTP/1.1, nor without Transfer-Encoding") {
    request.version_minor = 1;
    CHECK_FALSE(request_framing(request).close_after);
    RequestHead length{"POST", "/", 0, {{"Content-Length", "3"}}};
    CHECK_FALSE(request_framing(length).close_after);
  }
  SUBCASE("responses too") {
    ResponseHead response{0, 200, "OK", {{"Transfer-Encoding", "chunked"}}};
    CHECK(response_framing(response).close_after);
  }
}
