#include "protocol/cgi_response.h"

#include <doctest/doctest.h>

#include <string>

using namespace protocol;

namespace {

CgiHead complete(std::string_view output, std::string_view default_type = "text/plain") {
  CgiResult result = parse_cgi_head(output, false, default_type);
  REQUIRE(result.status == CgiResult::Status::kComplete);
  return result.head;
}

CgiError error_of(std::string_view output, bool at_eof = false,
                  std::string_view default_type = "text/plain", std::size_t max = 64 * 1024) {
  CgiResult result = parse_cgi_head(output, at_eof, default_type, max);
  REQUIRE(result.status == CgiResult::Status::kError);
  return result.error;
}

}  // namespace

TEST_CASE("cgi response: a document") {
  std::string output = "Content-Type: text/html\r\nX-Extra:  yes \r\n\r\n<p>body";
  CgiResult result = parse_cgi_head(output, false);
  REQUIRE(result.status == CgiResult::Status::kComplete);
  CHECK(result.consumed == output.size() - 7);
  CHECK(result.head.kind == CgiResponseKind::kDocument);
  CHECK(result.head.status == 200);
  CHECK(result.head.reason.empty());
  REQUIRE(result.head.headers.size() == 2);
  CHECK(result.head.headers[0].value == "text/html");
  CHECK(result.head.headers[1].value == "yes");
}

TEST_CASE("cgi response: Status sets the status and is not passed on") {
  SUBCASE("with reason") {
    CgiHead head = complete("Status: 404 Not Found\nContent-Type: text/plain\n\n");
    CHECK(head.status == 404);
    CHECK(head.reason == "Not Found");
    REQUIRE(head.headers.size() == 1);
    CHECK(head.headers[0].name == "Content-Type");
  }
  SUBCASE("without reason, any case") {
    CgiHead head = complete("content-type: text/plain\nSTATUS: 201\n\n");
    CHECK(head.status == 201);
    CHECK(head.reason.empty());
  }
}

TEST_CASE("cgi response: a document without Content-Type gets the default") {
  CgiHead head = complete("Status: 500\nX-A: 1\n\n", "text/plain; charset=utf-8");
  CHECK(head.kind == CgiResponseKind::kDocument);
  REQUIRE(head.headers.size() == 2);
  CHECK(head.headers[1].name == "Content-Type");
  CHECK(head.headers[1].value == "text/plain; charset=utf-8");
  CHECK(complete("\n").headers.size() == 1);  // no headers at all
}

TEST_CASE("cgi response: 204 and 304 get no default Content-Type") {
  for (std::string_view status : {"204", "304 Not Modified"}) {
    CAPTURE(status);
    CgiHead head = complete("Status: " + std::string(status) + "\nETag: \"v\"\n\n", "text/plain");
    REQUIRE(head.headers.size() == 1);
    CHECK(head.headers[0].name == "ETag");
    // With no default either, they are no documents missing a type.
    CHECK(parse_cgi_head("Status: " + std::string(status) + "\n\n", false, "").status ==
          CgiResult::Status::kComplete);
  }
  CgiHead typed = complete("Status: 204\nContent-Type: text/html\n\n");
  CHECK(header_value(typed.headers, "Content-Type") == "text/html");  // the program's own stays
}

TEST_CASE("cgi response: Status keeps the program's reason phrase") {
  CHECK(complete("Status: 418 I'm a teapot\n\n").reason == "I'm a teapot");
  CHECK(complete("Status: 299 Custom Thing  \n\n").reason == "Custom Thing");
  CHECK(complete("Status: 299\n\n").reason.empty());
}

TEST_CASE("cgi response: an interim 1xx Status is no final answer") {
  for (std::string_view status : {"100", "100 Continue", "101 Switching Protocols", "102", "103",
                                  "199 x"}) {
    CAPTURE(status);
    CHECK(error_of("Status: " + std::string(status) + "\nContent-Type: text/plain\n\n") ==
          CgiError::kInterimStatus);
  }
  CHECK(complete("Status: 200\n\n").status == 200);
}

TEST_CASE("cgi response: the declared Content-Length") {
  CHECK(complete("Content-Length: 14\n\n").declared_length == 14u);
  CHECK(complete("Content-Length: 0\n\n").declared_length == 0u);
  CHECK_FALSE(complete("X-A: 1\n\n").declared_length.has_value());
  for (std::string_view bad : {"-1", "1x", "", "1, 2", "99999999999999999999999"}) {
    CAPTURE(bad);
    CHECK_FALSE(complete("Content-Length: " + std::string(bad) + "\n\n").declared_length);
  }
  // Two fields are not trusted, as the HTTP parser trusts none: the body is counted then.
  CHECK_FALSE(complete("Content-Length: 4\nContent-Length: 5\n\n").declared_length);
  CHECK_FALSE(complete("Content-Length: 4\nContent-Length: 4\n\n").declared_length);
  // Chunked from a CGI program is no length either.
  CHECK_FALSE(complete("Content-Length: 4\nTransfer-Encoding: chunked\n\n").declared_length);
}

TEST_CASE("cgi response: a document without Content-Type and no default") {
  CHECK(error_of("X-A: 1\n\n", false, "") == CgiError::kNoContentType);
}

