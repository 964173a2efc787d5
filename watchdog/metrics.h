// The watchdog's own request metrics (every format): requests by code and method, latency, in
// flight. Lock-free on the request path; rendered as Prometheus text for /_/metrics.
#pragma once

#include <atomic>
#include <string>
#include <string_view>

#include "common/prometheus.h"

namespace watchdog {

struct Metrics {
  // Declares the counted statuses at 0 for GET and POST (docs/OPERATIONS.md).
  Metrics();

  common::prometheus::RequestCounter requests;
  common::prometheus::Histogram latency;
  std::atomic<int> in_flight{0};

  void render(std::string& out, std::string_view function) const;
};

}  // namespace watchdog
