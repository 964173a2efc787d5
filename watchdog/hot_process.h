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
#include "common/pipe_order.h"
#include "common/process_state.h"
#include "watchdog/pool_clock.h"
#include "watchdog/runner.h"
#include "watchdog/stderr_pump.h"

namespace watchdog {

// Why a hot process was stopped, for the kills_total metric and the log.
enum class StopReason { kTimeout, kProtocol, kExited, kClientGone, kIdle, kRecycle, kMaxRequests,
                        kShutdown, kClosed };
inline constexpr std::size_t kStopReasons = 9;
const char* stop_reason_name(StopReason reason) noexcept;

class HotProcess {
 public:
  using Clock = std::chrono::steady_clock;
  enum class State { kStarting, kIdle, kBusy, kStopping };

  // What a spawn needs. The handler's stderr goes to `pump`, its pipes are watched by `pipes` (both
  // must outlive the process); `clock` (copied) stamps its spawn and its last use.
  struct SpawnContext {
    const common::SpawnOptions& options;
    StderrPump& pump;
    common::PipeWatcher& pipes;
    std::uint64_t generation;
    const PoolClock& clock;
  };

  // Starts the handler. kBadGateway when it cannot be executed, kUnavailable when the fds or
  // processes it needs cannot be had. Never throws (but for std::bad_alloc).
  static common::Result<std::unique_ptr<HotProcess>> spawn(const SpawnContext& context);

  // What serve() did: `status` for the client, and whether the handler provably read none of the
  // request, so that it may go to another process (only when nothing reached the client).
  struct Served {
    common::Status status;
    bool request_unread = false;
  };

  // Serves one request: writes it (head, then `held` or else the body streamed from the client)
  // while it reads the response and relays it to the client. On an error the process is poisoned
  // (see poisoned()). Calls `done` as soon as the handler's part is over (its response read, or the
  // exchange with it failed), which may be before the client has all of the response: after `done`
  // the process may be serving another request, and the caller must not touch it.
  // REQUIRES: state() == kBusy and the process was idle-clean (check_idle()); `held` is what
  // hold_body() gave for this request.
  Served serve(Invocation& invocation, const std::optional<std::string>& held,
               std::uint64_t max_body, const std::function<void()>& done);

  // The request's body read whole before it is written, or nullopt when it streams from the client
  // as it is written. The stdio protocol needs a length first, so a chunked body is held (bounded by
  // max_body); a body of known length up to 64 KiB is held too, so that a request no process read
  // can be sent again.
  static common::Result<std::optional<std::string>> hold_body(common::ClientRequest& request,
                                                              std::uint64_t max_body);

  // While idle: false (and poisoned) when it has exited, wrote anything, read after its last
  // answer, or left bytes of its last request unread. With `dispatching`, the process is about to
  // get a request: its pipe events start anew.
  bool check_idle(bool dispatching);

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
  HotProcess(common::Child child, std::shared_ptr<LogTag> tag, std::uint64_t generation,
             PoolClock clock);
  static common::Result<std::unique_ptr<HotProcess>> spawn_or_throw(const SpawnContext& context);
  bool out_of_step_while_idle(bool dispatching);

  common::Child child_;
  std::unique_ptr<common::PipeOrder> order_;  // before child_ in destruction: its pipes are open
  common::ProcessState process_state_;
  std::shared_ptr<LogTag> tag_;
  std::uint64_t generation_;
  PoolClock clock_;
  State state_ = State::kStarting;
  std::uint64_t requests_ = 0;
  std::uint64_t successes_ = 0;
  Clock::time_point spawned_at_;
  Clock::time_point last_used_;
  std::optional<StopReason> poisoned_;
  std::string stdout_buffer_;  // the one reader: bytes read from stdout and not yet consumed
};

}  // namespace watchdog
