#include "watchdog/hot_pool.h"

#include <signal.h>

#include <algorithm>
#include <utility>

#include "common/logging.h"
#include "common/prometheus.h"
#include "watchdog/hot_process.h"
#include "watchdog/server_process.h"

namespace watchdog {
namespace {

using common::Error;
using std::chrono::milliseconds;

constexpr milliseconds kMaxBackoff{5000};
constexpr milliseconds kStopGrace{1000};

std::shared_ptr<spdlog::logger> pool_log() {
  static const auto log = common::logger("watchdog.pool");
  return log;
}

bool early_death(const PooledProcess& process) {
  auto reason = process.poisoned();
  return reason && (*reason == StopReason::kExited || *reason == StopReason::kProtocol) &&
         process.successes() == 0;
}

}  // namespace

// A process leased to one request; returned to the pool (or retired) by release(), or at the
// latest when the lease ends.
class HotPool::Lease {
 public:
  Lease(HotPool& pool, PooledProcess* process) : pool_(pool), process_(process) {}
  ~Lease() { release(nullptr); }
  Lease(const Lease&) = delete;
  Lease& operator=(const Lease&) = delete;
  PooledProcess& operator*() const { return *process_; }
  void release(const PooledProcess::Settled* settled) {
    if (std::exchange(process_, nullptr)) pool_.release(leased_, settled);
  }

