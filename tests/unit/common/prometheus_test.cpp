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

TEST_CASE("prometheus: RequestCounter renders one sample per code and method seen, in order") {
  prom::RequestCounter counter;
  auto get = prom::RequestCounter::method_index("GET");
  auto post = prom::RequestCounter::method_index("POST");
  counter.inc(502, get);
  counter.inc(200, post);
  counter.inc(200, get);
  counter.inc(200, get);
  counter.inc(429, get);
  std::string out;
  counter.render(out, "fn_requests_total", {{"function", "echo"}});
  CHECK(out ==
        "fn_requests_total{function=\"echo\",code=\"200\",method=\"GET\"} 2\n"
        "fn_requests_total{function=\"echo\",code=\"200\",method=\"POST\"} 1\n"
        "fn_requests_total{function=\"echo\",code=\"429\",method=\"GET\"} 1\n"
        "fn_requests_total{function=\"echo\",code=\"502\",method=\"GET\"} 1\n");
  CHECK(counter.total() == 5);
}

TEST_CASE("prometheus: RequestCounter with nothing counted or declared renders nothing") {
  prom::RequestCounter counter;
  std::string out;
  counter.render(out, "fn_requests_total", {});
  CHECK(out.empty());
  CHECK(counter.total() == 0);
}

TEST_CASE("prometheus: RequestCounter renders declared pairs at 0 before the first request") {
  prom::RequestCounter counter;
  counter.declare_defaults({"GET", "POST"});
  std::string out;
  counter.render(out, "r", {});
  for (int code : prom::RequestCounter::kDeclaredCodes)
    for (const char* method : {"GET", "POST"}) {
      std::string line = "r{code=\"" + std::to_string(code) + "\",method=\"" + method + "\"} 0\n";
      CHECK_MESSAGE(out.find(line) != std::string::npos, line);
    }
  CHECK(out.find("method=\"PUT\"") == std::string::npos);
  counter.inc(503, prom::RequestCounter::method_index("POST"));
  out.clear();
  counter.render(out, "r", {});
  CHECK(out.find("r{code=\"503\",method=\"POST\"} 1\n") != std::string::npos);
  CHECK(out.find("r{code=\"503\",method=\"GET\"} 0\n") != std::string::npos);
}

TEST_CASE("prometheus: RequestCounter counts an unknown method as other") {
  prom::RequestCounter counter;
  CHECK(prom::RequestCounter::method_index("PROPFIND") ==
        prom::RequestCounter::method_index("other"));
  CHECK(prom::RequestCounter::method_index("get") == prom::RequestCounter::method_index("X"));
  counter.inc(207, prom::RequestCounter::method_index("PROPFIND"));
  std::string out;
  counter.render(out, "r", {});
  CHECK(out == "r{code=\"207\",method=\"other\"} 1\n");
}

TEST_CASE("prometheus: RequestCounter ignores out-of-range statuses and methods") {
  prom::RequestCounter counter;
  counter.inc(-1, 0);
  counter.inc(600, 0);
  counter.inc(100000, 0);
  counter.inc(200, prom::RequestCounter::kMethods.size());
  counter.inc(599, 0);
  counter.declare(600, "GET");
  counter.declare(-1, "GET");
  CHECK(counter.total() == 1);
  std::string out;
  counter.render(out, "r", {});
  CHECK(out == "r{code=\"599\",method=\"GET\"} 1\n");
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
