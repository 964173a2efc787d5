// Parses the header block a CGI program writes at the start of its output (RFC 3875 section 6):
// Status, Content-Type, Location and other header fields, ended by a blank line. Pure over bytes,
// incremental like the HTTP parser: the watchdog feeds what stdout has produced so far.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/http_message.h"

namespace protocol {

// The four response types of RFC 3875 6.2.
enum class CgiResponseKind {
  kDocument,                  // Content-Type (and optionally Status)
  kLocalRedirect,             // Location: /path, nothing else: the server serves that path instead
  kClientRedirect,            // Location: absolute URI, no body: 302 unless Status says otherwise
  kClientRedirectWithDocument // absolute Location with Status and Content-Type and a body
};

struct CgiHead {
  CgiResponseKind kind = CgiResponseKind::kDocument;
  int status = 200;
  std::string reason;  // the program's own phrase ("Status: 418 I'm a teapot"), "" when it gave none
  Headers headers;  // every header except Status, in order, Location and Content-Type included
  // The program's Content-Length, when it gave one valid value: what the answer to a HEAD, which
  // carries no body to count, announces (RFC 9110 8.6). The body of other methods is counted.
  std::optional<std::uint64_t> declared_length;
};

enum class CgiError {
  kNoBlankLine,    // output ended before the blank line that ends the headers
  kBadHeaderLine,  // a line that is not "name: value" with a token name
  kBadStatus,      // Status not "3DIGIT [reason]" in 100..999
  kHeadTooLarge,
  kNoContentType,  // a document without Content-Type and no default given
  kInterimStatus,  // Status 1xx: an interim response, never the final answer to a request
};
std::string_view describe(CgiError error) noexcept;

struct CgiResult {
  enum class Status { kComplete, kIncomplete, kError } status = Status::kIncomplete;
  std::size_t consumed = 0;  // length of the header block including the blank line
  CgiHead head;
  CgiError error = CgiError::kBadHeaderLine;
};

// Parses the header block at the start of `output`. `at_eof` says the program's output has ended, so
// a block without its blank line is kNoBlankLine rather than kIncomplete. `default_content_type`
// (the watchdog's --content-type) is added to a document that declares none, except a 204 or 304,
// which have no content to type; when it is empty, such a document is kNoContentType.
// A 1xx Status is kInterimStatus: relayed as the final response, it would leave the client waiting
// for the real one, and it would take the next request's answer for it.
CgiResult parse_cgi_head(std::string_view output, bool at_eof,
                         std::string_view default_content_type = "text/plain; charset=utf-8",
                         std::size_t max_head_bytes = 64 * 1024);

}  // namespace protocol
