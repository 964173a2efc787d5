#include "gateway/status.h"

#include <map>
#include <vector>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "common/process_metrics.h"

namespace gateway {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void write_string(Writer& w, std::string_view text) {
  w.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
}

const char* state_name(Upstream::State state) {
  switch (state) {
    case Upstream::State::kUp: return "up";
    case Upstream::State::kDown: return "down";
    case Upstream::State::kCold: return "cold";
    case Upstream::State::kStarting: break;
  }
  return "starting";
}

void write_socket(Writer& w, const Upstream& upstream) {
  w.StartObject();
  w.Key("function");
  write_string(w, upstream.function());
  w.Key("index");
  w.Int(upstream.index());
  w.Key("address");
  write_string(w, upstream.address().to_string());
  w.Key("uri");  // FastFN's name for the address
  write_string(w, upstream.address().to_string());
  w.Key("up");
  w.Bool(upstream.state() == Upstream::State::kUp);
  w.Key("state");
  w.String(state_name(upstream.state()));
  w.Key("supervised");
  w.Bool(upstream.supervised());
  w.Key("pid");
  if (upstream.pid() > 0) w.Int(upstream.pid());
  else w.Null();
  w.Key("restarts");
  w.Uint64(upstream.restarts());
  const auto error = upstream.last_error();
  for (const char* key : {"last_error", "reason"}) {  // "reason": FastFN's name
    w.Key(key);
    if (error) write_string(w, *error);
    else w.Null();
  }
  w.EndObject();
}

void write_strings(Writer& w, const std::vector<std::string>& strings) {
  w.StartArray();
  for (const auto& s : strings) write_string(w, s);
  w.EndArray();
}

void write_runtimes(Writer& w, const Snapshot& snapshot) {
  std::map<std::string, std::vector<const FunctionRuntime*>> by_runtime;
  for (const auto& function : snapshot.functions)
    by_runtime[function->spec.runtime].push_back(function.get());
  w.StartObject();
  for (const auto& [runtime, functions] : by_runtime) {
    bool up = false, round_robin = false;
    std::string reason;  // the first function's, when none of the runtime's is available
    for (const auto* function : functions) {
      up = up || function->available();
      round_robin = round_robin || function->upstreams.size() > 1;
      if (reason.empty() && !function->available())
        reason = function->spec.name + ": " + function->unavailable_reason();
    }
    w.Key(runtime.c_str());
    w.StartObject();
    w.Key("up");
    w.Bool(up);
    w.Key("health");  // FastFN's shape of the same
    w.StartObject();
    w.Key("up");
    w.Bool(up);
    w.Key("reason");
    if (up) w.Null();
    else write_string(w, reason);
    w.EndObject();
    w.Key("routing");
    w.String(round_robin ? "round_robin" : "single");
    w.Key("sockets");
    w.StartArray();
    for (const auto* function : functions)
      for (const auto& upstream : function->upstreams) write_socket(w, *upstream);
    w.EndArray();
    w.EndObject();
  }
  w.EndObject();
}

void write_function_summary(Writer& w, const FunctionRuntime& function) {
  const FunctionSpec& spec = function.spec;
  w.StartObject();
  w.Key("runtime");
  write_string(w, spec.runtime);
  w.Key("format");
  write_string(w, format_name(spec.format));
  // How the handler speaks: FastFN's handler(event) through the shim, or the format's own protocol.
  w.Key("contract");
  write_string(w, spec.event_contract          ? "event"
                  : spec.format == Format::kHttp ? "stdio"
                                                 : format_name(spec.format));
  w.Key("routes");
  write_strings(w, spec.routes);
  w.Key("up");
  w.Bool(function.available());
  w.Key("installing");  // its dependencies: "error" says which, and it is not ready until done
  w.Bool(spec.installing);
  // Not ready: its watchdogs cannot run it, and "error" says why (its route answers 503 with it).
  auto problem = function.problem();
  w.Key("ready");
  w.Bool(!problem);
  w.Key("error");
  if (problem) write_string(w, *problem);
  else w.Null();
  w.Key("warm");
  w.Bool(!function.cold());
  w.Key("start");
  w.String(function.on_demand ? "on_demand" : "always");
  w.Key("daemons");
  w.Uint64(function.upstreams.size());
  w.Key("sockets_up");
  w.Int(function.sockets_up());
  w.Key("routing");
  w.String(function.routing());
  w.Key("in_flight");
  w.Int(function.admission.in_flight());
  w.Key("queued");
  w.Int(function.admission.queued());
  w.EndObject();
}

void write_optional(Writer& w, const char* key, const std::optional<std::uint64_t>& value) {
  w.Key(key);
  if (value) w.Uint64(*value);
  else w.Null();
}

void write_function_config(Writer& w, const FunctionRuntime& function) {
  const FunctionSpec& spec = function.spec;
  w.StartObject();
  w.Key("name");
  write_string(w, spec.name);
  w.Key("dir");
  write_string(w, spec.dir.string());
  w.Key("command");
  write_strings(w, spec.command);
  w.Key("methods");
  write_strings(w, spec.methods);
  write_optional(w, "timeout_ms", spec.timeout_ms);
  write_optional(w, "idle_timeout_ms", spec.idle_timeout_ms);
  write_optional(w, "max_body_bytes", spec.max_body_bytes);
  write_optional(w, "min_instances", spec.min_instances);
  write_optional(w, "max_instances", spec.max_instances);
  write_optional(w, "max_requests", spec.max_requests);
  write_optional(w, "max_concurrency", spec.max_concurrency);
  w.Key("worker_pool");
  w.StartObject();
  w.Key("enabled");
  w.Bool(spec.worker_pool.enabled);
  w.Key("max_workers");
  w.Uint(spec.worker_pool.max_workers);
  w.Key("max_queue");
  w.Uint(spec.worker_pool.max_queue);
  w.Key("queue_timeout_ms");
  w.Int64(spec.worker_pool.queue_timeout.count());
  w.Key("overflow_status");
  w.Int(spec.worker_pool.overflow_status);
  w.Key("min_warm");
  w.Uint(spec.on_demand ? 0 : spec.worker_pool.min_warm.value_or(1));
  w.Key("idle_ttl_seconds");
  w.Int64(std::chrono::duration_cast<std::chrono::seconds>(spec.idle_ttl).count());
  w.EndObject();
  w.Key("include_debug_headers");
  w.Bool(spec.include_debug_headers);
  w.Key("external_sockets");
  write_strings(w, spec.external_sockets);
  w.EndObject();
}

}  // namespace

