#include "protocol/http_writer.h"

#include <doctest/doctest.h>

#include "protocol/http_parser.h"

using namespace protocol;

namespace {

RequestHead client_request() {
  return {"POST",
          "/fn/echo?x=1&y=%20",
          1,
          {{"Host", "example"},
           {"Connection", "keep-alive, X-Drop-Me"},
           {"Keep-Alive", "timeout=5"},
           {"TE", "trailers"},
           {"Transfer-Encoding", "chunked"},
           {"Upgrade", "h2c"},
           {"Trailer", "X-Sum"},
           {"Proxy-Authorization", "Basic eA=="},
           {"Proxy-Connection", "keep-alive"},
           {"x-drop-me", "listed in Connection"},
           {"content-length", "999"},
           {"X-FN-Request-Id", "spoofed"},
           {"x-fn-deadline-ms", "1"},
           {"Accept", "*/*"},
           {"Authorization", "Bearer t"}}};
}

}  // namespace

TEST_CASE("writer: is_hop_by_hop") {
  for (std::string_view name :
       {"Connection", "keep-alive", "TE", "transfer-encoding", "Upgrade", "Trailer",
        "Proxy-Authorization", "proxy-authenticate", "Proxy-X"}) {
    CAPTURE(name);
    CHECK(is_hop_by_hop(name));
  }
  for (std::string_view name :
       {"Host", "Trailers", "Proxy", "Content-Length", "Authorization", ""}) {
    CAPTURE(name);
    CHECK_FALSE(is_hop_by_hop(name));
  }
}

TEST_CASE("writer: request head") {
  std::string out = "prefix:";
  append_request_head(out, {"GET", "/a?b", 0, {{"Host", "h"}, {"X-A", "1"}}});
  CHECK(out == "prefix:GET /a?b HTTP/1.0\r\nHost: h\r\nX-A: 1\r\n\r\n");
}

TEST_CASE("writer: response head uses the standard phrase for an empty reason") {
  std::string out;
  append_response_head(out, {1, 502, "", {{"Content-Length", "0"}}});
  CHECK(out == "HTTP/1.1 502 Bad Gateway\r\nContent-Length: 0\r\n\r\n");
  out.clear();
  append_response_head(out, {0, 200, "Fine", {}});
  CHECK(out == "HTTP/1.0 200 Fine\r\n\r\n");
}

TEST_CASE("writer: response head keeps a given reason, never one that breaks the line") {
  std::string out;
  append_response_head(out, {1, 418, "I'm a teapot", {}});
  CHECK(out == "HTTP/1.1 418 I'm a teapot\r\n\r\n");
  out.clear();
  append_response_head(out, {1, 299, "Custom\tThing \xe9", {}});
  CHECK(out == "HTTP/1.1 299 Custom\tThing \xe9\r\n\r\n");  // HTAB and obs-text are allowed
  const std::string_view bad_reasons[] = {"a\r\nX-Injected: 1", "a\nb", "a\rb",
                                           std::string_view("a\0b", 3), "a\x7f"};
  for (std::string_view bad : bad_reasons) {
    CAPTURE(bad);
    out.clear();
    append_response_head(out, {1, 404, std::string(bad), {{"X", "y"}}});
    CHECK(out == "HTTP/1.1 404 Not Found\r\nX: y\r\n\r\n");
  }
}

TEST_CASE("writer: heads round trip through the parser") {
  RequestHead request{"PATCH", "http://h/x?y", 1, {{"A", "1"}, {"b", "two words"}, {"A", "3"}}};
  std::string out;
  append_request_head(out, request);
  auto parsed = parse_request_head(out);
  REQUIRE(parsed.status == ParseStatus::kComplete);
  CHECK(parsed.consumed == out.size());
  CHECK(parsed.head.method == request.method);
  CHECK(parsed.head.target == request.target);
  CHECK(parsed.head.version_minor == 1);
  REQUIRE(parsed.head.headers.size() == 3);
  CHECK(parsed.head.headers[1].name == "b");
  CHECK(parsed.head.headers[1].value == "two words");

  ResponseHead response{1, 418, "", {{"X", "y"}}};
  out.clear();
  append_response_head(out, response);
  auto parsed_response = parse_response_head(out);
  REQUIRE(parsed_response.status == ParseStatus::kComplete);
  CHECK(parsed_response.head.status == 418);
  CHECK(parsed_response.head.reason == "Unknown");
}

