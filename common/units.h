// Durations ("250ms", "10s", "2m", Go's "1m30s", plain seconds "30") and sizes ("512", "64KiB", "10MiB", also
// "64KB"/"10MB" read as powers of 1024, as users of the OpenFaaS watchdog write them).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace common {

// A timeout of 0 means none, as OpenFaaS's exec_timeout=0 does; the deadline is then this far away.
inline constexpr std::chrono::milliseconds kNoTimeout = std::chrono::hours(24 * 365 * 10);
constexpr std::chrono::milliseconds effective_timeout(std::chrono::milliseconds timeout) {
  return timeout.count() == 0 ? kNoTimeout : timeout;
}

// nullopt for anything malformed, negative or overflowing.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
std::optional<std::uint64_t> parse_size(std::string_view text);
// A whole number written as decimal digits alone (no sign, space or unit), from `min` to `max`:
// a port, a count, an exit code. nullopt for anything else.
std::optional<std::int64_t> parse_whole(std::string_view text, std::int64_t min, std::int64_t max);

}  // namespace common
