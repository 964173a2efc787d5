// Runs the queued calls (issue 18): one dispatcher thread claims the calls that are due, at most
// async.max_concurrency per function at a time, and runs each on a worker thread through the
// gateway's own edge (admission, round robin, failover: the synchronous path), then retries it
// (429, 502, 503, 504, with exponential backoff) or records its result, and delivers the result to
// its X-Callback-Url; a finished call is forgotten kKeepFinishedMs later. The store is the truth:
// a run interrupted by a stop is left running there, and run again at the next start. The run and
// the delivery are seams, so that the policy can be tested without a gateway.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <string>
#include <thread>

#include "common/http_client.h"
#include "common/unique_fd.h"
#include "common/worker_threads.h"
#include "gateway/call_queue.h"
#include "gateway/function_config.h"

namespace gateway {

// How long a finished call (its result) is kept once its callback is over, for GET /_fn/calls/ID.
inline constexpr std::int64_t kKeepFinishedMs = 24 * 3600 * 1000;

// The queue's clock: unix milliseconds, which keep their meaning across a restart.
std::int64_t unix_now_ms();

// The wait before the run after `attempts` runs: initial_retry_wait doubled with each run, at
// most max_retry_wait. Pure.
std::chrono::milliseconds retry_wait(const AsyncConfig& config, int attempts);

// Whether a call answered `status` is run again (OpenFaaS Pro's retry statuses). Pure.
bool is_retried_status(int status) noexcept;

// What a run that got `reply` (or, without one, the error why) means for `call`: done (the function
// answered a status that is not retried), retrying, or failed (retried statuses until the last
// attempt). Pure: `now_ms` is given.
CallResult result_of_run(const StoredCall& call, const common::Result<common::HttpReply>& reply,
                         const AsyncConfig& config, double duration_seconds, std::int64_t now_ms);

// The headers of a callback delivery, OpenFaaS's queue-worker's: X-Call-Id, X-Function-Name,
// X-Function-Status, X-Duration-Seconds, the result's Content-Type. Pure.
protocol::Headers callback_headers(const StoredCall& call);

class AsyncCalls {
 public:
  // Runs `call` through the edge; the reply, or the error why none came.
  using Run = std::function<common::Result<common::HttpReply>(const StoredCall& call)>;
  // POSTs `body` with `headers` to `url`; the reply, or the error why none came.
  using Deliver = std::function<common::Result<common::HttpReply>(
      const std::string& url, const protocol::Headers& headers, const std::string& body)>;
  // The async settings of a function now; nullopt for one that is gone (its calls still run, and
  // get the edge's 404).
  using SettingsOf = std::function<std::optional<AsyncConfig>(const std::string& function)>;
  using NowMs = std::function<std::int64_t()>;

  struct Hooks {
    Run run;
    Deliver deliver;
    SettingsOf settings_of;
    NowMs now_ms;
  };

  struct Counters {
    std::map<int, std::uint64_t> completed;  // runs by the function's status (0: no reply)
    std::uint64_t retries = 0;
    std::uint64_t callbacks_sent = 0;
    std::uint64_t callback_failures = 0;  // deliveries that failed (each attempt)
  };

  // `store` must outlive this object.
  AsyncCalls(CallQueue& store, Hooks hooks);
  ~AsyncCalls();  // stop()
  AsyncCalls(const AsyncCalls&) = delete;
  AsyncCalls& operator=(const AsyncCalls&) = delete;

  void start();
  // The dispatcher looks now (something became due). Thread-safe.
  void poke();
  // A call of `function` was queued: poke(), unless the function's runs are at its limit (each
  // takes the next due call when it ends, and a slot that finds none pokes). Thread-safe.
  void queued(const std::string& function);
  // Claims nothing more; runs that end from now on with no reply (the edge is stopping) are left
  // running in the store, to run again at the next start. Idempotent.
  void stop_claiming();
  // stop_claiming(), then waits for the runs and deliveries in flight: call it once the runs
  // were cut (InsideEdge::abort_runs).
  void stop();

  Counters counters() const;
  int running() const;

 private:
  void dispatch_loop();
  // Claims what is due; returns when the loop should look again.
  std::int64_t dispatch_due(std::int64_t now);
  void execute(StoredCall call, AsyncConfig config);
  void deliver(StoredCall call, AsyncConfig config);
  void finished(const std::string& function);
  // Holding mutex_: the runs `function` may still start under `config` (0 or less at its limit).
  int room_locked(const std::string& function, const AsyncConfig& config) const;

  CallQueue& store_;
  Hooks hooks_;
  mutable std::mutex mutex_;
  std::condition_variable wake_;
  bool poked_ = false;
  std::atomic<bool> stopping_{false};
  std::map<std::string, int> running_;  // runs in flight per function
  int delivering_ = 0;
  std::int64_t pruned_ms_ = 0;  // when finished calls were last pruned (dispatcher thread only)
  Counters counters_;
  common::WorkerThreads workers_;
  std::thread dispatcher_;
};

}  // namespace gateway