 private:
  HotPool& pool_;
  PooledProcess* process_;
  PooledProcess* const leased_ = process_;
};

HotSpawner format_spawner(const Options& options) {
  if (options.format != Format::kServer) return &HotProcess::spawn;
  return [settings = ServerProcess::Settings::from(options)](
             const PooledProcess::SpawnContext& context) {
    return ServerProcess::spawn(context, settings);
  };
}

HotPool::HotPool(const Options& options, std::vector<std::string> env, HotPoolSeams seams)
    : options_(options), seams_(std::move(seams)), pump_(options.name) {
  if (!seams_.spawn) seams_.spawn = format_spawner(options);
  if (!pipes_.available())
    pool_log()->warn("inotify is not available: a handler that reads bytes of a request after "
                     "answering it is caught only when they are still in its pipe");
  spawn_options_.argv = options.command;
  spawn_options_.env = std::move(env);
  spawn_options_.workdir = options.workdir;
  // What a handler orphans stays below it and ends with it (the watchdog is a subreaper); never a
  // parent-death signal: handlers are spawned from threads that may end before them.
  spawn_options_.contain_descendants = true;
  maintain();
  if (seams_.maintenance_thread) maintenance_ = std::thread([this] { maintenance_loop(); });
}

HotPool::~HotPool() {
  stop_all();
  maintenance_wakeup_.notify_all();
  if (maintenance_.joinable()) maintenance_.join();
  // What is left is reaped by ~Child (SIGTERM, grace, SIGKILL).
}

void HotPool::maintain() {
  std::lock_guard lock(mutex_);
  maintain_locked(seams_.clock());
}

common::Status HotPool::serve(Invocation& invocation) {
  auto held = hold_body(invocation.request, options_.max_body);
  if (!held) return tl::unexpected(held.error());
  for (bool resent = false;; resent = true) {
    auto process = acquire(invocation.deadline);
    if (!process) return tl::unexpected(process.error());
    Lease lease(*this, *process);
    // A client that left while its request waited (in the queue, or for a spawn) is not served:
    // a process working for nobody is what an abandoned burst must not cost.
    if (invocation.request.body_complete() && invocation.request.peer_gone())
      return common::fail(Error::Code::kClientGone, "the client went away before it was served");
    auto served = (*lease).serve(invocation, *held, options_.max_body,
                                 [&lease](const PooledProcess::Settled& settled) {
                                   lease.release(&settled);
                                 });
    // A process that read none of the request cannot have acted on it: another one may serve it.
    // Once only, so that a handler that never reads anything costs one extra process, not a loop.
    if (served.status || !served.request_unread || resent) return served.status;
    pool_log()->warn("resending a request no process read request_id={} reason=\"{}\"",
                     invocation.request_id, served.status.error().context);
  }
}

common::Result<PooledProcess*> HotPool::acquire(Clock::time_point deadline) {
  // The check of a process about to get a request (syscalls, and a wait for a handler still in
  // the last write of its previous answer) runs outside the lock, which every request needs.
  for (;;) {
    auto taken = take(deadline);
    if (!taken) return tl::unexpected(taken.error());
    if (!taken->idle || taken->process->check_idle(true)) return taken->process;
    release(taken->process, nullptr);  // retired: it exited, or wrote or read while idle
  }
}

common::Result<HotPool::Taken> HotPool::take(Clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  auto now = seams_.clock();
  if (shutting_down_) return common::fail(Error::Code::kUnavailable, "the watchdog is shutting down");
  if (unhealthy_locked()) {
    // Crash looping: spawns wait for the backoff, so waiting would only end in a timeout. But a live
    // idle process (the probe the backoff allowed, or one min-instances keeps) takes the request, and
    // its answer ends the loop; refusing it too would leave recovery to a process idling through the
    // startup window, which faults that keep killing young processes never allow.
    if (auto taken = take_available_locked()) return *taken;
    return common::fail(Error::Code::kUnavailable, failure_reason_);
  }
  if (waiters_.empty()) {
    if (auto taken = take_available_locked()) return *taken;
    if (can_spawn_locked(now) && needs_spawn_locked(1)) {
      auto spawned = spawn_locked(now);
      if (!spawned && processes_.empty()) return tl::unexpected(spawned.error());
      if (auto taken = take_available_locked()) return *taken;
    }
  }
  return wait_in_queue(lock, deadline);
}

common::Result<HotPool::Taken> HotPool::wait_in_queue(std::unique_lock<std::mutex>& lock,
                                                      Clock::time_point deadline) {
  if (waiters_.size() >= static_cast<std::size_t>(options_.max_queue))
    return common::fail(Error::Code::kTooBusy, "max-queue reached: every process is busy");
  auto me = std::make_shared<Waiter>();
  waiters_.push_back(me);
  maintenance_wakeup_.notify_one();  // it spawns for waiters once a backoff ends
  while (!me->taken.process && !me->error) {
    if (me->ready.wait_until(lock, deadline) == std::cv_status::timeout) break;
  }
  if (me->taken.process) return me->taken;
  // A waiter given an error was already taken off the queue by whoever set it.
  if (auto it = std::find(waiters_.begin(), waiters_.end(), me); it != waiters_.end())
    waiters_.erase(it);
  if (me->error) return tl::unexpected(*me->error);
  return common::fail(Error::Code::kTimeout,
                      "no process became free before the exec-timeout (queue wait)");
}

void HotPool::release(PooledProcess* process, const PooledProcess::Settled* settled) {
  Woken woken;
  {
    std::lock_guard lock(mutex_);
    auto now = seams_.clock();
    process->returned(settled, now);
    if (process->successes() > 0) consecutive_failures_ = 0;
    if (auto reason = process->poisoned()) {
      if (early_death(*process) && process->in_flight() == 0)
        record_failure_locked(settled ? "the handler broke at its first request"
                                      : "the handler exited at start",
                              now);
      retire_when_free_locked(process, *reason);
    } else if (options_.max_requests > 0 && process->requests() >= options_.max_requests) {
      retire_when_free_locked(process, StopReason::kMaxRequests);
    } else if (process->generation() != generation_ || shutting_down_) {
      retire_when_free_locked(process,
                              shutting_down_ ? StopReason::kShutdown : StopReason::kRecycle);
    } else {
      if (process->in_flight() == 0) process->set_state(PooledProcess::State::kIdle);
      std::erase(available_, process);
      available_.push_back(process);
    }
    dispatch_locked(woken);
    if (can_spawn_locked(now) && needs_spawn_locked(0) && spawn_locked(now)) dispatch_locked(woken);
  }
  wake(woken);
}

void HotPool::retire_when_free_locked(PooledProcess* process, StopReason reason) {
  std::erase(available_, process);
  if (process->in_flight() == 0) retire_locked(process, reason);
}

// Whether a request beyond the `extra` about to come needs a process spawned: nothing serving is
// free, and more wait than the processes already starting will take.
bool HotPool::needs_spawn_locked(std::size_t extra) const {
  if (!available_.empty()) return false;
  std::size_t starting_slots = 0;
  for (const auto& process : processes_)
    if (process->state() == PooledProcess::State::kStarting)
      starting_slots += static_cast<std::size_t>(process->max_concurrency());
  return waiters_.size() + extra > starting_slots;
}

bool HotPool::can_spawn_locked(Clock::time_point now) const {
  return !shutting_down_ && now >= next_spawn_at_ &&
         processes_.size() < static_cast<std::size_t>(options_.max_instances);
}

common::Status HotPool::spawn_locked(Clock::time_point now) {
  auto spawned = start_process_locked();
  if (!spawned) {
    record_failure_locked(spawned.error().context, now);
    return tl::unexpected(spawned.error());
  }
  spawns_.fetch_add(1, std::memory_order_relaxed);
  pool_log()->debug("spawned pid={} processes={}", (*spawned)->pid(), processes_.size() + 1);
  if ((*spawned)->state() != PooledProcess::State::kStarting) available_.push_back(spawned->get());
  processes_.push_back(std::move(*spawned));
  return {};
}

common::Result<std::unique_ptr<PooledProcess>> HotPool::start_process_locked() noexcept {
  // A spawn runs in a lease's release and in the maintenance loop, where an exception would end
  // the thread or the process: whatever the spawner throws is a failed spawn like any other.
  try {
    return seams_.spawn({spawn_options_, pump_, pipes_, generation_, seams_.clock});
  } catch (const std::exception& error) {
    return common::fail(Error::Code::kUnavailable,
                        std::string("cannot start the handler: ") + error.what());
  }
}

std::optional<HotPool::Taken> HotPool::take_available_locked() {
  if (available_.empty()) return std::nullopt;
  // The least busy, the most recently used (nearest the back) among equals.
  auto best = available_.rbegin();
  for (auto it = available_.rbegin(); it != available_.rend(); ++it)
    if ((*it)->in_flight() < (*best)->in_flight()) best = it;
  PooledProcess* process = *best;
  bool idle = process->in_flight() == 0;
  process->leased();
  process->set_state(PooledProcess::State::kBusy);
  if (process->in_flight() >= process->max_concurrency()) available_.erase(std::next(best).base());
  return Taken{process, idle};
}

void HotPool::dispatch_locked(Woken& woken) {
  while (!waiters_.empty()) {
    auto taken = take_available_locked();
    if (!taken) return;
    waiters_.front()->taken = *taken;
    woken.push_back(std::move(waiters_.front()));
    waiters_.pop_front();
  }
}

void HotPool::wake(Woken& woken) {
  for (const auto& waiter : woken) waiter->ready.notify_one();
  woken.clear();
}

void HotPool::retire_locked(PooledProcess* process, StopReason reason) {
  std::erase(available_, process);
  auto it = std::find_if(processes_.begin(), processes_.end(),
                         [process](const auto& owned) { return owned.get() == process; });
  if (it == processes_.end()) return;
  process->set_state(PooledProcess::State::kStopping);
  process->child().signal_group(SIGTERM);
  kills_[static_cast<std::size_t>(reason)].fetch_add(1, std::memory_order_relaxed);
  pool_log()->info("stopping process pid={} reason={} requests={}", process->pid(),
                   stop_reason_name(reason), process->requests());
  stopping_.push_back({std::move(*it), seams_.clock() + kStopGrace, false});
  processes_.erase(it);
  maintenance_wakeup_.notify_one();
}

void HotPool::record_failure_locked(const std::string& reason, Clock::time_point now) {
  ++consecutive_failures_;
  auto backoff = std::min(kMaxBackoff, milliseconds(100) * (1 << std::min(consecutive_failures_ - 1, 10)));
  next_spawn_at_ = now + backoff;
  failure_reason_ = "handler keeps failing at start (" + std::to_string(consecutive_failures_) +
                    " times): " + reason + "; next try in " + std::to_string(backoff.count()) + "ms";
  pool_log()->warn("handler failed at start failures={} backoff_ms={} reason=\"{}\"",
                   consecutive_failures_, backoff.count(), reason);
  if (!unhealthy_locked()) return;
  // Waiting would only end in a timeout: answer them now.
  for (const auto& waiter : waiters_) {
    waiter->error = Error{Error::Code::kUnavailable, failure_reason_};
    waiter->ready.notify_one();
  }
  waiters_.clear();
}

void HotPool::maintenance_loop() {
  std::unique_lock lock(mutex_);
  while (!(shutting_down_ && stopping_.empty() && processes_.empty())) {
    bool starting = std::any_of(processes_.begin(), processes_.end(), [](const auto& process) {
      return process->state() == PooledProcess::State::kStarting;
    });
    maintenance_wakeup_.wait_for(lock, starting ? kStartingTick : kTick);
    try {
      maintain_locked(seams_.clock());
    } catch (const std::exception& error) {  // nothing may end this thread: the next tick retries
      pool_log()->error("pool maintenance failed error=\"{}\"", error.what());
    }
  }
}

void HotPool::maintain_locked(Clock::time_point now) {
  reap_stopping_locked(now);
  check_starting_locked(now);
  check_idle_locked(now);
  stop_idle_locked(now);
  if (shutting_down_) return;
  auto alive = [this] { return processes_.size(); };
  auto min = static_cast<std::size_t>(options_.min_instances);
  while (alive() < min && can_spawn_locked(now) && spawn_locked(now)) {
  }
  // A crash-looping pool with min-instances 0 still needs a probe to find out it recovered.
  bool probe = unhealthy_locked() && alive() == 0;
  if ((probe || needs_spawn_locked(0)) && can_spawn_locked(now)) spawn_locked(now);
  Woken woken;
  dispatch_locked(woken);
  wake(woken);  // maintenance holds the mutex for its whole loop
}

void HotPool::reap_stopping_locked(Clock::time_point now) {
  std::erase_if(stopping_, [now](Stopping& stopping) {
    if (stopping.process->child().try_reap()) return true;
    if (now >= stopping.kill_at && !stopping.killed) {
      stopping.process->child().signal_group(SIGKILL);
      stopping.killed = true;
    }
    return false;
  });
}

void HotPool::check_starting_locked(Clock::time_point now) {
  std::vector<PooledProcess*> starting;
  for (const auto& process : processes_)
    if (process->state() == PooledProcess::State::kStarting) starting.push_back(process.get());
  for (PooledProcess* process : starting) {
    auto started = process->check_started(now);
    if (started && !*started) continue;
    if (started) {
      process->started(now);
      available_.push_back(process);
      continue;
    }
    record_failure_locked(started.error().context, now);
    process->poison(StopReason::kStartFailed);
    retire_locked(process, StopReason::kStartFailed);
  }
}

void HotPool::check_idle_locked(Clock::time_point now) {
  for (PooledProcess* process : std::vector<PooledProcess*>(available_)) {
    if (process->in_flight() > 0) continue;  // its requests find out what became of it
    if (process->check_idle(false)) {
      // Alive past the startup window: whatever failed before has recovered.
      if (now - process->spawned_at() >= kStartupWindow && consecutive_failures_ > 0) {
        pool_log()->info("handler recovered pid={}", process->pid());
        consecutive_failures_ = 0;
        next_spawn_at_ = {};
      }
      continue;
    }
    if (early_death(*process)) record_failure_locked("the handler exited at start", now);
    retire_locked(process, *process->poisoned());
  }
}

void HotPool::stop_idle_locked(Clock::time_point now) {
  // A free process is about to be taken by a waiting request, whatever its idle time.
  if (!waiters_.empty()) return;
  // available_ is ordered by last use: the front is the one idle the longest.
  for (PooledProcess* process : std::vector<PooledProcess*>(available_)) {
    if (processes_.size() <= static_cast<std::size_t>(options_.min_instances)) return;
    if (process->in_flight() > 0) continue;
    if (now - process->last_used() < options_.idle_timeout) return;
    retire_locked(process, StopReason::kIdle);
  }
}

Health HotPool::health() const {
  std::lock_guard lock(mutex_);
  if (unhealthy_locked()) return {false, failure_reason_};
  return {};
}

Health HotPool::ready() const {
  std::lock_guard lock(mutex_);
  if (unhealthy_locked()) return {false, failure_reason_};
  auto serving = static_cast<std::size_t>(std::count_if(
      processes_.begin(), processes_.end(),
      [](const auto& process) { return process->state() != PooledProcess::State::kStarting; }));
  if (serving < static_cast<std::size_t>(options_.min_instances))
    return {false, "warming up: " + std::to_string(serving) + " of " +
                       std::to_string(options_.min_instances) + " processes"};
  if (available_.empty() && processes_.size() >= static_cast<std::size_t>(options_.max_instances) &&
      waiters_.size() >= static_cast<std::size_t>(options_.max_queue))
    return {false, "max-queue reached"};
  return {};
}

void HotPool::recycle() {
  std::lock_guard lock(mutex_);
  ++generation_;
  // Busy processes finish their requests first and retire on release.
  for (PooledProcess* process : std::vector<PooledProcess*>(available_))
    retire_when_free_locked(process, StopReason::kRecycle);
  maintain_locked(seams_.clock());
}

void HotPool::stop_all() {
  std::lock_guard lock(mutex_);
  shutting_down_ = true;
  for (const auto& waiter : waiters_) {
    waiter->error = Error{Error::Code::kUnavailable, "the watchdog is shutting down"};
    waiter->ready.notify_one();
  }
  waiters_.clear();
  for (PooledProcess* process : std::vector<PooledProcess*>(available_))
    retire_when_free_locked(process, StopReason::kShutdown);
  // Busy ones: their request sees the pipes close and ends; release() retires them.
  for (auto& process : processes_) process->child().signal_group(SIGTERM);
  maintenance_wakeup_.notify_all();
}

void HotPool::render_metrics(std::string& out) const {
  namespace prom = common::prometheus;
  std::size_t starting = 0, idle = 0, busy = 0, stopping = 0, waiting = 0;
  {
    std::lock_guard lock(mutex_);
    for (const auto& process : processes_) {
      if (process->state() == PooledProcess::State::kStarting) ++starting;
      else if (process->in_flight() > 0) ++busy;
      else ++idle;
    }
    stopping = stopping_.size();
    waiting = waiters_.size();
  }
  const std::string& fn = options_.name;
  prom::append_header(out, "fastfn_watchdog_processes", "Hot processes by state.", "gauge");
  for (auto [state, count] : {std::pair{"starting", starting}, {"idle", idle}, {"busy", busy},
                              {"stopping", stopping}})
    prom::append_sample(out, "fastfn_watchdog_processes", {{"function", fn}, {"state", state}},
                        static_cast<double>(count));
  prom::append_header(out, "fastfn_watchdog_requests_queued", "Requests waiting for a process.",
                      "gauge");
  prom::append_sample(out, "fastfn_watchdog_requests_queued", {{"function", fn}},
                      static_cast<double>(waiting));
  prom::append_header(out, "fastfn_watchdog_spawns_total", "Processes started.", "counter");
  prom::append_sample(out, "fastfn_watchdog_spawns_total", {{"function", fn}},
                      static_cast<double>(spawns_.load()));
  prom::append_header(out, "fastfn_watchdog_kills_total", "Processes stopped, by reason.",
                      "counter");
  for (std::size_t i = 0; i < kills_.size(); ++i)
    prom::append_sample(out, "fastfn_watchdog_kills_total",
                        {{"function", fn}, {"reason", stop_reason_name(static_cast<StopReason>(i))}},
                        static_cast<double>(kills_[i].load()));
}

}  // namespace watchdog
