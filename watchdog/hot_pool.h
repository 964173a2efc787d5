// Format http: a pool of hot processes scaled the way Passenger scales (DESIGN.md). A request takes
// the most recently used idle process; with none idle and the pool below max-instances a process is
// spawned, and the request goes to whichever process frees first; at max-instances it waits in a
// FIFO queue bounded by max-queue and by exec-timeout. Idle processes beyond min-instances stop
// after idle-timeout. A process that dies right after spawning is retried with exponential backoff,
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
#include "watchdog/hot_process.h"
#include "watchdog/options.h"
#include "watchdog/pool_clock.h"
#include "watchdog/runner.h"
#include "watchdog/stderr_pump.h"

namespace watchdog {

// Starts one hot process (HotProcess::spawn, or a test's fake). Called under the pool's lock.
using HotSpawner = std::function<common::Result<std::unique_ptr<HotProcess>>(
    const HotProcess::SpawnContext&)>;

// How a pool reads time and starts processes, and who drives its maintenance (leveldb's Env):
// production takes the defaults; a test passes a fake clock and spawner and calls maintain().
struct HotPoolSeams {
  PoolClock clock = steady_pool_clock();
  HotSpawner spawn = &HotProcess::spawn;
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
  struct Waiter {
    std::condition_variable ready;
    HotProcess* process = nullptr;
    std::optional<common::Error> error;
  };
  struct Stopping {
    std::unique_ptr<HotProcess> process;
    Clock::time_point kill_at;
    bool killed = false;
  };
  class Lease;
  friend class HotPoolProbe;  // tests/unit/watchdog/hot_pool_test.cpp: acquire() and release()

  common::Result<HotProcess*> acquire(Clock::time_point deadline);
  common::Result<HotProcess*> wait_in_queue(std::unique_lock<std::mutex>& lock,
                                            Clock::time_point deadline);
  void release(HotProcess* process);

  // All *_locked functions REQUIRE mutex_ held.
  bool can_spawn_locked(Clock::time_point now) const;
  common::Status spawn_locked(Clock::time_point now);
  common::Result<std::unique_ptr<HotProcess>> start_process_locked() noexcept;
  HotProcess* take_idle_locked();
  void dispatch_locked();
  void retire_locked(HotProcess* process, StopReason reason);
  void record_failure_locked(const std::string& reason, Clock::time_point now);
  bool unhealthy_locked() const { return consecutive_failures_ >= kUnhealthyAfter; }
  void maintain_locked(Clock::time_point now);
  void reap_stopping_locked(Clock::time_point now);
  void check_idle_locked(Clock::time_point now);
  void stop_idle_locked(Clock::time_point now);
  void maintenance_loop();

  static constexpr int kUnhealthyAfter = 2;
  static constexpr std::chrono::milliseconds kStartupWindow{1000};
  static constexpr std::chrono::milliseconds kTick{100};

  const Options& options_;
  HotPoolSeams seams_;
  common::SpawnOptions spawn_options_;
  StderrPump pump_;
  common::PipeWatcher pipes_;  // outlives every process (declared before processes_)

  mutable std::mutex mutex_;
  std::condition_variable maintenance_wakeup_;
  std::vector<std::unique_ptr<HotProcess>> processes_;  // alive: starting, idle or busy
  std::vector<HotProcess*> idle_;                       // most recently used at the back
  std::deque<Waiter*> waiters_;                         // FIFO
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
