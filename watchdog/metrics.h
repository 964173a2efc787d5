// The watchdog's own request metrics (every format): requests by status, latency, in flight.
// Lock-free on the request path; rendered as Prometheus text for /_/metrics.
#pragma once

#include <atomic>
#include <string>
#include <string_view>

#include "common/prometheus.h"

namespace watchdog {

struct Metrics {
  common::prometheus::StatusCounter requests;
  common::prometheus::Histogram latency;
  std::atomic<int> in_flight{0};

  void render(std::string& out, std::string_view function) const;
};

}  // namespace watchdog
