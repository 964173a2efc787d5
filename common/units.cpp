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
  auto whole = split_number(text);
  if (!whole) return std::nullopt;
  double ms = whole->second.empty() ? whole->first * 1000 : 0;  // a plain number is seconds
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
    double ms_per_unit = 0;
    if (unit == "ms") ms_per_unit = 1;
    else if (unit == "s") ms_per_unit = 1000;
    else if (unit == "m") ms_per_unit = 60'000;
    else if (unit == "h") ms_per_unit = 3'600'000;
    else if (unit == "us" || unit == "\u00b5s" || unit == "\u03bcs") ms_per_unit = 1e-3;
    else if (unit == "ns") ms_per_unit = 1e-6;
    else return std::nullopt;
    ms += value * ms_per_unit;
    text = rest.substr(length);
  }
  if (ms > static_cast<double>(std::numeric_limits<std::int32_t>::max()) * 1000) return std::nullopt;
  // Up to the next millisecond, so that a short duration ("500us") is never taken for none.
  return std::chrono::milliseconds(static_cast<std::int64_t>(std::ceil(ms - 1e-6)));
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

}  // namespace common