TEST_CASE("writer: hot request head follows the stdio protocol") {
  std::string out;
  append_hot_request_head(out, client_request(), {"6f1c", 1795000000000, 5});
  CHECK(out ==
        "POST /fn/echo?x=1&y=%20 HTTP/1.1\r\n"
        "Host: example\r\n"
        "Accept: */*\r\n"
        "Authorization: Bearer t\r\n"
        "Content-Length: 5\r\n"
        "X-Fn-Request-Id: 6f1c\r\n"
        "X-Fn-Deadline-Ms: 1795000000000\r\n"
        "\r\n");
}

TEST_CASE("writer: hot request head reparses with exactly one length and id") {
  RequestHead client = client_request();
  client.version_minor = 0;  // the stdio link is HTTP/1.1 whatever the client spoke
  std::string out;
  append_hot_request_head(out, client, {"id-1", 42, 0});
  auto parsed = parse_request_head(out);
  REQUIRE(parsed.status == ParseStatus::kComplete);
  CHECK(parsed.consumed == out.size());
  CHECK(parsed.head.version_minor == 1);
  auto framing = request_framing(parsed.head);
  REQUIRE(framing.ok);
  CHECK(framing.framing.kind == BodyKind::kLength);
  CHECK(framing.framing.length == 0);
  int ids = 0;
  for (const Header& header : parsed.head.headers) {
    CHECK_FALSE(is_hop_by_hop(header.name));
    CHECK_FALSE(iequals(header.name, "X-Drop-Me"));
    ids += iequals(header.name, "X-Fn-Request-Id") ? 1 : 0;
  }
  CHECK(ids == 1);
  CHECK(header_value(parsed.head.headers, "X-Fn-Request-Id") == "id-1");
  CHECK(header_value(parsed.head.headers, "X-Fn-Deadline-Ms") == "42");
}

TEST_CASE("writer: hot request head drops fields that would break its framing") {
  RequestHead client{
      "GET", "/", 1, {{"X-Bad", "a\r\nInjected: 1"}, {"Bad Name", "v"}, {"Ok", "v"}}};
  std::string out;
  append_hot_request_head(out, client, {"id", 1, 0});
  auto parsed = parse_request_head(out);
  REQUIRE(parsed.status == ParseStatus::kComplete);
  CHECK(parsed.consumed == out.size());
  CHECK(find_header(parsed.head.headers, "Injected") == nullptr);
  CHECK(find_header(parsed.head.headers, "X-Bad") == nullptr);
  CHECK(header_value(parsed.head.headers, "Ok") == "v");
}

TEST_CASE("writer: chunks") {
  std::string out;
  append_chunk(out, "");
  CHECK(out.empty());
  append_chunk(out, "hello");
  CHECK(out == "5\r\nhello\r\n");
  out.clear();
  append_chunk(out, std::string(255, 'x'));
  CHECK(out.starts_with("ff\r\nxxx"));
  CHECK(out.size() == 2 + 2 + 255 + 2);
  out.clear();
  append_last_chunk(out);
  CHECK(out == "0\r\n\r\n");
  out.clear();
  append_last_chunk(out, {{"X-Fn-Exit-Code", "3"}});
  CHECK(out == "0\r\nX-Fn-Exit-Code: 3\r\n\r\n");
}

TEST_CASE("writer: chunked output decodes to the same body and trailers") {
  std::string out;
  std::string body;
  for (int size : {1, 15, 16, 300, 4097}) {
    std::string data(static_cast<std::size_t>(size), static_cast<char>('a' + size % 26));
    body += data;
    append_chunk(out, data);
  }
  append_last_chunk(out, {{"X-Fn-Exit-Code", "0"}, {"X-Sum", "abc"}});
  BodyDecoder decoder({BodyKind::kChunked, 0});
  std::string decoded;
  std::string_view rest = out;
  BodyDecoder::Step step;
  do {
    step = decoder.next(rest);
    decoded.append(step.data);
    rest.remove_prefix(step.consumed);
  } while (step.status == ParseStatus::kIncomplete && step.consumed > 0);
  REQUIRE(step.status == ParseStatus::kComplete);
  CHECK(rest.empty());
  CHECK(decoded == body);
  REQUIRE(decoder.trailers().size() == 2);
  CHECK(decoder.trailers()[1].value == "abc");
}
