#include "common/units.h"

#include <charconv>
#include <cmath>
#include <limits>
#include <utility>

namespace common {
namespace {

// Splits "250ms" into 250 and "ms"; nullopt when there is no leading number. A fraction ("1.5s")
// is allowed for durations.
std::optional<std::pair<double, std::string_view>> split_number(std::string_view text) {
  double value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data() || !std::isfinite(value) || value < 0) return std::nullopt;
  return std::pair{value, text.substr(static_cast<std::size_t>(end - text.data()))};
}

}  // namespace

std::optional<std::chrono::milliseconds> parse_duration(std::string_view text) {
  // Summed in nanoseconds, each part rounded to one: "0.1s" is 100 ms, not a hair more.
  constexpr double kMaxNs = static_cast<double>(std::numeric_limits<std::int32_t>::max()) * 1e9;
  auto whole = split_number(text);
  if (!whole) return std::nullopt;
  double ns = whole->second.empty() ? std::round(whole->first * 1e9) : 0;  // plain: seconds
  // Otherwise one or more number-unit pairs, the form of Go's time.ParseDuration ("1m30s",
  // "1.5h", "250ms", "500us"), in which OpenFaaS watchdog configurations are written.
  while (!whole->second.empty() && !text.empty()) {
    auto split = split_number(text);
    if (!split) return std::nullopt;
    auto [value, rest] = *split;
    std::size_t length = 0;
    while (length < rest.size() && rest[length] != '.' && (rest[length] < '0' || rest[length] > '9'))
      ++length;
    std::string_view unit = rest.substr(0, length);
    double ns_per_unit = 0;
    if (unit == "ns") ns_per_unit = 1;
    else if (unit == "us" || unit == "\u00b5s" || unit == "\u03bcs") ns_per_unit = 1e3;
    else if (unit == "ms") ns_per_unit = 1e6;
    else if (unit == "s") ns_per_unit = 1e9;
    else if (unit == "m") ns_per_unit = 60e9;
    else if (unit == "h") ns_per_unit = 3600e9;
    else return std::nullopt;
    ns += std::round(value * ns_per_unit);
    text = rest.substr(length);
  }
  if (ns > kMaxNs) return std::nullopt;
  // Up to the next millisecond, so that a short duration ("500us") is never taken for none.
  auto whole_ns = static_cast<std::int64_t>(ns);
  return std::chrono::milliseconds((whole_ns + 999'999) / 1'000'000);
}

std::optional<std::uint64_t> parse_size(std::string_view text) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || end == text.data()) return std::nullopt;
  std::string_view unit = text.substr(static_cast<std::size_t>(end - text.data()));
  int shift = 0;
  if (unit.empty() || unit == "B") shift = 0;
  else if (unit == "KiB" || unit == "KB" || unit == "K" || unit == "k") shift = 10;
  else if (unit == "MiB" || unit == "MB" || unit == "M") shift = 20;
  else if (unit == "GiB" || unit == "GB" || unit == "G") shift = 30;
  else return std::nullopt;
  if (value > (std::numeric_limits<std::uint64_t>::max() >> shift)) return std::nullopt;
  return value << shift;
}

std::optional<std::int64_t> parse_whole(std::string_view text, std::int64_t min,
                                        std::int64_t max) {
  std::uint64_t value = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size() ||
      value > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
    return std::nullopt;
  auto whole = static_cast<std::int64_t>(value);
  if (whole < min || whole > max) return std::nullopt;
  return whole;
}

}  // namespace common
