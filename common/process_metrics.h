// The process_* series every Prometheus client library exports (its "process collector"), read
// from /proc, and fastfn_build_info: what an operator's dashboards and alerts expect of a target.
#pragma once

#include <optional>
#include <string>
#include <string_view>

namespace common {

struct ProcessSample {
  double cpu_seconds = 0;         // user + system
  double resident_bytes = 0;
  double virtual_bytes = 0;
  double start_time_seconds = 0;  // since the Unix epoch
  double threads = 0;
};

// A /proc/PID/stat line read into a sample: `ticks_per_second` (sysconf _SC_CLK_TCK), `page_bytes`,
// `boot_time` (btime of /proc/stat, seconds since the epoch). nullopt when malformed. Pure.
std::optional<ProcessSample> sample_from_stat(std::string_view line, double ticks_per_second,
                                              double page_bytes, double boot_time);

// Appends process_cpu_seconds_total, process_resident_memory_bytes,
// process_virtual_memory_bytes, process_start_time_seconds, process_threads, process_open_fds,
// process_max_fds and fastfn_build_info{version} for this process. A value /proc cannot give is
// left out, never made up.
void append_process_metrics(std::string& out);

}  // namespace common