std::string health_json(const Snapshot& snapshot, bool* ok) {
  bool all_up = true;
  for (const auto& function : snapshot.functions)
    all_up = all_up && !function->problem() &&
             (function->cold() ||
              function->sockets_up() == static_cast<int>(function->upstreams.size()));
  if (ok) *ok = all_up;
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("status");
  w.String(all_up ? "ok" : "degraded");
  w.Key("runtimes");
  write_runtimes(w, snapshot);
  w.Key("functions");
  w.StartObject();
  for (const auto& function : snapshot.functions) {
    w.Key(function->spec.name.c_str());
    write_function_summary(w, *function);
  }
  w.EndObject();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

std::string functions_json(const Snapshot& snapshot) {
  rapidjson::StringBuffer buffer;
  Writer w(buffer);
  w.StartObject();
  w.Key("functions");
  w.StartArray();
  for (const auto& function : snapshot.functions) {
    w.StartObject();
    w.Key("name");
    write_string(w, function->spec.name);
    w.Key("summary");
    write_function_summary(w, *function);
    w.Key("config");
    write_function_config(w, *function);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

std::string metrics_text(const Snapshot& snapshot,
                         const common::prometheus::RequestCounter& unrouted) {
  namespace prom = common::prometheus;
  std::string out;
  prom::append_header(out, "fastfn_gateway_requests_total",
                      "Requests by function, status code and method (no function label: no "
                      "function serves the path).",
                      "counter");
  for (const auto& function : snapshot.functions)
    function->requests.render(out, "fastfn_gateway_requests_total",
                              {{"function", function->spec.name}});
  unrouted.render(out, "fastfn_gateway_requests_total", {});
  prom::append_header(out, "fastfn_gateway_request_duration_seconds", "Request latency.",
                      "histogram");
  for (const auto& function : snapshot.functions)
    function->latency.render(out, "fastfn_gateway_request_duration_seconds",
                             {{"function", function->spec.name}});
  auto gauge = [&](const char* name, const char* help, const char* type, auto value_of) {
    prom::append_header(out, name, help, type);
    for (const auto& function : snapshot.functions)
      prom::append_sample(out, name, {{"function", function->spec.name}},
                          static_cast<double>(value_of(*function)));
  };
  gauge("fastfn_gateway_requests_in_flight", "Requests in flight.", "gauge",
        [](const FunctionRuntime& f) { return f.admission.in_flight(); });
  gauge("fastfn_gateway_requests_queued", "Requests waiting in the worker pool queue.", "gauge",
        [](const FunctionRuntime& f) { return f.admission.queued(); });
  gauge("fastfn_gateway_sockets_up", "Sockets up.", "gauge",
        [](const FunctionRuntime& f) { return f.sockets_up(); });
  gauge("fastfn_gateway_restarts_total", "Watchdog restarts.", "counter", [](const FunctionRuntime& f) {
    std::uint64_t restarts = 0;
    for (const auto& upstream : f.upstreams) restarts += upstream->restarts();
    return restarts;
  });
  common::append_process_metrics(out);
  return out;
}

}  // namespace gateway
