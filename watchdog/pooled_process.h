// What the pool of long-lived processes (hot_pool.h) needs of one of them: a hot handler over its
// stdio (format http, hot_process.h) or an app server on its own socket (format server,
// server_process.h). The pool owns the bookkeeping (requests, successes, last use, in flight): it
// changes only under the pool's lock, so that a process serving several requests at once races
// with nothing.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "common/child.h"
#include "common/error.h"
#include "common/pipe_order.h"
#include "watchdog/pool_clock.h"
#include "watchdog/runner.h"
#include "watchdog/stderr_pump.h"

namespace watchdog {

// Why a process was stopped, for the kills_total metric and the log.
enum class StopReason { kTimeout, kProtocol, kExited, kClientGone, kIdle, kRecycle, kMaxRequests,
                        kShutdown, kClosed, kStartFailed };
inline constexpr std::size_t kStopReasons = 10;
const char* stop_reason_name(StopReason reason) noexcept;

class PooledProcess {
 public:
  using Clock = std::chrono::steady_clock;
  enum class State { kStarting, kIdle, kBusy, kStopping };

  // What a spawn needs. The process's output goes to `pump`, a hot handler's pipes are watched by
  // `pipes` (both must outlive the process); `clock` (copied) stamps its spawn.
  struct SpawnContext {
    const common::SpawnOptions& options;
    StderrPump& pump;
    common::PipeWatcher& pipes;
    std::uint64_t generation;
    const PoolClock& clock;
  };

  // What serve() did: `status` for the client, and whether the process provably read none of the
  // request, so that it may go to another process (only when nothing reached the client).
  struct Served {
    common::Status status;
    bool request_unread = false;
  };
  // How the process's part of one request ended, for the pool's counts: whether it answered, and
  // why it must be stopped if it must.
  struct Settled {
    bool ok = false;
    std::optional<StopReason> stop;
  };
  using Done = std::function<void(const Settled&)>;

  virtual ~PooledProcess() = default;

  // Serves one request (its body `held` whole, or else streamed from the client). Calls `done`
  // once the process's part is over, which may be before the client has all of the response:
  // after `done` the pool may stop the process or give it another request, so the caller must not
  // touch it. REQUIRES: the pool leased it (check_idle() passed).
  virtual Served serve(Invocation& invocation, const std::optional<std::string>& held,
                       std::uint64_t max_body, const Done& done) = 0;

  // Called by the pool with no request in flight: false (and poisoned) when the process has exited
  // or is out of step. With `dispatching`, it is about to get a request.
  virtual bool check_idle(bool dispatching) = 0;

  // While kStarting: whether it serves yet. true once it does (the pool makes it idle); false while
  // it still starts; an error (kStartFailed) when it exited or took longer than it may.
  virtual common::Result<bool> check_started(Clock::time_point now) = 0;

  // How many requests it serves at once (Passenger's max concurrency per process).
  virtual int max_concurrency() const noexcept { return 1; }

  pid_t pid() const noexcept { return child_.pid(); }
  common::Child& child() noexcept { return child_; }
  State state() const noexcept { return state_; }
  void set_state(State state) noexcept { state_ = state; }
  // It can serve from `now` on: idle, and idle only since then (its start does not count).
  void started(Clock::time_point now) noexcept {
    state_ = State::kIdle;
    last_used_ = now;
  }
  std::uint64_t generation() const noexcept { return generation_; }
  Clock::time_point spawned_at() const noexcept { return spawned_at_; }
  std::optional<StopReason> poisoned() const noexcept {
    int reason = poisoned_.load(std::memory_order_acquire);
    if (reason < 0) return std::nullopt;
    return static_cast<StopReason>(reason);
  }
  // The first reason stays. Thread-safe: the lessee checks an idle process outside the pool's lock
  // while a process serving several requests at once may be poisoned by one of them.
  void poison(StopReason reason) noexcept {
    int none = -1;
    poisoned_.compare_exchange_strong(none, static_cast<int>(reason), std::memory_order_acq_rel);
  }

  // The pool's bookkeeping, under its lock.
  std::uint64_t requests() const noexcept { return requests_; }
  std::uint64_t successes() const noexcept { return successes_; }
  Clock::time_point last_used() const noexcept { return last_used_; }
  int in_flight() const noexcept { return in_flight_; }
  void leased() noexcept { ++in_flight_; }
  void returned(const Settled* settled, Clock::time_point now) noexcept {
    --in_flight_;
    if (!settled) return;
    ++requests_;
    last_used_ = now;
    if (settled->ok) ++successes_;
    if (settled->stop) poison(*settled->stop);
  }

 protected:
  PooledProcess(common::Child child, std::uint64_t generation, Clock::time_point now,
                State state)
      : child_(std::move(child)), generation_(generation), spawned_at_(now), last_used_(now),
        state_(state) {}

  common::Child child_;

 private:
  std::uint64_t generation_;
  Clock::time_point spawned_at_;
  Clock::time_point last_used_;
  State state_;
  std::atomic<int> poisoned_{-1};  // a StopReason, or -1
  std::uint64_t requests_ = 0;
  std::uint64_t successes_ = 0;
  int in_flight_ = 0;
};

// The request's body read whole before it is written, or nullopt when it streams from the client
// as it is written. The stdio protocol needs a length first, so a chunked body is held (bounded by
// max_body); a body of known length up to 64 KiB is held too, so that a request no process read
// can be sent again.
common::Result<std::optional<std::string>> hold_body(common::ClientRequest& request,
                                                     std::uint64_t max_body);

}  // namespace watchdog
