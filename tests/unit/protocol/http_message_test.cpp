#include "protocol/http_message.h"

#include <doctest/doctest.h>

using namespace protocol;

TEST_CASE("message: iequals ignores ASCII case only") {
  CHECK(iequals("Content-Length", "content-length"));
  CHECK(iequals("", ""));
  CHECK_FALSE(iequals("Content-Length", "Content-Lengt"));
  CHECK_FALSE(iequals("a", "b"));
  CHECK_FALSE(iequals("\xc3\xa9", "\xc3\x89"));  // é vs É: not ASCII, not folded
}

TEST_CASE("message: find_header and header_value return the first match") {
  Headers headers = {{"Host", "a"}, {"X-Id", "1"}, {"x-id", "2"}};
  REQUIRE(find_header(headers, "X-ID") != nullptr);
  CHECK(find_header(headers, "X-ID")->value == "1");
  CHECK(find_header(headers, "Missing") == nullptr);
  CHECK(header_value(headers, "host") == "a");
  CHECK(header_value(headers, "missing") == "");
  CHECK(header_value(headers, "missing", "fallback") == "fallback");
}

TEST_CASE("message: remove_header removes every case variant and counts them") {
  Headers headers = {{"Host", "a"}, {"X-Id", "1"}, {"Other", "o"}, {"x-id", "2"}};
  CHECK(remove_header(headers, "X-Id") == 2);
  REQUIRE(headers.size() == 2);
  CHECK(headers[0].name == "Host");
  CHECK(headers[1].name == "Other");
  CHECK(remove_header(headers, "X-Id") == 0);
}

TEST_CASE("message: reason_phrase knows the common codes") {
  CHECK(reason_phrase(200) == "OK");
  CHECK(reason_phrase(404) == "Not Found");
  CHECK(reason_phrase(413) == "Content Too Large");
  CHECK(reason_phrase(502) == "Bad Gateway");
  CHECK(reason_phrase(504) == "Gateway Timeout");
  CHECK(reason_phrase(799) == "Unknown");
}

TEST_CASE("message: percent_decode decodes each escape once") {
  CHECK(percent_decode("/a%20b/%2541") == std::optional<std::string>("/a b/%41"));
  CHECK(percent_decode("/%E2%82%ac") == std::optional<std::string>("/\xE2\x82\xAC"));
  CHECK(percent_decode("plain") == std::optional<std::string>("plain"));
  CHECK_FALSE(percent_decode("/a%2").has_value());
  CHECK_FALSE(percent_decode("/a%zz").has_value());
  CHECK_FALSE(percent_decode("%").has_value());
  auto no_slash = [](char c) { return c == '/'; };
  CHECK_FALSE(percent_decode("/a%2Fb", no_slash).has_value());
  CHECK(percent_decode("/a/b", no_slash) == std::optional<std::string>("/a/b"));
}
