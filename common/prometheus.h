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

// Requests counted by HTTP status and method, one atomic per pair: no lock on the request path.
// Rendered with the labels OpenFaaS's users query: code="200", method="GET".
class RequestCounter {
 public:
  // The methods counted by name; any other is counted as "other" (a label value per method a
  // client invents would let clients add series at will).
  static constexpr std::array<std::string_view, 8> kMethods = {
      "GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS", "other"};
  // The statuses declared at 0 by declare_defaults(): success, and the ones fastfn answers itself
  // when overloaded or failing, so that increase() and rate() count the first errors.
  static constexpr std::array<int, 6> kDeclaredCodes = {200, 429, 500, 502, 503, 504};

  static std::size_t method_index(std::string_view method) noexcept;

  // Makes (code, method) rendered at 0 before it is first counted. Not thread-safe: call before
  // the counter is shared.
  void declare(int code, std::string_view method);
  // declare() for every kDeclaredCodes with each of `methods`.
  void declare_defaults(const std::vector<std::string_view>& methods);
  void inc(int code, std::size_t method) noexcept;
  // Appends one sample per pair declared or seen, labelled with `labels` plus code and method,
  // ordered by code then method.
  void render(std::string& out, std::string_view name, const Labels& labels) const;
  std::uint64_t total() const noexcept;

 private:
  static constexpr std::size_t kCodes = 600;
  static std::size_t slot(int code, std::size_t method) noexcept {
    return static_cast<std::size_t>(code) * kMethods.size() + method;
  }

  std::array<std::atomic<std::uint64_t>, kCodes * kMethods.size()> counts_{};
  std::vector<bool> declared_ = std::vector<bool>(kCodes * kMethods.size());
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
