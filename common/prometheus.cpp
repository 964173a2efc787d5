#include "common/prometheus.h"

#include <cmath>

#include <fmt/format.h>

namespace common::prometheus {
namespace {

void append_escaped(std::string& out, std::string_view value) {
  for (char c : value) {
    if (c == '\\') out += "\\\\";
    else if (c == '"') out += "\\\"";
    else if (c == '\n') out += "\\n";
    else out += c;
  }
}

void append_number(std::string& out, double value) {
  if (std::isinf(value)) out += value > 0 ? "+Inf" : "-Inf";
  else fmt::format_to(std::back_inserter(out), "{}", value);
}

}  // namespace

void append_header(std::string& out, std::string_view name, std::string_view help,
                   std::string_view type) {
  fmt::format_to(std::back_inserter(out), "# HELP {} {}\n# TYPE {} {}\n", name, help, name, type);
}

void append_sample(std::string& out, std::string_view name, const Labels& labels, double value) {
  out += name;
  if (!labels.empty()) {
    out += '{';
    for (std::size_t i = 0; i < labels.size(); ++i) {
      if (i) out += ',';
      out += labels[i].first;
      out += "=\"";
      append_escaped(out, labels[i].second);
      out += '"';
    }
    out += '}';
  }
  out += ' ';
  append_number(out, value);
  out += '\n';
}

void StatusCounter::inc(int status) noexcept {
  if (status >= 0 && status < static_cast<int>(counts_.size()))
    counts_[static_cast<std::size_t>(status)].fetch_add(1, std::memory_order_relaxed);
}

void StatusCounter::render(std::string& out, std::string_view name, const Labels& labels) const {
  for (std::size_t status = 0; status < counts_.size(); ++status) {
    auto count = counts_[status].load(std::memory_order_relaxed);
    if (count == 0) continue;
    std::string code = std::to_string(status);
    Labels with_status = labels;
    with_status.emplace_back("status", code);
    append_sample(out, name, with_status, static_cast<double>(count));
  }
}

std::uint64_t StatusCounter::total() const noexcept {
  std::uint64_t sum = 0;
  for (const auto& count : counts_) sum += count.load(std::memory_order_relaxed);
  return sum;
}

void Histogram::observe(double seconds) noexcept {
  std::size_t bucket = 0;
  while (bucket < kBuckets.size() && seconds > kBuckets[bucket]) ++bucket;
  counts_[bucket].fetch_add(1, std::memory_order_relaxed);
  sum_micros_.fetch_add(static_cast<std::uint64_t>(seconds * 1e6), std::memory_order_relaxed);
}

void Histogram::render(std::string& out, std::string_view name, const Labels& labels) const {
  std::string bucket_name = std::string(name) + "_bucket";
  std::uint64_t cumulative = 0;
  for (std::size_t i = 0; i <= kBuckets.size(); ++i) {
    cumulative += counts_[i].load(std::memory_order_relaxed);
    std::string le = i < kBuckets.size() ? fmt::format("{}", kBuckets[i]) : "+Inf";
    Labels with_le = labels;
    with_le.emplace_back("le", le);
    append_sample(out, bucket_name, with_le, static_cast<double>(cumulative));
  }
  double sum = static_cast<double>(sum_micros_.load(std::memory_order_relaxed)) / 1e6;
  append_sample(out, std::string(name) + "_sum", labels, sum);
  append_sample(out, std::string(name) + "_count", labels, static_cast<double>(cumulative));
}

}  // namespace common::prometheus
