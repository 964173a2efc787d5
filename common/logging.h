// spdlog setup for both binaries (STYLE.md section 6): one stderr sink configured by main, named
// loggers per module cloned from the default one, text or JSON lines.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <spdlog/spdlog.h>

namespace common {

enum class LogFormat { kText, kJson };

// Parses "text" / "json".
bool parse_log_format(std::string_view text, LogFormat* format);

// Configures the default logger: stderr, the pattern `%Y-%m-%dT%H:%M:%S.%e %l [%n] %v` (or one JSON
// object per line), level from `level` ("info" when empty or unknown). Call once, from main, before
// any thread starts.
void setup_logging(LogFormat format, std::string_view level = "info");

// The logger named `name` ("watchdog.cgi"), cloned from the default logger on first use.
// Thread-safe; the pointer stays valid for the life of the program.
std::shared_ptr<spdlog::logger> logger(const std::string& name);

}  // namespace common
