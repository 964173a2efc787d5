#include "common/process_metrics.h"

#include <dirent.h>
#include <sys/resource.h>
#include <unistd.h>

#include <charconv>
#include <fstream>
#include <iterator>
#include <sstream>
#include <vector>

#include "common/prometheus.h"

namespace common {
namespace {

std::string read_whole(const char* path) {
  std::ifstream in(path);
  return std::string(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
}

// btime from /proc/stat: when the machine booted, in seconds since the epoch; 0 if unknown.
double boot_time() {
  std::istringstream in(read_whole("/proc/stat"));
  for (std::string line; std::getline(in, line);)
    if (line.starts_with("btime ")) return std::strtod(line.c_str() + 6, nullptr);
  return 0;
}

std::optional<double> open_fds() {
  DIR* dir = ::opendir("/proc/self/fd");
  if (!dir) return std::nullopt;
  double count = 0;
  while (dirent* entry = ::readdir(dir))
    if (entry->d_name[0] != '.') ++count;
  ::closedir(dir);
  return count - 1;  // not the one opendir holds
}

}  // namespace

std::optional<ProcessSample> sample_from_stat(std::string_view line, double ticks_per_second,
                                              double page_bytes, double boot_time) {
  // The command is in parentheses and may hold spaces and ')': the fields start after the last.
  auto paren = line.rfind(')');
  if (paren == std::string_view::npos || ticks_per_second <= 0) return std::nullopt;
  std::vector<double> fields;  // fields[0] is field 3 of proc(5), the state, read as 0
  for (std::string_view rest = line.substr(paren + 1); !rest.empty();) {
    auto start = rest.find_first_not_of(' ');
    if (start == std::string_view::npos) break;
    rest.remove_prefix(start);
    auto end = rest.find(' ');
    std::string_view word = rest.substr(0, end);
    double value = 0;
    std::from_chars(word.data(), word.data() + word.size(), value);
    fields.push_back(value);
    rest = end == std::string_view::npos ? std::string_view() : rest.substr(end);
  }
  auto field = [&](int number) { return fields[static_cast<std::size_t>(number - 3)]; };
  if (fields.size() < 22) return std::nullopt;  // up to field 24, rss
  ProcessSample sample;
  sample.cpu_seconds = (field(14) + field(15)) / ticks_per_second;
  sample.threads = field(20);
  sample.start_time_seconds = boot_time + field(22) / ticks_per_second;
  sample.virtual_bytes = field(23);
  sample.resident_bytes = field(24) * page_bytes;
  return sample;
}

void append_process_metrics(std::string& out) {
  namespace prom = prometheus;
  static const double kBootTime = boot_time();  // fixed while the machine runs: read once
  auto gauge = [&out](std::string_view name, std::string_view help, std::string_view type,
                      double value) {
    prom::append_header(out, name, help, type);
    prom::append_sample(out, name, {}, value);
  };
  auto sample = sample_from_stat(read_whole("/proc/self/stat"),
                                 static_cast<double>(::sysconf(_SC_CLK_TCK)),
                                 static_cast<double>(::sysconf(_SC_PAGESIZE)), kBootTime);
  if (sample) {
    gauge("process_cpu_seconds_total", "Total user and system CPU time spent in seconds.",
          "counter", sample->cpu_seconds);
    gauge("process_resident_memory_bytes", "Resident memory size in bytes.", "gauge",
          sample->resident_bytes);
    gauge("process_virtual_memory_bytes", "Virtual memory size in bytes.", "gauge",
          sample->virtual_bytes);
    gauge("process_start_time_seconds",
          "Start time of the process since unix epoch in seconds.", "gauge",
          sample->start_time_seconds);
    gauge("process_threads", "Number of OS threads in the process.", "gauge", sample->threads);
  }
  if (auto fds = open_fds())
    gauge("process_open_fds", "Number of open file descriptors.", "gauge", *fds);
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY)
    gauge("process_max_fds", "Maximum number of open file descriptors.", "gauge",
          static_cast<double>(limit.rlim_cur));
  prom::append_header(out, "fastfn_build_info", "The fastfn version of this binary.", "gauge");
  prom::append_sample(out, "fastfn_build_info", {{"version", FASTFN_VERSION}}, 1);
}

}  // namespace common
