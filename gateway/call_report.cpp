#include "gateway/call_report.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <ctime>

#include <fmt/format.h>

#include "common/prometheus.h"

namespace gateway {
namespace {

std::string rfc3339(std::int64_t unix_ms) {
  std::time_t seconds = static_cast<std::time_t>(unix_ms / 1000);
  std::tm utc{};
  ::gmtime_r(&seconds, &utc);
  char text[32];
  std::strftime(text, sizeof text, "%Y-%m-%dT%H:%M:%S", &utc);
  return fmt::format("{}.{:03}Z", text, unix_ms % 1000);
}

}  // namespace

std::string call_json(const StoredCall& call) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  auto text = [&](const char* key, const std::string& value) {
    w.Key(key);
    w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  };
  w.StartObject();
  text("id", call.call.id);
  text("function", call.call.function);
  text("status", call_state_name(call.state));
  w.Key("attempts");
  w.Int(call.attempts);
  text("method", call.call.method);
  text("path", call.call.target);
  text("queued_at", rfc3339(call.call.now_ms));
  if (call.state == CallState::kQueued || call.state == CallState::kRetrying)
    text("next_try_at", rfc3339(call.next_try_ms));
  if (call.status != 0) {
    w.Key("function_status");
    w.Int(call.status);
    if (call.exit_code) {
      w.Key("exit_code");
      w.Int(*call.exit_code);
    }
    w.Key("duration_seconds");
    w.Double(call.duration_seconds);
  }
  if (call.state == CallState::kDone || call.state == CallState::kFailed) {
    text("finished_at", rfc3339(call.finished_ms));
    text("content_type", call.content_type);
    w.Key("result_bytes");
    w.Uint64(call.result.size());
    w.Key("result_truncated");
    w.Bool(call.result_truncated);
  }
  if (!call.error.empty()) text("error", call.error);
  if (!call.call.callback_url.empty()) {
    w.Key("callback");
    w.StartObject();
    text("url", call.call.callback_url);
    text("state", call.callback_state);
    w.Key("attempts");
    w.Int(call.callback_attempts);
    w.EndObject();
  }
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

void append_queue_metrics(std::string& out, const std::vector<QueueCounts>& counts,
                          const AsyncCalls::Counters& counters, std::int64_t now_ms) {
  namespace prom = common::prometheus;
  auto per_function = [&](const char* name, const char* help, auto value_of) {
    prom::append_header(out, name, help, "gauge");
    for (const auto& count : counts)
      prom::append_sample(out, name, {{"function", count.function}}, value_of(count));
  };
  per_function("fastfn_async_queued", "Calls queued or waiting to be retried.",
               [](const QueueCounts& c) { return static_cast<double>(c.queued); });
  per_function("fastfn_async_running", "Calls running.",
               [](const QueueCounts& c) { return static_cast<double>(c.running); });
  per_function("fastfn_async_oldest_queued_age_seconds", "Age of the oldest queued call.",
               [now_ms](const QueueCounts& c) {
                 return c.oldest_queued_ms ? static_cast<double>(now_ms - c.oldest_queued_ms) / 1000
                                           : 0.0;
               });
  prom::append_header(out, "fastfn_async_runs_total",
                      "Runs of queued calls by the function's status (0: no answer).", "counter");
  // The statuses a run can end with whatever the function is (none, success, fastfn's own
  // errors) are there at 0 from the start, so that increase() counts the first ones.
  auto completed = counters.completed;
  for (int status : {0, 200, 429, 500, 502, 503, 504}) completed.try_emplace(status, 0);
  for (const auto& [status, runs] : completed) {
    std::string code = std::to_string(status);
    prom::append_sample(out, "fastfn_async_runs_total", {{"code", code}},
                        static_cast<double>(runs));
  }
  prom::append_header(out, "fastfn_async_retries_total", "Runs followed by a retry.", "counter");
  prom::append_sample(out, "fastfn_async_retries_total", {}, static_cast<double>(counters.retries));
  prom::append_header(out, "fastfn_async_callbacks_total", "Callback deliveries by result.",
                      "counter");
  prom::append_sample(out, "fastfn_async_callbacks_total", {{"result", "sent"}},
                      static_cast<double>(counters.callbacks_sent));
  prom::append_sample(out, "fastfn_async_callbacks_total", {{"result", "failed"}},
                      static_cast<double>(counters.callback_failures));
}

}  // namespace gateway
