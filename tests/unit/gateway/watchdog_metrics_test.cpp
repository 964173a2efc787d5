#include "gateway/watchdog_metrics.h"

#include <doctest/doctest.h>

#include <string>

namespace {

using gateway::WatchdogScrape;

const char* const kWatchdogText =
    "# HELP fastfn_watchdog_requests_total Function requests.\n"
    "# TYPE fastfn_watchdog_requests_total counter\n"
    "fastfn_watchdog_requests_total{function=\"ignored\",code=\"200\",method=\"GET\"} 3\n"
    "# HELP fastfn_watchdog_request_duration_seconds Latency.\n"
    "# TYPE fastfn_watchdog_request_duration_seconds histogram\n"
    "fastfn_watchdog_request_duration_seconds_bucket{function=\"x\",le=\"+Inf\"} 3\n"
    "fastfn_watchdog_request_duration_seconds_sum{function=\"x\"} 0.5\n"
    "fastfn_watchdog_request_duration_seconds_count{function=\"x\"} 3\n"
    "# HELP process_open_fds Number of open file descriptors.\n"
    "# TYPE process_open_fds gauge\n"
    "process_open_fds 12\n"
    "# HELP fastfn_build_info The fastfn version of this binary.\n"
    "# TYPE fastfn_build_info gauge\n"
    "fastfn_build_info{version=\"0.1.0\"} 1\n";

WatchdogScrape ok(std::string function, int index, std::string text) {
  return {std::move(function), index, true, std::move(text), {}, 0.25};
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("watchdog_metrics: names go into fastfn_watchdog_*") {
  CHECK(gateway::watchdog_series_name("fastfn_watchdog_spawns_total") ==
        "fastfn_watchdog_spawns_total");
  CHECK(gateway::watchdog_series_name("fastfn_build_info") == "fastfn_watchdog_build_info");
  CHECK(gateway::watchdog_series_name("process_open_fds") == "fastfn_watchdog_process_open_fds");
}

TEST_CASE("watchdog_metrics: samples get the socket's function and index, in place of their own") {
  std::string out;
  gateway::append_watchdog_metrics(out, {ok("hello", 2, kWatchdogText)});
  CHECK(out.find("fastfn_watchdog_requests_total{function=\"hello\",index=\"2\",code=\"200\","
                 "method=\"GET\"} 3\n") != std::string::npos);
  CHECK(out.find("fastfn_watchdog_request_duration_seconds_bucket{function=\"hello\",index=\"2\","
                 "le=\"+Inf\"} 3\n") != std::string::npos);
  CHECK(out.find("fastfn_watchdog_process_open_fds{function=\"hello\",index=\"2\"} 12\n") !=
        std::string::npos);
  CHECK(out.find(
            "fastfn_watchdog_build_info{function=\"hello\",index=\"2\",version=\"0.1.0\"} 1\n") !=
        std::string::npos);
  CHECK(out.find("ignored") == std::string::npos);
  // Nothing of the watchdog keeps a name the gateway's own series have.
  CHECK(out.find("\nprocess_") == std::string::npos);
  CHECK(out.find("\nfastfn_build_info") == std::string::npos);
}

TEST_CASE("watchdog_metrics: each family's HELP and TYPE once, its samples together") {
  std::string out;
  gateway::append_watchdog_metrics(
      out, {ok("a", 0, kWatchdogText), ok("a", 1, kWatchdogText), ok("b", 0, kWatchdogText)});
  CHECK(count(out, "# HELP fastfn_watchdog_requests_total ") == 1);
  CHECK(count(out, "# TYPE fastfn_watchdog_requests_total counter\n") == 1);
  CHECK(count(out, "# TYPE fastfn_watchdog_request_duration_seconds histogram\n") == 1);
  CHECK(count(out, "# TYPE fastfn_watchdog_process_open_fds gauge\n") == 1);
  CHECK(count(out, "fastfn_watchdog_requests_total{") == 3);
  // The three watchdogs' samples of a family follow its TYPE, before the next family's HELP.
  auto type = out.find("# TYPE fastfn_watchdog_requests_total counter\n");
  auto next = out.find("# HELP", type);
  auto last = out.rfind("fastfn_watchdog_requests_total{function=\"b\"");
  CHECK(type < last);
  CHECK(last < next);
}

TEST_CASE("watchdog_metrics: a failed scrape adds no samples and says 0") {
  std::string out;
  WatchdogScrape failed{"hung", 1, false, {}, "no reply within the deadline", 1.0};
  gateway::append_watchdog_metrics(out, {ok("a", 0, kWatchdogText), failed});
  CHECK(out.find("function=\"hung\",index=\"1\",code") == std::string::npos);
  CHECK(out.find("fastfn_gateway_watchdog_scrape_ok{function=\"hung\",index=\"1\"} 0\n") !=
        std::string::npos);
  CHECK(out.find("fastfn_gateway_watchdog_scrape_ok{function=\"a\",index=\"0\"} 1\n") !=
        std::string::npos);
  CHECK(out.find("fastfn_gateway_watchdog_scrape_duration_seconds{function=\"a\",index=\"0\"} "
                 "0.25\n") != std::string::npos);
  CHECK(count(out, "# TYPE fastfn_gateway_watchdog_scrape_ok gauge\n") == 1);
}

TEST_CASE("watchdog_metrics: escaped label values survive, bad lines are dropped") {
  std::string out;
  std::string text =
      "# TYPE m gauge\n"
      "m{path=\"a\\\"b\\\\c\",x=\"}\"} 1 1700000000000\n"
      "m{unterminated=\"x} 2\n"
      "m{bad label=\"x\"} 3\n"
      "not a sample\n"
      "m\n"
      "\n";
  gateway::append_watchdog_metrics(out, {ok("we\"ird", 0, text)});
  CHECK(out.find("fastfn_watchdog_m{function=\"we\\\"ird\",index=\"0\",path=\"a\\\"b\\\\c\","
                 "x=\"}\"} 1 1700000000000\n") != std::string::npos);
  CHECK(count(out, "fastfn_watchdog_m{") == 1);
  CHECK(out.find("fastfn_watchdog_not") == std::string::npos);
}

TEST_CASE("watchdog_metrics: a sample outside the family before it is its own, untyped family") {
  std::string out;
  std::string text =
      "# TYPE c_total counter\n"
      "c_total 1\n"
      "other_bucket 2\n";
  gateway::append_watchdog_metrics(out, {ok("f", 0, text)});
  CHECK(out.find("# TYPE fastfn_watchdog_c_total counter\nfastfn_watchdog_c_total{function=\"f\","
                 "index=\"0\"} 1\nfastfn_watchdog_other_bucket{function=\"f\",index=\"0\"} 2\n") !=
        std::string::npos);
}
