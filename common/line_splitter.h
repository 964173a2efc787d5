// Cuts a child's stderr into log lines, and keeps what reaches the log safe and bounded, whatever
// the child writes:
// - Lines of any length are handled: one longer than the limit is emitted in pieces as it arrives,
//   so a 1 MiB line never stalls the pipe or grows a buffer.
// - Control characters and bytes that are not UTF-8 are escaped (common::escape_log_text), so a
//   line cannot end itself early, forge the next log line ("ok\r<fake line>") or send a terminal
//   escape sequence to whoever reads the log.
// - What one request may log and what one process may log per second are capped (LogCaps); what
//   is dropped is counted and said, once, in a line of its own.
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

namespace common {

// The caps on a child's stderr in the log (docs/DECISIONS.md, "A function's stderr in the log").
// Sizes count bytes written to the log: the escaped line plus kLogLineOverhead.
struct LogCaps {
  std::uint64_t per_request = 1024 * 1024;  // one CGI run, or one request a hot process serves
  std::uint64_t per_second = 1024 * 1024;   // the rate of one process (a token bucket) ...
  std::uint64_t burst = 1024 * 1024;        // ... and what it may write at once
};

// What the log adds to each line (time, level, logger, function, pid, request id): a flood of
// empty lines costs log space too.
inline constexpr std::uint64_t kLogLineOverhead = 100;

// A token bucket over an injected clock: `per_second` tokens a second, at most `burst` saved; it
// starts full. Not thread-safe.
class TokenBucket {
 public:
  using Clock = std::chrono::steady_clock;
  TokenBucket(std::uint64_t per_second, std::uint64_t burst) : per_second_(per_second), burst_(burst) {}

  // Takes `tokens` if there are that many at `now`; false (taking none) if not.
  bool take(std::uint64_t tokens, Clock::time_point now);

 private:
  std::uint64_t per_second_;
  std::uint64_t burst_;
  double tokens_ = -1;  // -1 until the first take: full
  Clock::time_point last_{};
};

class LineSplitter {
 public:
  using Emit = std::function<void(std::string_view line)>;
  using Clock = TokenBucket::Clock;

  explicit LineSplitter(std::size_t max_line = 16 * 1024, LogCaps caps = {});

  // Emits every complete line in `bytes` (without its "\n" or "\r\n"), and pieces of max_line bytes
  // of a line that grows past the limit; keeps the unfinished rest. Lines are escaped; those over
  // the caps are dropped (the first drop of a request is announced at once).
  void feed(std::string_view bytes, const Emit& emit, Clock::time_point now = Clock::now());
  // Emits what is left (the last line had no newline), then ends the request (end_request).
  void flush(const Emit& emit, Clock::time_point now = Clock::now());
  // Ends a request: emits "stderr truncated: dropped N bytes" (and the rate limit's count) when
  // lines were dropped, and gives the next request a fresh per-request cap. N counts the bytes of
  // the dropped lines as the child wrote them, line endings included.
  void end_request(const Emit& emit);

 private:
  // `written` is how many bytes of the stream the line took, its line ending included.
  void emit_line(std::string_view line, std::size_t written, const Emit& emit,
                 Clock::time_point now);
  void log_line(std::string_view line, std::size_t written, const Emit& emit,
                Clock::time_point now);
  void say_rate_drops(const Emit& emit);

  std::size_t max_line_;
  LogCaps caps_;
  TokenBucket bucket_;
  std::string partial_;
  bool just_cut_ = false;  // the last emit was a piece cut at max_line
  std::uint64_t request_logged_ = 0;
  std::uint64_t request_dropped_ = 0;
  bool request_capped_ = false;
  std::uint64_t rate_dropped_ = 0;
};

}  // namespace common
