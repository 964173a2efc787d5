// spdlog setup for both binaries (STYLE.md section 6): one stderr sink configured by main, named
// loggers per module cloned from the default one, text or JSON lines.
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <spdlog/spdlog.h>

namespace common {

enum class LogFormat { kText, kJson };

// Parses "text" / "json".
bool parse_log_format(std::string_view text, LogFormat* format);

// The levels a --log-level takes, as an error message lists them.
inline constexpr std::string_view kLogLevels = "trace, debug, info, warn, error or off";
bool is_log_level(std::string_view text);

// Configures the default logger: stderr, the pattern `%Y-%m-%dT%H:%M:%S.%e %l [%n] %v` (or one JSON
// object per line, common/json_log_formatter.h), level from `level` ("info" when empty or
// unknown). Text lines are escaped with escape_log_text, so no message can start a line of its
// own. Call once, from main, before any thread starts.
void setup_logging(LogFormat format, std::string_view level = "info");

// `text` made safe for a line-based log that people read in terminals: CR and LF become "\r" and
// "\n", the other C0 controls (but TAB), DEL and every byte that is not part of well-formed UTF-8
// become "\xNN" (ESC is "\x1b", NUL "\x00"), and the C1 controls U+0080-U+009F and the line and
// paragraph separators U+2028/U+2029 become "\uNNNN". Nothing else changes (a backslash stays
// one), so escaping twice changes nothing more. Returns `text` itself when it is already safe, else
// a view into `storage`.
std::string_view escape_log_text(std::string_view text, std::string& storage);

// Writes `line` and a newline to stderr as it is (no time, no escaping: a line another process
// logged), in one write under the lock of the log's own stderr sink, so that it never interleaves
// with a line of this process's log. Thread-safe.
void write_log_line(std::string_view line);

// The format asked for by a command line that may not parse, for its error: the value of the last
// `--log-format VALUE` or `--log-format=VALUE` in `args` before a `--`, else `fallback` (the
// environment's); kJson when that is "json", else kText.
LogFormat requested_log_format(const std::vector<std::string>& args, std::string_view fallback);

// Writes a fatal start-up error (a bad command line or config, a listener that cannot open) on
// stderr, before or instead of the log: `PROGRAM: MESSAGE` (escaped as a text log line), or one
// JSON line at level critical whose logger is PROGRAM without its "fastfn-" ("gateway").
void print_fatal(LogFormat format, std::string_view program, std::string_view message);

// The logger named `name` ("watchdog.cgi"), cloned from the default logger on first use.
// Thread-safe; the pointer stays valid for the life of the program.
std::shared_ptr<spdlog::logger> logger(const std::string& name);

}  // namespace common
