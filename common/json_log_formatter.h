// The JSON log line (docs/CONFIG.md, "Log format"): one object per line, `time` (RFC 3339 with
// milliseconds and the zone), `level`, `logger`, `msg` (the message text without its fields),
// then each `key=value` of the message as a key of its own (common/log_fields.h), a number when
// it is one.
#pragma once

#include <spdlog/formatter.h>

#include <memory>
#include <string_view>

namespace common {

// A formatter for spdlog's sinks. Like spdlog's own it keeps a cache (the time of the last
// second), so one instance is used by one thread at a time, as spdlog's sinks do under their lock.
std::unique_ptr<spdlog::formatter> make_json_formatter();

// Appends to `out` the JSON line (with its '\n') of a message logged now.
void append_json_log_line(spdlog::level::level_enum level, std::string_view logger,
                          std::string_view message, spdlog::memory_buf_t& out);

// Length of the well-formed UTF-8 sequence at the start of `text` (RFC 3629), 0 when there is
// none. REQUIRES: !text.empty().
std::size_t utf8_sequence_length(std::string_view text);

}  // namespace common
