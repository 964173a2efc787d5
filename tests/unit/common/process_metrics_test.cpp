#include "common/process_metrics.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <ctime>
#include <string>

#include "common/unique_fd.h"

using common::sample_from_stat;

TEST_CASE("process_metrics: a stat line with spaces and parentheses in the command") {
  // Fields 14, 15 (utime, stime), 20 (threads), 22 (starttime), 23 (vsize), 24 (rss), from proc(5).
  std::string line =
      "4242 (a (b) c) S 1 4242 4242 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 7 0 1000 "
      "123456789 300 18446744073709551615 1 1 0 0 0 0 0 0 0 0 0 0 17 1 0 0 0 0 0";
  auto sample = sample_from_stat(line, 100, 4096, 1'700'000'000);
  REQUIRE(sample);
  CHECK(sample->cpu_seconds == doctest::Approx(3.0));
  CHECK(sample->threads == 7);
  CHECK(sample->start_time_seconds == doctest::Approx(1'700'000'010.0));
  CHECK(sample->virtual_bytes == 123456789);
  CHECK(sample->resident_bytes == 300 * 4096);
}

TEST_CASE("process_metrics: a malformed or short line gives nothing") {
  CHECK_FALSE(sample_from_stat("", 100, 4096, 0));
  CHECK_FALSE(sample_from_stat("12 (x) S 1 2 3", 100, 4096, 0));
  CHECK_FALSE(sample_from_stat("no parenthesis at all", 100, 4096, 0));
}

TEST_CASE("process_metrics: this process's series, with values /proc gives") {
  std::string out;
  common::append_process_metrics(out);
  for (const char* name :
       {"process_cpu_seconds_total ", "process_resident_memory_bytes ", "process_virtual_memory_bytes ",
        "process_start_time_seconds ", "process_threads ", "process_open_fds ", "process_max_fds ",
        "fastfn_build_info{version=\""}) {
    CAPTURE(name);
    CHECK(out.find(std::string("\n") + name) != std::string::npos);
  }
  auto value = [&](const std::string& name) {
    auto at = out.find("\n" + name + " ");
    REQUIRE(at != std::string::npos);
    return std::stod(out.substr(at + name.size() + 2));
  };
  CHECK(value("process_resident_memory_bytes") > 0);
  CHECK(value("process_threads") >= 1);
  double fds = value("process_open_fds");
  common::UniqueFd one(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  common::UniqueFd two(::open("/dev/null", O_RDONLY | O_CLOEXEC));
  REQUIRE((one.valid() && two.valid()));
  out.clear();
  common::append_process_metrics(out);
  CHECK(value("process_open_fds") >= fds + 2);  // counted, not made up
  double started = value("process_start_time_seconds");
  double now = static_cast<double>(std::time(nullptr));
  CHECK(started <= now + 1);
  CHECK(started > now - 86'400 * 365);
}