TEST_CASE("cgi response: local redirect") {
  CgiHead head = complete("Location: /other/path?x=1\r\n\r\n");
  CHECK(head.kind == CgiResponseKind::kLocalRedirect);
  REQUIRE(head.headers.size() == 1);
  CHECK(head.headers[0].value == "/other/path?x=1");
  CHECK(complete("location: /x\n\n").kind == CgiResponseKind::kLocalRedirect);
}

TEST_CASE("cgi response: a local Location with anything else is a document") {
  SUBCASE("another field") {
    CgiHead head = complete("Location: /x\nX-A: 1\n\n");
    CHECK(head.kind == CgiResponseKind::kDocument);
    CHECK(head.headers.size() == 3);  // Location, X-A and the default Content-Type
  }
  SUBCASE("a Status") {
    CgiHead head = complete("Status: 303 See Other\nLocation: /x\n\n");
    CHECK(head.kind == CgiResponseKind::kDocument);
    CHECK(head.status == 303);
  }
}

TEST_CASE("cgi response: client redirect") {
  SUBCASE("302 by default") {
    CgiHead head = complete("Location: https://example.com/x\n\n");
    CHECK(head.kind == CgiResponseKind::kClientRedirect);
    CHECK(head.status == 302);
    CHECK(head.headers.size() == 1);
  }
  SUBCASE("Status wins, extension fields pass") {
    CgiHead head = complete("Status: 301\nLocation: ftp+x.y-z:rest\nX-A: 1\n\n");
    CHECK(head.kind == CgiResponseKind::kClientRedirect);
    CHECK(head.status == 301);
    CHECK(head.headers.size() == 2);
  }
}

TEST_CASE("cgi response: client redirect with document") {
  SUBCASE("Status and Content-Type") {
    CgiHead head = complete("Status: 307\nLocation: http://h/\nContent-Type: text/html\n\n");
    CHECK(head.kind == CgiResponseKind::kClientRedirectWithDocument);
    CHECK(head.status == 307);
  }
  SUBCASE("no Status gets 302") {
    CgiHead head = complete("Location: http://h/\nContent-Type: text/html\n\n");
    CHECK(head.kind == CgiResponseKind::kClientRedirectWithDocument);
    CHECK(head.status == 302);
  }
}

TEST_CASE("cgi response: a Location that is neither local nor absolute is passed through") {
  for (std::string_view location : {"relative/path", "1http://x", ":x", ""}) {
    CAPTURE(location);
    CgiHead head = complete("Location: " + std::string(location) + "\n\n");
    CHECK(head.kind == CgiResponseKind::kDocument);
    CHECK(head.status == 200);
  }
}

TEST_CASE("cgi response: incomplete and missing blank line") {
  CHECK(parse_cgi_head("Content-Type: text/plain\n", false).status ==
        CgiResult::Status::kIncomplete);
  CHECK(parse_cgi_head("", false).status == CgiResult::Status::kIncomplete);
  CHECK(error_of("Content-Type: text/plain\n", true) == CgiError::kNoBlankLine);
  CHECK(error_of("Content-Type: text/plain", true) == CgiError::kNoBlankLine);
  CHECK(error_of("", true) == CgiError::kNoBlankLine);
}

TEST_CASE("cgi response: rejects malformed header lines") {
  for (std::string_view line : {"hello world", "Content-Type : text/plain", " folded: x",
                                "X-A: a\x01", "X-A: a\rb", "(bad): x", ": x"}) {
    CAPTURE(line);
    CHECK(error_of(std::string(line) + "\n\n") == CgiError::kBadHeaderLine);
  }
  CHECK(error_of(std::string("X: a\0b\n\n", 8)) == CgiError::kBadHeaderLine);
}

TEST_CASE("cgi response: rejects a malformed Status") {
  for (std::string_view status : {"", "abc", "99", "1000", "200OK", "099", "2x0", "-20"}) {
    CAPTURE(status);
    CHECK(error_of("Status: " + std::string(status) + "\n\n") == CgiError::kBadStatus);
  }
  CHECK(error_of("Status: 200\nStatus: 404\n\n") == CgiError::kBadStatus);
}

TEST_CASE("cgi response: bounds the header block") {
  std::string head = "Content-Type: text/plain\n\n";
  CHECK(parse_cgi_head(head, false, "", head.size()).status == CgiResult::Status::kComplete);
  CHECK(error_of(head, false, "", head.size() - 1) == CgiError::kHeadTooLarge);
  CHECK(error_of(std::string(100, 'x'), false, "", 50) == CgiError::kHeadTooLarge);
  CHECK(parse_cgi_head(std::string(50, 'x'), false, "", 50).status ==
        CgiResult::Status::kIncomplete);
  CHECK(error_of("X: " + std::string(64 * 1024, 'x')) == CgiError::kHeadTooLarge);
}

TEST_CASE("cgi response: describe names every error") {
  for (int i = 0; i <= static_cast<int>(CgiError::kInterimStatus); ++i) {
    CAPTURE(i);
    CHECK_FALSE(describe(static_cast<CgiError>(i)).empty());
  }
}
