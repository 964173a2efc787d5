#include "common/prometheus.h"

#include <doctest/doctest.h>

#include <limits>
#include <string>

namespace prom = common::prometheus;

TEST_CASE("prometheus: append_header writes HELP and TYPE") {
  std::string out;
  prom::append_header(out, "fn_requests_total", "Requests by status.", "counter");
  CHECK(out == "# HELP fn_requests_total Requests by status.\n# TYPE fn_requests_total counter\n");
}

TEST_CASE("prometheus: append_sample without labels") {
  std::string out;
  prom::append_sample(out, "fn_inflight", {}, 3);
  CHECK(out == "fn_inflight 3\n");
}

TEST_CASE("prometheus: append_sample with labels") {
  std::string out;
  prom::append_sample(out, "fn_processes", {{"function", "echo"}, {"state", "idle"}}, 2);
  CHECK(out == "fn_processes{function=\"echo\",state=\"idle\"} 2\n");
}

TEST_CASE("prometheus: append_sample escapes label values") {
  std::string out;
  SUBCASE("quote") {
    prom::append_sample(out, "m", {{"v", "a\"b"}}, 1);
    CHECK(out == "m{v=\"a\\\"b\"} 1\n");
  }
  SUBCASE("backslash") {
    prom::append_sample(out, "m", {{"v", "a\\b"}}, 1);
    CHECK(out == "m{v=\"a\\\\b\"} 1\n");
  }
  SUBCASE("newline") {
    prom::append_sample(out, "m", {{"v", "a\nb"}}, 1);
    CHECK(out == "m{v=\"a\\nb\"} 1\n");
  }
  SUBCASE("other bytes pass through") {
    prom::append_sample(out, "m", {{"v", "é\t{}=,"}}, 1);
    CHECK(out == "m{v=\"é\t{}=,\"} 1\n");
  }
}

TEST_CASE("prometheus: append_sample renders values") {
  std::string out;
  SUBCASE("fraction") {
    prom::append_sample(out, "m", {}, 0.25);
    CHECK(out == "m 0.25\n");
  }
  SUBCASE("+Inf") {
    prom::append_sample(out, "m", {}, std::numeric_limits<double>::infinity());
    CHECK(out == "m +Inf\n");
  }
  SUBCASE("-Inf") {
    prom::append_sample(out, "m", {}, -std::numeric_limits<double>::infinity());
    CHECK(out == "m -Inf\n");
  }
  SUBCASE("appends to what is there") {
    out = "x 1\n";
    prom::append_sample(out, "m", {}, 0);
    CHECK(out == "x 1\nm 0\n");
  }
}

TEST_CASE("prometheus: StatusCounter renders one sample per status seen, in order") {
  prom::StatusCounter counter;
  counter.inc(502);
  counter.inc(200);
  counter.inc(200);
  counter.inc(429);
  std::string out;
  counter.render(out, "fn_requests_total", {{"function", "echo"}});
  CHECK(out ==
        "fn_requests_total{function=\"echo\",status=\"200\"} 2\n"
        "fn_requests_total{function=\"echo\",status=\"429\"} 1\n"
        "fn_requests_total{function=\"echo\",status=\"502\"} 1\n");
  CHECK(counter.total() == 4);
}

TEST_CASE("prometheus: StatusCounter with nothing counted renders nothing") {
  prom::StatusCounter counter;
  std::string out;
  counter.render(out, "fn_requests_total", {});
  CHECK(out.empty());
  CHECK(counter.total() == 0);
}

TEST_CASE("prometheus: StatusCounter ignores out-of-range statuses") {
  prom::StatusCounter counter;
  counter.inc(-1);
  counter.inc(600);
  counter.inc(100000);
  counter.inc(599);
  CHECK(counter.total() == 1);
  std::string out;
  counter.render(out, "r", {});
  CHECK(out == "r{status=\"599\"} 1\n");
}

TEST_CASE("prometheus: Histogram renders cumulative buckets, sum and count") {
  prom::Histogram histogram;
  histogram.observe(0.0005);  // le is inclusive: lands in the first bucket
  histogram.observe(0.003);
  histogram.observe(1.5);
  histogram.observe(100);  // past the last bucket: only +Inf
  std::string out;
  histogram.render(out, "fn_seconds", {{"function", "f"}});
  CHECK(out ==
        "fn_seconds_bucket{function=\"f\",le=\"0.0005\"} 1\n"
        "fn_seconds_bucket{function=\"f\",le=\"0.001\"} 1\n"
        "fn_seconds_bucket{function=\"f\",le=\"0.0025\"} 1\n"
        "fn_seconds_bucket{function=\"f\",le=\"0.005\"} 2\n"
        "fn_seconds_bucket{function=\"f\",le=\"0.01\"} 2\n"
        "fn_seconds_bucket{function=\"f\",le=\"0.025\"} 2\n"
        "fn_seconds_bucket{function=\"f\",le=\"0.05\"} 2\n"
        "fn_seconds_bucket{function=\"f\",le=\"0.1\"} 2\n"
        "fn_seconds_bucket{function=\"f\",le=\"0.25\"} 2\n"
        "fn_seconds_bucket{function=\"f\",le=\"0.5\"} 2\n"
        "fn_seconds_bucket{function=\"f\",le=\"1\"} 2\n"
        "fn_seconds_bucket{function=\"f\",le=\"2.5\"} 3\n"
        "fn_seconds_bucket{function=\"f\",le=\"5\"} 3\n"
        "fn_seconds_bucket{function=\"f\",le=\"10\"} 3\n"
        "fn_seconds_bucket{function=\"f\",le=\"30\"} 3\n"
        "fn_seconds_bucket{function=\"f\",le=\"+Inf\"} 4\n"
        "fn_seconds_sum{function=\"f\"} 101.5035\n"
        "fn_seconds_count{function=\"f\"} 4\n");
}

TEST_CASE("prometheus: an empty Histogram renders zeros") {
  prom::Histogram histogram;
  std::string out;
  histogram.render(out, "h", {});
  CHECK(out.find("h_bucket{le=\"0.0005\"} 0\n") != std::string::npos);
  CHECK(out.find("h_bucket{le=\"+Inf\"} 0\n") != std::string::npos);
  CHECK(out.find("h_sum 0\n") != std::string::npos);
  CHECK(out.find("h_count 0\n") != std::string::npos);
}
