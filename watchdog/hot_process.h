// One hot handler (format http, Fn's hot functions): a long-lived child that reads requests framed
// as HTTP/1.1 on its stdin and writes framed responses on its stdout, one at a time. It owns ONE
// read buffer for its whole life (a reader made per request can lose bytes read ahead: the lesson of
// of-watchdog's afterburn mode). Anything off-protocol poisons it: it must be killed and replaced.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "common/child.h"
#include "common/error.h"
#include "watchdog/runner.h"
#include "watchdog/stderr_pump.h"

namespace watchdog {

// Why a hot process was stopped, for the kills_total metric and the log.
enum class StopReason { kTimeout, kProtocol, kExited, kClientGone, kIdle, kRecycle, kMaxRequests,
                        kShutdown };
const char* stop_reason_name(StopReason reason) noexcept;

class HotProcess {
 public:
  using Clock = std::chrono::steady_clock;
  enum class State { kStarting, kIdle, kBusy, kStopping };

  // Starts the handler; its stderr goes to `pump`. kBadGateway when it cannot be executed.
  static common::Result<std::unique_ptr<HotProcess>> spawn(const common::SpawnOptions& options,
                                                           StderrPump& pump,
                                                           std::uint64_t generation);

  // Serves one request: writes it (head, then the body streamed from the client) while it reads the
  // response and relays it to the client. On an error the process is poisoned (see poisoned()).
  // Calls `done` as soon as the handler's part is over (its response read, or the exchange with it
  // failed), which may be before the client has all of the response: after `done` the process may
  // be serving another request, and the caller must not touch it. Not called when the request
  // fails before it reached the handler (a bad client body).
  // REQUIRES: state() == kBusy and the process was idle-clean (check_idle()).
  common::Status serve(Invocation& invocation, std::uint64_t max_body,
                       const std::function<void()>& done);

  // Before a request: false (and poisoned) when it has exited or wrote anything while idle.
  bool check_idle();

  pid_t pid() const noexcept { return child_.pid(); }
  State state() const noexcept { return state_; }
  void set_state(State state) noexcept { state_ = state; }
  std::uint64_t generation() const noexcept { return generation_; }
  std::uint64_t requests() const noexcept { return requests_; }
  std::uint64_t successes() const noexcept { return successes_; }
  Clock::time_point spawned_at() const noexcept { return spawned_at_; }
  Clock::time_point last_used() const noexcept { return last_used_; }
  const std::optional<StopReason>& poisoned() const noexcept { return poisoned_; }
  void poison(StopReason reason) noexcept;
  common::Child& child() noexcept { return child_; }

 private:
  HotProcess(common::Child child, std::shared_ptr<LogTag> tag, std::uint64_t generation);

  common::Child child_;
  std::shared_ptr<LogTag> tag_;
  std::uint64_t generation_;
  State state_ = State::kStarting;
  std::uint64_t requests_ = 0;
  std::uint64_t successes_ = 0;
  Clock::time_point spawned_at_;
  Clock::time_point last_used_;
  std::optional<StopReason> poisoned_;
  std::string stdout_buffer_;  // the one reader: bytes read from stdout and not yet consumed
};

}  // namespace watchdog
