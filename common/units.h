// Durations ("250ms", "10s", "2m", plain seconds "30") and sizes ("512", "64KiB", "10MiB", also
// "64KB"/"10MB" read as powers of 1024, as users of the OpenFaaS watchdog write them).
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

namespace common {

// nullopt for anything malformed, negative or overflowing.
std::optional<std::chrono::milliseconds> parse_duration(std::string_view text);
std::optional<std::uint64_t> parse_size(std::string_view text);

}  // namespace common
