#include "protocol/cgi_response.h"

#include <algorithm>
#include <optional>

#include "protocol/http_parser.h"

namespace protocol {
namespace {

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

bool is_digit(char c) noexcept { return c >= '0' && c <= '9'; }

// "name: value" with a token name; a value may not hide control characters (a stray CR, a NUL).
bool parse_field(std::string_view line, Headers& headers) {
  std::size_t colon = line.find(':');
  if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) return false;
  std::string_view value = trim_ows(line.substr(colon + 1));
  bool clean = std::none_of(value.begin(), value.end(), [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return (byte < 0x20 && byte != '\t') || byte == 0x7f;
  });
  if (clean) headers.push_back({std::string(line.substr(0, colon)), std::string(value)});
  return clean;
}

// Status: 3DIGIT [SP reason-phrase] (RFC 3875 6.3.3). A 1xx is well formed but no final answer.
std::optional<CgiError> parse_status(std::string_view value, CgiHead& head) {
  if (value.size() < 3 || value[0] < '1' || value[0] > '9' || !is_digit(value[1]) ||
      !is_digit(value[2]) || (value.size() > 3 && value[3] != ' ')) {
    return CgiError::kBadStatus;
  }
  head.status = (value[0] - '0') * 100 + (value[1] - '0') * 10 + (value[2] - '0');
  head.reason = trim_ows(value.substr(3));
  if (head.status < 200) return CgiError::kInterimStatus;
  return std::nullopt;
}

// 204 and 304 have no content, so no type for it either (RFC 9110 15.3.5, 15.4.5).
bool has_content(int status) noexcept { return status != 204 && status != 304; }

// The one value of Content-Length, by the HTTP parser's own rules for a response (a single valid
// field, no Transfer-Encoding); anything else is not trusted, and the body is counted instead.
std::optional<std::uint64_t> declared_length(const Headers& headers) {
  if (!find_header(headers, "Content-Length")) return std::nullopt;
  FramingResult framing = response_framing(ResponseHead{1, 200, "", headers});
  if (!framing.ok || framing.framing.kind != BodyKind::kLength) return std::nullopt;
  return framing.framing.length;
}

// scheme ":" as RFC 3986 3.1 spells a scheme: ALPHA *( ALPHA / DIGIT / "+" / "-" / "." ).
bool is_absolute_uri(std::string_view uri) noexcept {
  std::size_t colon = uri.find(':');
  if (colon == std::string_view::npos || colon == 0) return false;
  auto alpha = [](char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); };
  return alpha(uri[0]) &&
         std::all_of(uri.begin(), uri.begin() + static_cast<long>(colon), [&](char c) {
           return alpha(c) || is_digit(c) || c == '+' || c == '-' || c == '.';
         });
}

CgiResult cgi_error(CgiError error) {
  CgiResult result;
  result.status = CgiResult::Status::kError;
  result.error = error;
  return result;
}

// RFC 3875 6.2. A local Location with anything beside it is no local redirect there, so it stays a
// document with Location passed through. An absolute Location with a body but no Status is taken as
// a redirect with a document and gets 302, as Apache does.
CgiResult classify(CgiHead head, bool status_given, std::string_view default_content_type) {
  const Header* location = find_header(head.headers, "Location");
  bool has_type = find_header(head.headers, "Content-Type") != nullptr;
  CgiResult result;
  result.status = CgiResult::Status::kComplete;
  if (location && location->value.starts_with('/') && head.headers.size() == 1 && !status_given) {
    head.kind = CgiResponseKind::kLocalRedirect;
  } else if (location && is_absolute_uri(location->value)) {
    head.kind =
        has_type ? CgiResponseKind::kClientRedirectWithDocument : CgiResponseKind::kClientRedirect;
    if (!status_given) head.status = 302;
  } else if (!has_type && has_content(head.status)) {
    if (default_content_type.empty()) return cgi_error(CgiError::kNoContentType);
    head.headers.push_back({"Content-Type", std::string(default_content_type)});
  }
  head.declared_length = declared_length(head.headers);
  result.head = std::move(head);
  return result;
}

}  // namespace

std::string_view describe(CgiError error) noexcept {
  switch (error) {
    case CgiError::kNoBlankLine:
      return "cgi output ended before the blank line after its headers";
    case CgiError::kBadHeaderLine:
      return "cgi output has a malformed header line";
    case CgiError::kBadStatus:
      return "cgi status is not a 3-digit code with an optional reason";
    case CgiError::kHeadTooLarge:
      return "cgi header section too large";
    case CgiError::kNoContentType:
      return "cgi document without content-type";
    case CgiError::kInterimStatus:
      return "cgi status is an interim 1xx status, not a final response";
  }
  return "unknown cgi error";
}

CgiResult parse_cgi_head(std::string_view output, bool at_eof,
                         std::string_view default_content_type, std::size_t max_head_bytes) {
  std::string_view window = output.substr(0, std::min(output.size(), max_head_bytes));
  CgiHead head;
  bool status_given = false;
  std::size_t pos = 0;
  for (std::size_t lf; (lf = window.find('\n', pos)) != std::string_view::npos;) {
    std::string_view line = window.substr(pos, lf - pos);
    if (line.ends_with('\r')) line.remove_suffix(1);
    pos = lf + 1;
    if (line.empty()) {
      CgiResult result = classify(std::move(head), status_given, default_content_type);
      if (result.status == CgiResult::Status::kComplete) result.consumed = pos;
      return result;
    }
    if (!parse_field(line, head.headers)) return cgi_error(CgiError::kBadHeaderLine);
    if (!iequals(head.headers.back().name, "Status")) continue;
    if (status_given) return cgi_error(CgiError::kBadStatus);
    if (auto error = parse_status(head.headers.back().value, head)) return cgi_error(*error);
    status_given = true;
    head.headers.pop_back();
  }
  if (output.size() > max_head_bytes) return cgi_error(CgiError::kHeadTooLarge);
  return at_eof ? cgi_error(CgiError::kNoBlankLine) : CgiResult{};
}

}  // namespace protocol
