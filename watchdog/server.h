// The watchdog's HTTP edge: the reserved /_/ endpoints (health, ready, metrics), then admission
// (max-inflight, max-body), then the runner. It maps runner errors to their HTTP status in one
// place, answers with DESIGN.md's JSON error body, writes the access log and counts metrics.
#pragma once

#include <atomic>
#include <chrono>
#include <string>

#include "common/error.h"
#include "common/http_exchange.h"
#include "watchdog/metrics.h"
#include "watchdog/options.h"
#include "watchdog/runner.h"

namespace watchdog {

class Server {
 public:
  // `options` and `runner` must outlive the server.
  Server(const Options& options, Runner& runner);

  // The request callback, on a connection thread. Never throws.
  void handle(common::ClientRequest& request, common::ClientResponse& response) noexcept;

  // SIGTERM: /_/health answers 503 (the connections close after their response: HttpServer).
  void begin_drain() noexcept { draining_ = true; }
  int in_flight() const noexcept { return metrics_.in_flight.load(); }

 private:
  void serve_reserved(common::ClientRequest& request, common::ClientResponse& response,
                      const std::string& request_id);
  common::Status serve_function(common::ClientRequest& request, common::ClientResponse& response,
                                const std::string& request_id);
  common::Status admit(const common::ClientRequest& request, common::ClientResponse& response);
  void send_error(common::ClientResponse& response, const common::Error& error,
                  const std::string& request_id);
  void log_access(const common::ClientRequest& request, const common::ClientResponse& response,
                  const std::string& request_id, std::chrono::steady_clock::time_point start);

  const Options& options_;
  Runner& runner_;
  Metrics metrics_;
  std::atomic<bool> draining_{false};
};

}  // namespace watchdog
