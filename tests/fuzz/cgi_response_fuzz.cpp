// CGI header blocks: the answer for a prefix is "incomplete" or final, EOF only settles what was
// open, and each response kind has the shape RFC 3875 6.2 gives it.
#include <cstdint>
#include <string>

#include "protocol/cgi_response.h"
#include "tests/fuzz/fuzz_support.h"

using namespace protocol;

namespace {

std::string outcome(const CgiResult& result) {
  switch (result.status) {
    case CgiResult::Status::kIncomplete:
      return "incomplete";
    case CgiResult::Status::kError:
      return "error " + std::string(describe(result.error));
    case CgiResult::Status::kComplete:
      break;
  }
  const CgiHead& head = result.head;
  return "complete " + std::to_string(result.consumed) + " " +
         std::to_string(static_cast<int>(head.kind)) + " " + std::to_string(head.status) + " " +
         head.reason + " " + fuzz::fields(head.headers);
}

void check_shape(const CgiHead& head) {
  FUZZ_CHECK(head.status >= 100 && head.status <= 999);
  FUZZ_CHECK(find_header(head.headers, "Status") == nullptr);
  const Header* location = find_header(head.headers, "Location");
  bool has_type = find_header(head.headers, "Content-Type") != nullptr;
  switch (head.kind) {
    case CgiResponseKind::kDocument:
      FUZZ_CHECK(has_type || head.status == 204 || head.status == 304);  // no body, no type
      break;
    case CgiResponseKind::kLocalRedirect:
      FUZZ_CHECK(head.headers.size() == 1 && location && location->value.starts_with('/'));
      break;
    case CgiResponseKind::kClientRedirect:
      FUZZ_CHECK(location && !has_type);
      break;
    case CgiResponseKind::kClientRedirectWithDocument:
      FUZZ_CHECK(location && has_type);
      break;
  }
}

void check(std::string_view bytes, std::string_view default_type, std::size_t max) {
  CgiResult open = parse_cgi_head(bytes, false, default_type, max);
  CgiResult closed = parse_cgi_head(bytes, true, default_type, max);
  std::string settled = outcome(open);
  if (open.status == CgiResult::Status::kIncomplete) {
    FUZZ_CHECK(closed.status == CgiResult::Status::kError &&
               closed.error == CgiError::kNoBlankLine);
  } else {
    FUZZ_CHECK(outcome(closed) == settled);
  }
  std::size_t cut = std::hash<std::string_view>{}(bytes) % (bytes.size() + 1);
  std::string prefix = outcome(parse_cgi_head(bytes.substr(0, cut), false, default_type, max));
  FUZZ_CHECK(prefix == "incomplete" || prefix == settled);
  if (open.status != CgiResult::Status::kComplete) return;
  FUZZ_CHECK(open.consumed > 0 && open.consumed <= bytes.size() && open.consumed <= max);
  check_shape(open.head);
  std::string_view head = bytes.substr(0, open.consumed);
  FUZZ_CHECK(outcome(parse_cgi_head(head, false, default_type, max)) == settled);
  FUZZ_CHECK(parse_cgi_head(head.substr(0, head.size() - 1), false, default_type, max).status ==
             CgiResult::Status::kIncomplete);
}

}  // namespace

extern "C" int FUZZ_ENTRY(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes = fuzz::as_view(data, size);
  check(bytes, "text/plain; charset=utf-8", 64 * 1024);
  check(bytes, "", 64 * 1024);
  check(bytes, "text/plain", 64);
  return 0;
}
