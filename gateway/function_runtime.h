// What the gateway holds for one function while it serves: its spec, its sockets, its admission
// and its metrics. Shared (shared_ptr) between the route snapshot that requests read and the reload
// that replaces it, so a reload never pulls a function out from under a request.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/prometheus.h"
#include "gateway/admission.h"
#include "gateway/discovery.h"
#include "gateway/on_demand.h"
#include "gateway/upstream.h"

namespace gateway {

struct FunctionRuntime {
  FunctionRuntime(FunctionSpec spec, std::vector<std::shared_ptr<Upstream>> upstreams);

  const FunctionSpec spec;
  const std::vector<std::shared_ptr<Upstream>> upstreams;
  std::unique_ptr<OnDemand> on_demand;  // null: its watchdogs run all the time
  Admission admission;
  std::atomic<std::size_t> cursor{0};  // round robin position
  common::prometheus::RequestCounter requests;  // by code and method
  common::prometheus::Histogram latency;

  // Bit i set when socket i may take a request (up, or starting).
  std::uint64_t routable_mask() const;
  int sockets_up() const;
  // Its watchdogs are parked (started on demand, idle now): not up, and not down either.
  bool cold() const { return on_demand && !on_demand->warm(); }
  // Why its watchdogs cannot run it (a missing command, workdir, exec bit), or nullopt.
  std::optional<std::string> problem() const;
  // Whether a request would be served: it can run, and a socket is up or it starts on demand.
  bool available() const { return !problem() && (cold() || sockets_up() > 0); }
  // The 503 for a request that found no socket up: the problem when there is one.
  std::string unavailable_reason() const;
  // "single" with one socket, "round_robin" with more (FastFN's words).
  const char* routing() const { return upstreams.size() > 1 ? "round_robin" : "single"; }
  std::uint64_t max_body() const;
  // The function's timeout (timeout_ms, else the watchdog's default 30 s; 0 is none: kNoTimeout).
  std::chrono::milliseconds timeout() const;
};

}  // namespace gateway
