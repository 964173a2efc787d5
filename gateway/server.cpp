#include "gateway/server.h"

#include <algorithm>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "common/logging.h"
#include "gateway/assets.h"
#include "gateway/call_report.h"
#include "gateway/proxy.h"
#include "gateway/status.h"
#include "protocol/http_message.h"

namespace gateway {
namespace {

using common::Error;
using Clock = std::chrono::steady_clock;

// Past the function's own timeout, the watchdog answers 504 itself; this is the gateway's net.
constexpr std::chrono::seconds kTimeoutSlack{2};

protocol::Headers json_headers(const std::string& request_id) {
  return {{"Content-Type", "application/json"}, {"X-Fn-Request-Id", request_id}};
}

// A route's parameters for the function, as X-Fn-Params: {"id": "7"}, each value percent-decoded
// (kept as sent when it is not valid percent-encoding). "" without parameters.
std::string params_json(const RouteMatch& match) {
  if (match.params.empty()) return {};
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  for (const auto& [name, raw] : match.params) {
    std::string value = protocol::percent_decode(raw).value_or(std::string(raw));
    writer.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
    writer.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  }
  writer.EndObject();
  return buffer.GetString();
}

// /_fn/health during the drain: the same document, with "status": "shutting down" (a load balancer
// reads the 503; a person reads why).
std::string draining_health_json(const Snapshot& snapshot) {
  rapidjson::Document document;
  document.Parse(health_json(snapshot).c_str());
  if (document.HasParseError() || !document.IsObject()) return "{\"status\":\"shutting down\"}\n";
  if (auto status = document.FindMember("status"); status != document.MemberEnd())
    status->value.SetString("shutting down");
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  document.Accept(writer);
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

class Counted {
 public:
  explicit Counted(std::atomic<int>& counter) : counter_(counter) { ++counter_; }
  ~Counted() { --counter_; }
  Counted(const Counted&) = delete;
  Counted& operator=(const Counted&) = delete;

 private:
  std::atomic<int>& counter_;
};

}  // namespace

void Server::handle(common::ClientRequest& request, common::ClientResponse& response) noexcept {
  static const auto access = common::logger("gateway.access");
  Counted counted(in_flight_);
  auto start = Clock::now();
  std::string request_id = common::request_id_for(request.head().headers);
  std::string function_name = "-";
  try {
    std::string_view path = request.path();
    if (path == "/_fn" || path.starts_with("/_fn/")) {
      serve_status(request, response, request_id);
      return;
    }
    if (path == "/console" || path.starts_with("/console/")) {
      serve_console(request, response, request_id);
      return;
    }
    if (path.starts_with(kAsyncPrefix)) {
      serve_enqueue(request, response, request_id);
      return;
    }
    auto snapshot = registry_.current();
    auto match = snapshot->routes.match(path, request.method());
    const bool assets_turn = snapshot->assets && (!match || !snapshot->assets->run_worker_first);
    if (assets_turn && serve_assets(*snapshot, match.has_value(), request, response, request_id)) {
      // answered from the assets dir
    } else if (!match) {
      send_error(response, Error{Error::Code::kNotFound, "no function serves this path"}, "",
                 request_id);
    } else {
      FunctionRuntime& function = *snapshot->functions[match->function_index];
      function_name = function.spec.name;
      // The snapshot is kept: the response may be completed after this handler returns.
      response.on_complete([snapshot, &function, &response, start] {
        function.requests.inc(response.started() ? response.status() : 499);
        function.latency.observe(std::chrono::duration<double>(Clock::now() - start).count());
      });
      auto served = serve_function(function, *match, request, response, request_id);
      if (!served && !response.started())
        send_error(response, served.error(), function.spec.name, request_id);
    }
  } catch (const std::exception& e) {
    common::logger("gateway.server")->error("request handler failed error=\"{}\"", e.what());
    response.abort();
  }
  double ms = std::chrono::duration<double, std::milli>(Clock::now() - start).count();
  access->info("request method={} path={} function={} status={} ms={:.2f} bytes={} request_id={}",
               request.method(), request.path(), function_name,
               response.started() ? response.status() : 499, ms, response.body_bytes(), request_id);
}

common::Status Server::serve_function(FunctionRuntime& function, const RouteMatch& match,
                                      common::ClientRequest& request,
                                      common::ClientResponse& response,
                                      const std::string& request_id) {
  const FunctionSpec& spec = function.spec;
  if (!match.method_allowed) {
    send_error(response, Error{Error::Code::kMethodNotAllowed, "method not allowed"}, spec.name,
               request_id, {{"Allow", match.allow}});
    return {};
  }
  auto length = request.content_length();
  if (length && *length > function.max_body()) {
    response.close_after();  // the body stays unread
    return common::fail(Error::Code::kBodyTooLarge,
                        "request body of " + std::to_string(*length) +
                            " bytes is over max_body_bytes (" + std::to_string(function.max_body()) + ")");
  }
  auto deadline = Clock::now() + function.timeout() + kTimeoutSlack;
  auto ticket = function.admission.enter(deadline);
  if (!ticket) {
    send_error(response, ticket.error().error, spec.name, request_id, {{"Retry-After", "1"}},
               {{"limit", ticket.error().limit}});
    return {};
  }
  std::optional<OnDemand::Use> use;
  if (function.on_demand) use.emplace(function.on_demand->enter(Clock::now()));
  std::string params = params_json(match);
  return proxy_request(function, request, response, {request_id, match.prefix, deadline, params});
}

bool Server::serve_assets(const Snapshot& snapshot, bool routed, common::ClientRequest& request,
                          common::ClientResponse& response, const std::string& request_id) {
  if (request.method() != "GET" && request.method() != "HEAD") return false;
  std::vector<std::string_view> folders;
  for (const auto& function : snapshot.functions)
    if (!function->spec.remote) folders.push_back(function->spec.name);
  auto path = resolve_asset_path(request.path(), folders);
  if (!path) {  // refused without touching the disk; a function's own paths are its business
    if (!routed) send_error(response, path.error(), "", request_id);
    return !routed;
  }
  const protocol::Headers headers{{"X-Fn-Request-Id", request_id}};
  auto served = serve_asset(snapshot.assets->dir, *path, request, response, headers);
  if (served && !*served && !routed && snapshot.assets->single_page_application) {
    // No file and no function: a client-side router's path, answered with the app's page.
    served = serve_asset(snapshot.assets->dir, AssetPath{"index.html", false}, request, response,
                         headers);
  }
  if (served) return *served;
  if (served.error().code != Error::Code::kClientGone) {
    common::logger("gateway.assets")
        ->error("asset failed path={} error=\"{}\"", path->relative, served.error().context);
  }
  if (!response.started()) send_error(response, served.error(), "", request_id);
  return true;
}

void Server::serve_status(common::ClientRequest& request, common::ClientResponse& response,
                          const std::string& request_id) {
  std::string_view path = request.path();
  if (path == "/_fn/reload") return serve_reload(request, response, request_id);
  if (request.method() != "GET" && request.method() != "HEAD") {
    send_error(response, Error{Error::Code::kMethodNotAllowed, "method not allowed"}, "",
               request_id, {{"Allow", "GET, HEAD"}});
    return;
  }
  if (path.starts_with("/_fn/calls/")) return serve_call(path.substr(11), response, request_id);
  if (path.starts_with("/_fn/logs/")) return serve_logs(request, response, request_id);
  auto snapshot = registry_.current();
  if (path == "/_fn/health") {
    if (draining_) {
      response.send(503, json_headers(request_id), draining_health_json(*snapshot));
      return;
    }
    response.send(200, json_headers(request_id), health_json(*snapshot));
  } else if (path == "/_fn/functions") {
    response.send(200, json_headers(request_id), functions_json(*snapshot));
  } else if (path == "/_fn/metrics") {
    std::string text = metrics_text(*snapshot);
    if (store_)
      append_queue_metrics(text, store_->counts(), calls_->counters(), unix_now_ms());
    response.send(200, {{"Content-Type", "text/plain; version=0.0.4; charset=utf-8"},
                        {"X-Fn-Request-Id", request_id}},
                  text);
  } else {
    send_error(response, Error{Error::Code::kNotFound, "no such endpoint"}, "", request_id);
  }
}

bool Server::admin_allowed(const common::ClientRequest& request, common::ClientResponse& response,
                           const std::string& request_id) {
  if (console_remote_ || is_loopback_peer(request.peer())) return true;
  send_error(response, Error{Error::Code::kForbidden, "the console and /_fn/reload answer loopback "
                                                      "clients only (FN_CONSOLE_REMOTE=1 opens them)"},
             "", request_id);
  return false;
}

void Server::serve_reload(common::ClientRequest& request, common::ClientResponse& response,
                          const std::string& request_id) {
  if (!reload_) {
    send_error(response, Error{Error::Code::kNotFound, "no such endpoint"}, "", request_id);
    return;
  }
  if (!admin_allowed(request, response, request_id)) return;
  if (request.method() != "POST") {
    send_error(response, Error{Error::Code::kMethodNotAllowed, "method not allowed"}, "",
               request_id, {{"Allow", "POST"}});
    return;
  }
  if (std::string refused = reload_(); !refused.empty()) {
    send_error(response,
               Error{Error::Code::kInternal,
                     "reload refused, the running configuration is kept: " + refused},
               "", request_id);
    return;
  }
  response.send(200, json_headers(request_id), functions_json(*registry_.current()));
}

void Server::serve_console(common::ClientRequest& request, common::ClientResponse& response,
                           const std::string& request_id) {
  if (console_dir_.empty()) {
    send_error(response, Error{Error::Code::kNotFound, "the console is not installed"}, "", request_id);
    return;
  }
  if (!admin_allowed(request, response, request_id)) return;
  if (request.method() != "GET" && request.method() != "HEAD") {
    send_error(response, Error{Error::Code::kMethodNotAllowed, "method not allowed"}, "",
               request_id, {{"Allow", "GET, HEAD"}});
    return;
  }
  if (request.path() == "/console") {
    response.send(301, {{"Location", "/console/"}, {"X-Fn-Request-Id", request_id}}, "");
    return;
  }
  auto path = resolve_asset_path(request.path().substr(std::string_view("/console").size()), {});
  if (!path) {
    send_error(response, path.error(), "", request_id);
    return;
  }
  auto served = serve_asset(console_dir_, *path, request, response,
                            {{"X-Fn-Request-Id", request_id}, {"Cache-Control", "no-cache"}});
  if (served && *served) return;
  Error error = served ? Error{Error::Code::kNotFound, "no such console file"} : served.error();
  if (!response.started()) send_error(response, error, "", request_id);
}

bool is_loopback_peer(const common::PeerInfo& peer) noexcept {
  const std::string& host = peer.remote_host;
  return peer.unix_socket || host.starts_with("127.") || host == "::1" ||
         host.starts_with("::ffff:127.");
}

void Server::send_error(common::ClientResponse& response, const Error& error,
                        std::string_view function, const std::string& request_id,
                        protocol::Headers extra_headers, protocol::Headers extra_fields) {
  if (error.code == Error::Code::kClientGone) {
    response.abort();
    return;
  }
  int status = common::http_status(error.code);
  auto headers = json_headers(request_id);
  headers.insert(headers.end(), extra_headers.begin(), extra_headers.end());
  if ((status == 503 || status == 429) && !protocol::find_header(headers, "Retry-After"))
    headers.push_back({"Retry-After", "1"});
  response.send(status, std::move(headers),
                common::error_json(error.context, function, request_id, extra_fields));
}

}  // namespace gateway
