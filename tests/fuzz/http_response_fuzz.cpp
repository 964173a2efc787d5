// Responses, as a hot handler writes them: one answer for every split, with and without EOF, for
// GET and HEAD; a parsed head written back parses to the same head.
#include <cstdint>
#include <string>

#include "protocol/http_parser.h"
#include "protocol/http_writer.h"
#include "tests/fuzz/fuzz_support.h"

using namespace protocol;

namespace {

void check_round_trip(const ResponseHead& head) {
  std::string out;
  append_response_head(out, head);
  auto again = parse_response_head(out, {1 << 20, 1000, UINT64_MAX});
  FUZZ_CHECK(again.status == ParseStatus::kComplete && again.consumed == out.size());
  ResponseHead expected = head;
  if (expected.reason.empty()) expected.reason = reason_phrase(head.status);
  FUZZ_CHECK(fuzz::head_text(again.head) == fuzz::head_text(expected));
}

void check_method(std::string_view bytes, std::string_view method) {
  Message<ResponseHead> message;
  std::string outcome = fuzz::check_splits<ResponseHead>(bytes, {}, method, false, &message);
  std::string at_eof = fuzz::check_splits<ResponseHead>(bytes, {}, method, true);
  fuzz::check_splits<ResponseHead>(bytes, fuzz::small_limits(), method, true);
  // EOF can only settle what was open; a settled outcome stays as it was.
  if (outcome != "incomplete") FUZZ_CHECK(at_eof == outcome);
  if (at_eof == "incomplete") FUZZ_CHECK(bytes.empty());
  if (!outcome.starts_with("complete")) return;
  auto framing = response_framing(message.head, method);
  FUZZ_CHECK(framing.ok && framing.framing.kind != BodyKind::kUntilClose);
  // kNone has length 0; a chunked body is checked by chunked_fuzz.
  bool sized = framing.framing.kind != BodyKind::kChunked;
  FUZZ_CHECK(!sized || message.body.size() == framing.framing.length);
  FUZZ_CHECK(message.head.status >= 100 && message.head.status <= 999);
  check_round_trip(message.head);
}

}  // namespace

extern "C" int FUZZ_ENTRY(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes = fuzz::as_view(data, size);
  auto head = parse_response_head(bytes);
  if (head.status == ParseStatus::kComplete) {
    FUZZ_CHECK(head.consumed > 0 && head.consumed <= size);
    FUZZ_CHECK(parse_response_head(bytes.substr(0, head.consumed - 1)).status ==
               ParseStatus::kIncomplete);
  }
  check_method(bytes, "GET");
  check_method(bytes, "HEAD");
  return 0;
}
