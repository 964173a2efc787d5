#include "watchdog/metrics.h"

namespace watchdog {

Metrics::Metrics() { requests.declare_defaults({"GET", "POST"}); }

void Metrics::render(std::string& out, std::string_view function) const {
  namespace prom = common::prometheus;
  prom::Labels labels{{"function", function}};
  prom::append_header(out, "fastfn_watchdog_requests_total",
                      "Function requests by status code and method.", "counter");
  requests.render(out, "fastfn_watchdog_requests_total", labels);
  prom::append_header(out, "fastfn_watchdog_request_duration_seconds",
                      "Function request latency.", "histogram");
  latency.render(out, "fastfn_watchdog_request_duration_seconds", labels);
  prom::append_header(out, "fastfn_watchdog_requests_in_flight", "Function requests in flight.",
                      "gauge");
  prom::append_sample(out, "fastfn_watchdog_requests_in_flight", labels,
                      in_flight.load(std::memory_order_relaxed));
}

}  // namespace watchdog
