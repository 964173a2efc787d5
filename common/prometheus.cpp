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

std::size_t RequestCounter::method_index(std::string_view method) noexcept {
  for (std::size_t i = 0; i + 1 < kMethods.size(); ++i)
    if (kMethods[i] == method) return i;
  return kMethods.size() - 1;
}

void RequestCounter::declare(int code, std::string_view method) {
  if (code >= 0 && code < static_cast<int>(kCodes))
    declared_[slot(code, method_index(method))] = true;
}

void RequestCounter::declare_defaults(const std::vector<std::string_view>& methods) {
  for (int code : kDeclaredCodes)
    for (std::string_view method : methods) declare(code, method);
}

void RequestCounter::inc(int code, std::size_t method) noexcept {
  if (code >= 0 && code < static_cast<int>(kCodes) && method < kMethods.size())
    counts_[slot(code, method)].fetch_add(1, std::memory_order_relaxed);
}

void RequestCounter::render(std::string& out, std::string_view name, const Labels& labels) const {
  for (std::size_t code = 0; code < kCodes; ++code) {
    for (std::size_t method = 0; method < kMethods.size(); ++method) {
      std::size_t at = code * kMethods.size() + method;
      auto count = counts_[at].load(std::memory_order_relaxed);
      if (count == 0 && !declared_[at]) continue;
      std::string code_text = std::to_string(code);
      Labels with_code = labels;
      with_code.emplace_back("code", code_text);
      with_code.emplace_back("method", kMethods[method]);
      append_sample(out, name, with_code, static_cast<double>(count));
    }
  }
}

std::uint64_t RequestCounter::total() const noexcept {
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
