// Formats http and server: a pool of long-lived processes scaled the way Passenger scales
// (DESIGN.md, ../shared/reference/passenger-dynamic-scaling.txt). A request takes the least busy
// process below its max concurrency (1 for a hot handler), the most recently used among equals;
// with every process at its limit and the pool below max-instances a process is spawned, and the
// request goes to whichever slot frees first (or the new process, once it serves); at
// max-instances it waits in a FIFO queue bounded by max-queue and by exec-timeout. Idle processes
// beyond min-instances stop after idle-timeout. A process that dies right after spawning is retried with exponential backoff,
// and while that keeps happening the pool is unhealthy: requests get 503 at once unless a live process
// is idle, which takes the request as a probe (its success ends the crash loop).
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "common/child.h"
#include "common/pipe_order.h"
#include "watchdog/options.h"
#include "watchdog/pooled_process.h"
#include "watchdog/pool_clock.h"
#include "watchdog/runner.h"
#include "watchdog/stderr_pump.h"

namespace watchdog {

// Starts one process (HotProcess::spawn, a ServerProcess, or a test's fake). Called under the
// pool's lock: it must not wait for the process (a process that takes time to serve says so with
// State::kStarting and check_started()).
using HotSpawner = std::function<common::Result<std::unique_ptr<PooledProcess>>(
    const PooledProcess::SpawnContext&)>;

// How a pool reads time and starts processes, and who drives its maintenance (leveldb's Env):
// production takes the defaults; a test passes a fake clock and spawner and calls maintain().
struct HotPoolSeams {
  PoolClock clock = steady_pool_clock();
  HotSpawner spawn;  // empty: the format's own (HotProcess, or ServerProcess for format server)
  bool maintenance_thread = true;  // false: nothing happens between calls but what maintain() does
};

class HotPool : public Runner {
 public:
  using Clock = std::chrono::steady_clock;

  // `options` must outlive the pool. Warms min-instances and, unless `seams` says otherwise,
  // starts the maintenance thread.
  HotPool(const Options& options, std::vector<std::string> env, HotPoolSeams seams = {});
  ~HotPool() override;  // REQUIRES: no serve() running. Stops every process.

  // One maintenance step at the clock's now: reaps stopped processes, retires dead and idle ones,
  // records start failures (backoff), spawns for min-instances, a crash-loop probe and waiters, and
  // hands free processes to waiters. The maintenance thread runs it every tick. Thread-safe.
  void maintain();

  common::Status serve(Invocation& invocation) override;
  Health health() const override;
  Health ready() const override;
  void render_metrics(std::string& out) const override;
  void recycle() override;
  void stop_all() override;

 private:
  // A process taken for a request. `idle`: it had no request in flight, so the lessee checks it
  // (check_idle) before it serves, outside the lock.
  struct Taken {
    PooledProcess* process = nullptr;
    bool idle = false;
  };
  struct Waiter {
    std::condition_variable ready;
    Taken taken;
    std::optional<common::Error> error;
  };
  struct Stopping {
    std::unique_ptr<PooledProcess> process;
    Clock::time_point kill_at;
    bool killed = false;
  };
  // Waiters handed a process or an error, to be woken: after the mutex is released where the
  // caller can (a thread woken under it would block on it at once), which the shared
  // ownership makes safe against a waiter that woke by itself and left.
  using Woken = std::vector<std::shared_ptr<Waiter>>;
  class Lease;
  friend class HotPoolProbe;  // tests/unit/watchdog/hot_pool_test.cpp: acquire() and release()

  // A leased process that passed its idle check.
  common::Result<PooledProcess*> acquire(Clock::time_point deadline);
  common::Result<Taken> take(Clock::time_point deadline);
  common::Result<Taken> wait_in_queue(std::unique_lock<std::mutex>& lock,
                                      Clock::time_point deadline);
  // Returns a leased process; `settled` says how its request ended (nullptr: it served none).
  void release(PooledProcess* process, const PooledProcess::Settled* settled);

  // All *_locked functions REQUIRE mutex_ held.
  bool can_spawn_locked(Clock::time_point now) const;
  common::Status spawn_locked(Clock::time_point now);
  common::Result<std::unique_ptr<PooledProcess>> start_process_locked() noexcept;
  bool needs_spawn_locked(std::size_t extra) const;
  std::optional<Taken> take_available_locked();
  void dispatch_locked(Woken& woken);
  static void wake(Woken& woken);
  void retire_locked(PooledProcess* process, StopReason reason);
  // Takes it out of available_, and retires it once no request holds it.
  void retire_when_free_locked(PooledProcess* process, StopReason reason);
  void record_failure_locked(const std::string& reason, Clock::time_point now);
  bool unhealthy_locked() const { return consecutive_failures_ >= kUnhealthyAfter; }
  void maintain_locked(Clock::time_point now);
  void reap_stopping_locked(Clock::time_point now);
  void check_starting_locked(Clock::time_point now);
  void check_idle_locked(Clock::time_point now);
  void stop_idle_locked(Clock::time_point now);
  void maintenance_loop();

  static constexpr int kUnhealthyAfter = 2;
  static constexpr std::chrono::milliseconds kStartupWindow{1000};
  static constexpr std::chrono::milliseconds kTick{100};
  static constexpr std::chrono::milliseconds kStartingTick{5};  // while a process starts

  const Options& options_;
  HotPoolSeams seams_;
  common::SpawnOptions spawn_options_;
  StderrPump pump_;
  common::PipeWatcher pipes_;  // outlives every process (declared before processes_)

  mutable std::mutex mutex_;
  std::condition_variable maintenance_wakeup_;
  std::vector<std::unique_ptr<PooledProcess>> processes_;  // alive: starting, idle or busy
  // Serving, below their max concurrency, and not to be retired: most recently used at the back.
  std::vector<PooledProcess*> available_;
  std::deque<std::shared_ptr<Waiter>> waiters_;  // FIFO
  std::vector<Stopping> stopping_;
  std::uint64_t generation_ = 0;
  bool shutting_down_ = false;
  int consecutive_failures_ = 0;
  Clock::time_point next_spawn_at_{};
  std::string failure_reason_;

  std::atomic<std::uint64_t> spawns_{0};
  std::array<std::atomic<std::uint64_t>, kStopReasons> kills_{};
  std::thread maintenance_;
};

}  // namespace watchdog
