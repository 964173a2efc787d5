// The watchdogs' series in the gateway's /_fn/metrics. A gateway's watchdogs listen on private
// unix sockets that Prometheus cannot reach, so the gateway scrapes each one (watchdog_scraper.h)
// and re-exposes its text here: every sample gets the `function` and `index` of the socket it came
// from, every family is renamed into fastfn_watchdog_* (so a watchdog's process_* and
// fastfn_build_info never mix with the gateway's own), and each family's HELP and TYPE appear
// once however many watchdogs sent it. Pure.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gateway {

// What one scrape of one watchdog's /_/metrics gave.
struct WatchdogScrape {
  std::string function;
  int index = 0;
  bool ok = false;
  std::string text;   // the exposition text, when ok
  std::string error;  // why not, otherwise
  double seconds = 0;
};

// The name a watchdog's family or sample has in the gateway's output: fastfn_watchdog_* stays,
// another fastfn_* becomes fastfn_watchdog_*, anything else gets the prefix fastfn_watchdog_.
std::string watchdog_series_name(std::string_view name);

// Appends the families of every ok scrape, merged (first-seen order, HELP and TYPE once per
// family, each sample relabelled with its scrape's function and index in place of any it had),
// then fastfn_gateway_watchdog_scrape_ok and fastfn_gateway_watchdog_scrape_duration_seconds per
// scrape. Lines that are not valid samples are dropped.
void append_watchdog_metrics(std::string& out, const std::vector<WatchdogScrape>& scrapes);

}  // namespace gateway
