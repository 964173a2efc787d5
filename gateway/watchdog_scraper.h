// Scrapes the /_/metrics of every watchdog the gateway runs, for one GET /_fn/metrics: each
// watchdog once per call, all of them concurrently, each within a short deadline and the whole
// within a budget, so a hung watchdog (SIGSTOP: the kernel still accepts, nobody answers) costs
// one deadline and never hangs /_fn/metrics. The scrapes that did not answer say why.
#pragma once

#include <chrono>
#include <memory>
#include <vector>

#include "gateway/registry.h"
#include "gateway/upstream.h"
#include "gateway/watchdog_metrics.h"

namespace gateway {

struct ScrapeLimits {
  std::chrono::milliseconds per_watchdog{1000};  // connect, request and answer
  std::chrono::milliseconds budget{3000};        // every scrape of the call
  std::size_t threads = 8;                       // scrapes in flight at once
};

// The sockets worth scraping: the watchdogs the gateway started (supervised), running and not
// parked. FN_RUNTIME_SOCKETS' sockets are left out: whoever runs them can scrape them directly, and
// scraping them here too would count their requests twice.
std::vector<std::shared_ptr<Upstream>> scrape_targets(const Snapshot& snapshot);

// One scrape per target, in the order of `targets`. Blocks for at most about `limits.budget`.
// Thread-safe.
std::vector<WatchdogScrape> scrape_watchdogs(const std::vector<std::shared_ptr<Upstream>>& targets,
                                             const ScrapeLimits& limits = {});

}  // namespace gateway
