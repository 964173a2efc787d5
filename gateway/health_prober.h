// Probes GET /_/health on every socket of every function, every health-interval (every 50 ms while
// one is starting, so a restarted watchdog takes traffic as soon as it answers), and marks each up
// or down with the reason. It uses Poco's HTTP client session: one short request per socket.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "gateway/upstream.h"

namespace gateway {

// The result of one probe: up, or down with why.
struct ProbeResult {
  bool up = false;
  std::string reason;
};

// Asks `address` for /_/health within `timeout`.
ProbeResult probe_health(const common::Address& address, std::chrono::milliseconds timeout);

class HealthProber {
 public:
  using Sockets = std::function<std::vector<std::shared_ptr<Upstream>>()>;

  // `sockets` lists what to probe now (called on the prober's thread). Starts the thread.
  HealthProber(Sockets sockets, std::chrono::milliseconds interval);
  ~HealthProber();
  HealthProber(const HealthProber&) = delete;
  HealthProber& operator=(const HealthProber&) = delete;

  void set_interval(std::chrono::milliseconds interval);
  // Probes again now (after a reload or a restart).
  void poke();

 private:
  void run();

  Sockets sockets_;
  std::mutex mutex_;
  std::condition_variable wakeup_;
  std::chrono::milliseconds interval_;
  bool poked_ = false;
  bool quit_ = false;
  std::thread thread_;
};

}  // namespace gateway
