// Chunked bodies: the decoder gives one answer however the bytes are sliced, and what the chunk
// writer produces from a decoded body decodes back to it.
#include <cstdint>
#include <string>

#include "protocol/http_parser.h"
#include "protocol/http_writer.h"
#include "tests/fuzz/fuzz_support.h"

using namespace protocol;

namespace {

struct Decoded {
  ParseStatus status = ParseStatus::kIncomplete;
  ParseError error = ParseError::kBadHeader;
  std::string body;
  std::size_t consumed = 0;
  Headers trailers;

  bool operator==(const Decoded& other) const {
    return status == other.status && (status != ParseStatus::kError || error == other.error) &&
           body == other.body && consumed == other.consumed &&
           fuzz::fields(trailers) == fuzz::fields(other.trailers);
  }
};

// A streaming caller: keeps what was not consumed and appends `slice` bytes at a time.
Decoded decode(BodyFraming framing, std::string_view bytes, std::size_t slice,
               const Limits& limits) {
  BodyDecoder decoder(framing, limits);
  Decoded out;
  std::string pending;
  for (std::size_t fed = 0;;) {
    std::size_t take = std::min(slice, bytes.size() - fed);
    pending.append(bytes.substr(fed, take));
    fed += take;
    BodyDecoder::Step step;
    do {
      step = decoder.next(pending);
      FUZZ_CHECK(step.consumed <= pending.size());
      FUZZ_CHECK(step.data.empty() || step.data.data() >= pending.data());
      out.body.append(step.data);
      out.consumed += step.consumed;
      pending.erase(0, step.consumed);
    } while (step.status == ParseStatus::kIncomplete && step.consumed > 0);
    out.status = step.status;
    out.error = step.error;
    if (step.status != ParseStatus::kIncomplete || fed == bytes.size()) break;
  }
  FUZZ_CHECK(out.consumed <= bytes.size());
  FUZZ_CHECK(decoder.body_bytes() == out.body.size());
  FUZZ_CHECK(decoder.done() == (out.status == ParseStatus::kComplete));
  out.trailers = decoder.trailers();
  return out;
}

// Re-encodes a decoded body in input-derived chunk sizes; it must decode to the same body.
void check_reencode(const Decoded& decoded, const Limits& limits) {
  std::string encoded;
  std::size_t piece = decoded.body.empty() ? 1 : 1 + decoded.body.size() % 7;
  for (std::size_t at = 0; at < decoded.body.size(); at += piece) {
    append_chunk(encoded, std::string_view(decoded.body).substr(at, piece));
  }
  append_last_chunk(encoded, decoded.trailers);
  Decoded again = decode({BodyKind::kChunked, 0}, encoded, encoded.size(), limits);
  FUZZ_CHECK(again.status == ParseStatus::kComplete);
  FUZZ_CHECK(again.consumed == encoded.size());
  FUZZ_CHECK(again.body == decoded.body);
  FUZZ_CHECK(fuzz::fields(again.trailers) == fuzz::fields(decoded.trailers));
}

void check_chunked(std::string_view bytes, const Limits& limits) {
  BodyFraming chunked{BodyKind::kChunked, 0};
  Decoded whole = decode(chunked, bytes, bytes.size(), limits);
  std::size_t odd_slice = 1 + std::hash<std::string_view>{}(bytes) % 13;
  for (std::size_t slice : {std::size_t{1}, std::size_t{2}, odd_slice}) {
    FUZZ_CHECK(decode(chunked, bytes, slice, limits) == whole);
  }
  if (whole.status == ParseStatus::kComplete) {
    FUZZ_CHECK(whole.body.size() <= limits.max_body_bytes);
    Limits roomy = limits;
    roomy.max_head_bytes = 1 << 20;  // re-encoded trailers are longer than parsed ones
    roomy.max_headers = 1000;
    check_reencode(whole, roomy);
  }
}

}  // namespace

extern "C" int FUZZ_ENTRY(const std::uint8_t* data, std::size_t size) {
  std::string_view bytes = fuzz::as_view(data, size);
  check_chunked(bytes, {});
  check_chunked(bytes, fuzz::small_limits());
  Decoded fixed = decode({BodyKind::kLength, size / 2}, bytes, 3, {});
  FUZZ_CHECK(fixed.status == ParseStatus::kComplete && fixed.body == bytes.substr(0, size / 2));
  return 0;
}
