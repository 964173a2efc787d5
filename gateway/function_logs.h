// What GET /_fn/logs/NAME serves: each function's recent log, the lines its watchdogs wrote (their
// stdout and stderr, as the gateway relayed them to its own stderr), kept in a bounded ring that
// lives as long as the function (across watchdog restarts and reloads that relaunch it) and goes
// when the function does. Followers read from the ring, never from a pipe, so a slow or gone
// follower costs the watchdogs nothing: what it missed past the ring is skipped and said.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace gateway {

// What one function's ring keeps, whichever is reached first.
struct LogLimits {
  std::size_t lines = 1000;
  std::size_t bytes = 1u << 20;  // each line's newline counted
};

// One function's recent lines, numbered from 0 in the order they came. Thread-safe: appended by
// the pump's thread, read by any number of followers; each call holds the lock for a copy only.
class FunctionLog {
 public:
  using Clock = std::chrono::steady_clock;
  // Lines, each ending in "\n", oldest first; `next` is the number of the line after the last.
  struct Lines {
    std::string text;
    std::uint64_t next = 0;
    std::uint64_t skipped = 0;  // lines asked for that the ring no longer holds
  };

  explicit FunctionLog(LogLimits limits = {}) : limits_(limits) {}

  // Keeps `line` (without its newline), dropping the oldest lines past the limits. A line longer
  // than the byte limit is cut to it, with kCutMarker.
  void append(std::string_view line);
  // The last `count` lines the ring holds (all of them when nullopt).
  Lines last(std::optional<std::size_t> count = std::nullopt) const;
  // The lines numbered `from` and after (those already dropped are counted in `skipped`).
  Lines since(std::uint64_t from) const;
  // Waits until there is a line numbered `from` or after, the log is closed, or `deadline`.
  // True unless the deadline passed first.
  bool wait(std::uint64_t from, Clock::time_point deadline) const;
  // Followers end: the function went, or the gateway drains. Appending goes on.
  void close();
  bool closed() const;

 private:
  LogLimits limits_;
  mutable std::mutex mutex_;
  mutable std::condition_variable changed_;
  std::deque<std::string> lines_;
  std::size_t bytes_ = 0;
  std::uint64_t next_ = 0;  // the number the next line gets
  bool closed_ = false;
};

// What ends a line cut short, and how a follower is told of lines it missed.
inline constexpr std::string_view kCutMarker = " [fastfn: line cut]";
std::string skipped_line(std::uint64_t count);

// How a follow ended.
enum class FollowEnd { kClosed, kClientGone, kSendFailed };

// Streams `log` from line `from` on to `send` until the log closes, `send` fails (false), or
// `client_gone()` says the client left; that is asked at least every `check_every` while no line
// comes, so a client that left is noticed in bounded time. Blocks the calling thread throughout.
FollowEnd follow(const FunctionLog& log, std::uint64_t from,
                 const std::function<bool(std::string_view)>& send,
                 const std::function<bool()>& client_gone, std::chrono::milliseconds check_every);

// Every function's log by name, and the bound on followers. Thread-safe.
class FunctionLogs {
 public:
  explicit FunctionLogs(LogLimits limits = {}, int max_followers = 64)
      : limits_(limits), max_followers_(max_followers) {}

  // The log of `name`, made when it has none. Closed already once close_all() was called.
  std::shared_ptr<FunctionLog> open(const std::string& name);
  // The log of `name`, or null for a function the gateway does not serve.
  std::shared_ptr<FunctionLog> find(const std::string& name) const;
  // The functions served now: their logs are kept (made when new); the others are closed and
  // dropped (a watchdog still draining keeps writing into its own, unlisted).
  void keep_only(const std::vector<std::string>& names);
  // The drain: every log is closed, so that every follower ends now.
  void close_all();

  // A follower's place, held while it follows (RAII).
  class Follower {
   public:
    explicit Follower(FunctionLogs& logs) : logs_(&logs) {}
    Follower(Follower&& other) noexcept : logs_(std::exchange(other.logs_, nullptr)) {}
    Follower& operator=(Follower&&) = delete;
    ~Follower();

   private:
    FunctionLogs* logs_;
  };
  // A place, or nullopt when max_followers follow already.
  std::optional<Follower> admit();
  int followers() const;

 private:
  LogLimits limits_;
  int max_followers_;
  mutable std::mutex mutex_;
  std::map<std::string, std::shared_ptr<FunctionLog>> logs_;
  int followers_ = 0;
  bool closed_ = false;
};

}  // namespace gateway
