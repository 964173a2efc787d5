// Requests: MessageParser gives one answer for every split, agrees with parse_request_head, and
// what the writers produce from a parsed head parses back to it.
#include <cstdint>
#include <string>

#include "protocol/http_parser.h"
#include "protocol/http_writer.h"
#include "tests/fuzz/fuzz_support.h"

using namespace protocol;

namespace {

// Written heads grow (CRLF, ": ", three fields for the handler); these limits are not under test.
const Limits kRoomy{1 << 20, 1000, UINT64_MAX};

void check_head(std::string_view bytes) {
  auto result = parse_request_head(bytes);
  if (result.status != ParseStatus::kComplete) return;
  FUZZ_CHECK(result.consumed > 0 && result.consumed <= bytes.size());
  auto exact = parse_request_head(bytes.substr(0, result.consumed));
  FUZZ_CHECK(exact.status == ParseStatus::kComplete && exact.consumed == result.consumed);
  auto short_by_one = parse_request_head(bytes.substr(0, result.consumed - 1));
  FUZZ_CHECK(short_by_one.status == ParseStatus::kIncomplete);
}

void check_round_trip(const RequestHead& head) {
  std::string out;
  append_request_head(out, head);
  auto again = parse_request_head(out, kRoomy);
  FUZZ_CHECK(again.status == ParseStatus::kComplete && again.consumed == out.size());
  FUZZ_CHECK(fuzz::head_text(again.head) == fuzz::head_text(head));
}

void check_hot_head(const RequestHead& head, std::uint64_t body_size) {
  std::string out;
  append_hot_request_head(out, head, {"req-id", 1795000000000, body_size});
  auto again = parse_request_head(out, kRoomy);
  FUZZ_CHECK(again.status == ParseStatus::kComplete && again.consumed == out.size());
  FUZZ_CHECK(again.head.method == head.method && again.head.target == head.target);
  auto framing = request_framing(again.head);
  FUZZ_CHECK(framing.ok && framing.framing.kind == BodyKind::kLength);
  FUZZ_CHECK(framing.framing.length == body_size);
  std::size_t ids = 0;
  for (const Header& header : again.head.headers) {
    FUZZ_CHECK(!is_hop_by_hop(header.name));
    ids += iequals(header.name, "X-Fn-Request-Id") ? 1 : 0;
  }
  FUZZ_CHECK(ids == 1 && header_value(again.head.headers, "X-Fn-Request-Id") == "req-id");
}

}  // namespace

extern "C" int FUZZ_ENTRY(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes = fuzz::as_view(data, size);
  check_head(bytes);
  Message<RequestHead> message;
  std::string outcome = fuzz::check_splits<RequestHead>(bytes, {}, "GET", false, &message);
  fuzz::check_splits<RequestHead>(bytes, {}, "GET", true);
  fuzz::check_splits<RequestHead>(bytes, fuzz::small_limits(), "GET", false);
  if (!outcome.starts_with("complete")) return 0;
  auto head = parse_request_head(bytes);
  FUZZ_CHECK(head.status == ParseStatus::kComplete);
  FUZZ_CHECK(fuzz::head_text(head.head) == fuzz::head_text(message.head));
  auto framing = request_framing(message.head);
  FUZZ_CHECK(framing.ok);
  // kNone has length 0; a chunked body is checked by chunked_fuzz.
  bool sized = framing.framing.kind != BodyKind::kChunked;
  FUZZ_CHECK(!sized || message.body.size() == framing.framing.length);
  check_round_trip(message.head);
  check_hot_head(message.head, message.body.size());
  return 0;
}
