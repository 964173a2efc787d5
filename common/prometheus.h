// Prometheus text exposition (version 0.0.4) helpers for /_/metrics and /_fn/metrics: lock-free
// counters for the request path, and functions that render samples with escaped labels.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace common::prometheus {

using Labels = std::vector<std::pair<std::string_view, std::string_view>>;

// Appends "# HELP name help\n# TYPE name type\n".
void append_header(std::string& out, std::string_view name, std::string_view help,
                   std::string_view type);
// Appends `name{k="v",...} value\n` with label values escaped.
void append_sample(std::string& out, std::string_view name, const Labels& labels, double value);

// Requests counted by HTTP status, one atomic per code: no lock on the request path.
class StatusCounter {
 public:
  void inc(int status) noexcept;
  // Appends one sample per status seen, labelled with `labels` plus status="NNN".
  void render(std::string& out, std::string_view name, const Labels& labels) const;
  std::uint64_t total() const noexcept;

 private:
  std::array<std::atomic<std::uint64_t>, 600> counts_{};
};

// A latency histogram in seconds with fixed buckets from 0.5 ms to 30 s.
class Histogram {
 public:
  static constexpr std::array<double, 15> kBuckets = {0.0005, 0.001, 0.0025, 0.005, 0.01,
                                                      0.025,  0.05,  0.1,    0.25,  0.5,
                                                      1,      2.5,   5,      10,    30};
  void observe(double seconds) noexcept;
  // Appends the _bucket (cumulative, with le="+Inf"), _sum and _count samples.
  void render(std::string& out, std::string_view name, const Labels& labels) const;

 private:
  std::array<std::atomic<std::uint64_t>, kBuckets.size() + 1> counts_{};
  std::atomic<std::uint64_t> sum_micros_{0};
};

}  // namespace common::prometheus
