// Shared by the libFuzzer targets: an invariant check that aborts (what libFuzzer reports as a
// finding), the entry-point name, and a MessageParser driver whose outcome is one comparable
// string.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/http_parser.h"

// The corpus replay links all four targets into one program, so each gets its own name there.
#ifndef FUZZ_ENTRY
#define FUZZ_ENTRY LLVMFuzzerTestOneInput
#endif

#define FUZZ_CHECK(condition)                                                                \
  do {                                                                                       \
    if (!(condition)) {                                                                      \
      std::fprintf(stderr, "%s:%d: invariant failed: %s\n", __FILE__, __LINE__, #condition); \
      std::abort();                                                                          \
    }                                                                                        \
  } while (0)

namespace fuzz {

inline std::string_view as_view(const std::uint8_t* data, std::size_t size) {
  return {reinterpret_cast<const char*>(data), size};
}

inline std::string fields(const protocol::Headers& headers) {
  std::string out;
  for (const auto& header : headers) out += "[" + header.name + "|" + header.value + "]";
  return out;
}

inline std::string head_text(const protocol::RequestHead& head) {
  return head.method + " " + head.target + " " + std::to_string(head.version_minor) + " " +
         fields(head.headers);
}

inline std::string head_text(const protocol::ResponseHead& head) {
  return std::to_string(head.version_minor) + " " + std::to_string(head.status) + " " +
         head.reason + " " + fields(head.headers);
}

// Everything a caller observes after feeding `slices` (and finish() when `at_eof`).
template <class Head>
std::string parse_slices(const std::vector<std::string_view>& slices,
                         const protocol::Limits& limits, std::string_view method, bool at_eof,
                         protocol::Message<Head>* message = nullptr) {
  protocol::MessageParser<Head> parser(limits, method);
  auto status = protocol::ParseStatus::kIncomplete;
  for (std::string_view slice : slices) status = parser.feed(slice);
  if (at_eof) status = parser.finish();
  if (status == protocol::ParseStatus::kError) {
    return "error " + std::string(protocol::describe(parser.error()));
  }
  if (status == protocol::ParseStatus::kIncomplete) return "incomplete";
  if (message != nullptr) *message = parser.message();
  std::size_t total = 0;
  for (std::string_view slice : slices) total += slice.size();
  FUZZ_CHECK(parser.consumed() <= total);
  return "complete " + std::to_string(parser.consumed()) + " " + head_text(parser.message().head) +
         " body=" + parser.message().body + " trailers=" + fields(parser.message().trailers);
}

// Whole, split in two at two input-derived points, and in many small slices: the
// outcome may not depend on how the bytes arrived. Returns the whole-input outcome.
template <class Head>
std::string check_splits(std::string_view bytes, const protocol::Limits& limits,
                         std::string_view method, bool at_eof,
                         protocol::Message<Head>* message = nullptr) {
  std::string whole = parse_slices<Head>({bytes}, limits, method, at_eof, message);
  std::size_t hash = std::hash<std::string_view>{}(bytes);
  for (std::size_t cut : {hash % (bytes.size() + 1), (hash >> 20) % (bytes.size() + 1)}) {
    FUZZ_CHECK(parse_slices<Head>({bytes.substr(0, cut), bytes.substr(cut)}, limits, method,
                                  at_eof) == whole);
  }
  // Byte by byte is the hardest case; longer inputs use small input-derived slices to stay fast.
  std::size_t step = bytes.size() <= 128 ? 1 : 1 + (hash >> 40) % 13;
  std::vector<std::string_view> slices;
  for (std::size_t i = 0; i < bytes.size(); i += step) slices.push_back(bytes.substr(i, step));
  FUZZ_CHECK(parse_slices<Head>(slices, limits, method, at_eof) == whole);
  return whole;
}

inline protocol::Limits small_limits() {
  protocol::Limits limits;
  limits.max_head_bytes = 256;
  limits.max_headers = 8;
  limits.max_body_bytes = 64;
  return limits;
}

}  // namespace fuzz
