// The one interface every execution format implements (of-watchdog's FunctionRunner): serve one
// request, say whether it can serve, report its own metrics, and stop. One file per format:
// cgi_runner (a process per request) and hot_pool (hot handlers over stdio).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>

#include "common/error.h"
#include "common/http_exchange.h"

namespace watchdog {

// One request as a runner sees it. All references outlive the call to serve().
struct Invocation {
  common::ClientRequest& request;
  common::ClientResponse& response;
  const std::string& request_id;
  std::chrono::steady_clock::time_point deadline;  // exec-timeout from arrival
  std::int64_t deadline_unix_ms;
};

// Whether a runner can serve now, with the reason when it cannot.
struct Health {
  bool ok = true;
  std::string reason;
};

class Runner {
 public:
  virtual ~Runner() = default;

  // Serves `invocation`. On success the response is finished. On error, when the response has not
  // started, the caller sends the error; when it has, the runner aborted it. Thread-safe: called
  // concurrently from every connection thread.
  virtual common::Status serve(Invocation& invocation) = 0;

  // Health: can the function be served at all (not crash-looping, not broken)?
  virtual Health health() const = 0;
  // Readiness beyond health: warm and able to admit one more request now.
  virtual Health ready() const = 0;

  // Appends the runner's own Prometheus samples (processes, spawns, kills, queue).
  virtual void render_metrics(std::string& out) const = 0;

  // SIGHUP: recycle long-lived processes gracefully. Nothing to do for per-request processes.
  virtual void recycle() {}

  // After the drain: stops every process still running (SIGTERM, grace, SIGKILL), so the requests
  // holding them end. Safe to call while serve() runs in other threads.
  virtual void stop_all() = 0;
};

}  // namespace watchdog
