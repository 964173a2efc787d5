// The gateway's own endpoints under /_fn/: health (DESIGN.md's JSON shape: per runtime the routing
// and every socket with up, restarts and last_error; per function a summary), the function list
// with each one's configuration, and Prometheus metrics. Rendering only: the numbers live in the
// function runtimes.
#pragma once

#include <string>

#include "common/prometheus.h"
#include "gateway/registry.h"

namespace gateway {

// /_fn/health; `ok` is set to whether every socket is up ("ok" rather than "degraded").
std::string health_json(const Snapshot& snapshot, bool* ok = nullptr);
// /_fn/functions.
std::string functions_json(const Snapshot& snapshot);
// The gateway's own series of /_fn/metrics: every function's, then `unrouted` (the requests no
// function serves, rendered without a function label), then the process collector's.
std::string metrics_text(const Snapshot& snapshot,
                         const common::prometheus::RequestCounter& unrouted);

}  // namespace gateway
