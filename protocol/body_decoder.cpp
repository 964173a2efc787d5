// BodyDecoder, declared in http_parser.h: fixed-length and chunked bodies (RFC 9112 sections 6, 7).
#include <algorithm>
#include <cassert>
#include <utility>

#include "protocol/http_parser.h"

namespace protocol {
namespace {

// A chunk-size line longer than this (most of it extensions) is refused rather than buffered.
constexpr std::size_t kMaxChunkLineBytes = 4096;
// 16 hex digits fill a uint64; more overflow.
constexpr std::size_t kMaxChunkSizeDigits = 16;

// chunk-ext = *( BWS ";" BWS name [ BWS "=" BWS value ] ): extensions are ignored, but they may not
// hide control characters, and whitespace after the size is only allowed before a ';'.
bool is_chunk_extension(std::string_view ext) noexcept {
  while (!ext.empty() && (ext.front() == ' ' || ext.front() == '\t')) ext.remove_prefix(1);
  if (ext.empty()) return false;
  return ext.front() == ';' && std::all_of(ext.begin(), ext.end(), [](char c) {
           auto byte = static_cast<unsigned char>(c);
           return byte == '\t' || (byte >= 0x20 && byte != 0x7f);
         });
}

// The size of a chunk-size line (without its line ending); `overflow` when it is too large for 64
// bits: past any limit, so the body is too large (413), not malformed. Leading zeros do not count
// towards the 16 digits.
std::optional<std::uint64_t> parse_chunk_size(std::string_view line, bool& overflow) noexcept {
  std::size_t digits = 0;
  std::size_t significant = 0;
  std::uint64_t size = 0;
  overflow = false;
  for (; digits < line.size() && hex_value(line[digits]) >= 0; ++digits) {
    significant += significant > 0 || line[digits] != '0' ? 1 : 0;
    overflow = overflow || significant > kMaxChunkSizeDigits;
    size = size * 16 + static_cast<std::uint64_t>(hex_value(line[digits]));
  }
  if (digits == 0) return std::nullopt;
  if (digits < line.size() && !is_chunk_extension(line.substr(digits))) return std::nullopt;
  return size;
}

// The line at the start of `bytes` if its LF lies within `window`: the line, and its length with
// the line ending.
std::optional<std::pair<std::string_view, std::size_t>> line_within(std::string_view bytes,
                                                                    std::size_t window) {
  std::size_t lf = bytes.substr(0, window).find('\n');
  if (lf == std::string_view::npos) return std::nullopt;
  std::string_view line = bytes.substr(0, lf);
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return std::pair{line, lf + 1};
}

BodyDecoder::Step progress(std::size_t consumed, std::string_view data = {}) {
  BodyDecoder::Step step;
  step.consumed = consumed;
  step.data = data;
  return step;
}

}  // namespace

BodyDecoder::BodyDecoder(BodyFraming framing, const Limits& limits) : limits_(limits) {
  assert(framing.kind != BodyKind::kUntilClose);
  switch (framing.kind) {
    case BodyKind::kLength:
      remaining_ = framing.length;
      state_ = State::kLength;
      break;
    case BodyKind::kChunked:
      state_ = State::kChunkSize;
      break;
    default:
      state_ = State::kDone;
  }
}

BodyDecoder::Step BodyDecoder::next(std::string_view bytes) {
  std::size_t used = 0;
  for (;;) {
    Step step = advance(bytes.substr(used));
    std::size_t before = used;
    used += step.consumed;
    step.consumed = used;
    // Framing lines carry no data: go on through them so one call yields a run of data if any.
    bool more = step.status == ParseStatus::kIncomplete && step.data.empty() && used > before;
    if (!more) return step;
  }
}

BodyDecoder::Step BodyDecoder::advance(std::string_view bytes) {
  switch (state_) {
    case State::kLength:
      return length_data(bytes);
    case State::kChunkSize:
      return chunk_size(bytes);
    case State::kChunkData:
      return chunk_data(bytes);
    case State::kChunkDataEnd:
      return chunk_data_end(bytes);
    case State::kTrailers:
      return trailer_line(bytes);
    case State::kFailed:
      return fail(error_);
    case State::kDone:
      break;
  }
  Step step;
  step.status = ParseStatus::kComplete;
  return step;
}

BodyDecoder::Step BodyDecoder::length_data(std::string_view bytes) {
  // Checked before any byte is taken, so an announced length past the limit fails at once.
  if (remaining_ > limits_.max_body_bytes - std::min(body_bytes_, limits_.max_body_bytes)) {
    return fail(ParseError::kBodyTooLarge);
  }
  auto taken = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, bytes.size()));
  remaining_ -= taken;
  body_bytes_ += taken;
  Step step = progress(taken, bytes.substr(0, taken));
  if (remaining_ == 0) {
    state_ = State::kDone;
    step.status = ParseStatus::kComplete;
  }
  return step;
}

BodyDecoder::Step BodyDecoder::chunk_size(std::string_view bytes) {
  auto line = line_within(bytes, kMaxChunkLineBytes);
  if (!line) return bytes.size() >= kMaxChunkLineBytes ? fail(ParseError::kBadChunk) : Step{};
  bool overflow = false;
  auto size = parse_chunk_size(line->first, overflow);
  if (!size) return fail(ParseError::kBadChunk);
  if (overflow) return fail(ParseError::kBodyTooLarge);
  if (*size == 0) {
    state_ = State::kTrailers;
  } else if (*size > limits_.max_body_bytes - std::min(body_bytes_, limits_.max_body_bytes)) {
    // Refused on its size line, before any of its data: a body over the limit is known at once.
    return fail(ParseError::kBodyTooLarge);
  } else {
    remaining_ = *size;
    state_ = State::kChunkData;
  }
  return progress(line->second);
}

BodyDecoder::Step BodyDecoder::chunk_data(std::string_view bytes) {
  auto taken = static_cast<std::size_t>(std::min<std::uint64_t>(remaining_, bytes.size()));
  remaining_ -= taken;
  body_bytes_ += taken;
  if (remaining_ == 0) state_ = State::kChunkDataEnd;
  return progress(taken, bytes.substr(0, taken));
}

BodyDecoder::Step BodyDecoder::chunk_data_end(std::string_view bytes) {
  std::size_t ending = bytes.starts_with("\r\n") ? 2 : bytes.starts_with('\n') ? 1 : 0;
  if (ending == 0) return bytes.empty() || bytes == "\r" ? Step{} : fail(ParseError::kBadChunk);
  state_ = State::kChunkSize;
  return progress(ending);
}

BodyDecoder::Step BodyDecoder::trailer_line(std::string_view bytes) {
  // The trailer section gets the head's budget; the "0" line before it is not counted.
  std::size_t budget = limits_.max_head_bytes - trailer_bytes_;
  auto line = line_within(bytes, budget);
  if (!line) return bytes.size() > budget ? fail(ParseError::kHeadTooLarge) : Step{};
  trailer_bytes_ += line->second;
  Step step = progress(line->second);
  if (line->first.empty()) {
    state_ = State::kDone;
    step.status = ParseStatus::kComplete;
  } else if (trailers_.size() >= limits_.max_headers) {
    return fail(ParseError::kTooManyHeaders);
  } else if (!parse_trailer_field(line->first, trailers_)) {
    return fail(ParseError::kBadChunk);
  }
  return step;
}

BodyDecoder::Step BodyDecoder::fail(ParseError error) {
  state_ = State::kFailed;
  error_ = error;
  Step step;
  step.status = ParseStatus::kError;
  step.error = error;
  return step;
}

}  // namespace protocol
