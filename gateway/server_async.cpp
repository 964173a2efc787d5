// The queue's endpoints of the gateway's edge (server.h): POST /async-function/... answers 202 once
// the call is committed, GET /_fn/calls/ID[/result] reports it.
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "common/http_client.h"
#include "gateway/call_report.h"
#include "gateway/server.h"

namespace gateway {
namespace {

using common::Error;

// Headers the function must not get from the queue as the client sent them: X-Call-Id is the
// queue's, X-Fn-Params the gateway's own (set again at the run).
bool kept_header(std::string_view name) {
  return !protocol::iequals(name, "X-Call-Id") && !protocol::iequals(name, "X-Fn-Params");
}

// Paths the edge answers before any route: a function routed at "/" matches them too, but its
// queued call would reach the status endpoints or the console, replayed from inside the gateway
// (which they trust as a local client), never the function.
bool answered_by_the_edge(std::string_view path) {
  for (std::string_view own : {"/_fn", "/console", "/async-function"})
    if (path == own || (path.starts_with(own) && path[own.size()] == '/')) return true;
  return false;
}

std::string queued_json(const std::string& id, const std::string& function) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  w.StartObject();
  w.Key("call_id");
  w.String(id.c_str());
  w.Key("function");
  w.String(function.c_str());
  w.Key("status");
  w.String("queued");
  w.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

}  // namespace

void Server::serve_enqueue(common::ClientRequest& request, common::ClientResponse& response,
                           const std::string& request_id) {
  if (!store_) {
    send_error(response, Error{Error::Code::kNotFound, "asynchronous calls are off"}, "",
               request_id);
    return;
  }
  // "/async-function/hello/x" is the call of "/hello/x".
  std::string_view path = request.path().substr(kAsyncPrefix.size() - 1);
  auto snapshot = registry_.current();
  auto match = path.size() > 1 && !answered_by_the_edge(path)
                   ? snapshot->routes.match(path, request.method())
                   : std::nullopt;
  if (!match) {
    send_error(response, Error{Error::Code::kNotFound, "no function serves this path"}, "",
               request_id);
    return;
  }
  FunctionRuntime& function = *snapshot->functions[match->function_index];
  const std::string& name = function.spec.name;
  if (!match->method_allowed) {
    send_error(response, Error{Error::Code::kMethodNotAllowed, "method not allowed"}, name,
               request_id, {{"Allow", match->allow}});
    return;
  }
  NewCall call;
  call.id = std::string(protocol::header_value(request.head().headers, "X-Call-Id"));
  if (call.id.empty()) call.id = common::new_request_id();
  if (!common::is_sane_id(call.id)) {
    send_error(response,
               Error{Error::Code::kBadRequest,
                     "X-Call-Id: expected 1 to 128 letters, digits, '-', '_' or '.'"},
               name, request_id);
    return;
  }
  call.callback_url = std::string(protocol::header_value(request.head().headers, "X-Callback-Url"));
  if (!call.callback_url.empty() && !common::parse_http_url(call.callback_url)) {
    send_error(response,
               Error{Error::Code::kBadRequest,
                     "X-Callback-Url: expected an http:// URL, got \"" + call.callback_url + "\""},
               name, request_id);
    return;
  }
  auto length = request.content_length();
  if (length && *length > function.max_body()) response.close_after();  // the body stays unread
  auto body = request.read_whole_body(function.max_body());
  if (!body) {
    if (body.error().code == Error::Code::kBodyTooLarge)
      body.error().context = "request body is over max_body_bytes (" +
                             std::to_string(function.max_body()) + ")";
    send_error(response, body.error(), name, request_id);
    return;
  }
  call.function = name;
  call.method = std::string(request.method());
  std::string_view target = request.target();
  std::size_t query = target.find('?');
  call.target = std::string(path) + std::string(query == target.npos ? "" : target.substr(query));
  for (const auto& header : request.head().headers)
    if (kept_header(header.name)) call.headers.push_back(header);
  call.headers.push_back({"X-Call-Id", call.id});
  call.body = std::move(*body);
  call.now_ms = unix_now_ms();
  auto queued = store_->enqueue(call);
  if (!queued && queued.error().code == Error::Code::kBadRequest) {
    // The client sent this id again (a retry of its own POST): the call is queued once.
    auto existing = store_->get(call.id);
    if (!existing || existing->call.function != name) {
      Error taken{Error::Code::kBadRequest, "X-Call-Id is taken by a call of another function"};
      send_error(response, taken, name, request_id);
      return;
    }
  } else if (!queued) {
    send_error(response, queued.error(), name, request_id);
    return;
  }
  calls_->queued(name);
  response.send(202,
                {{"Content-Type", "application/json"},
                 {"X-Fn-Request-Id", request_id},
                 {"X-Call-Id", call.id},
                 {"Location", "/_fn/calls/" + call.id}},
                queued_json(call.id, name));
}

void Server::serve_call(std::string_view rest, common::ClientResponse& response,
                        const std::string& request_id) {
  bool result = rest.ends_with("/result");
  std::string id(result ? rest.substr(0, rest.size() - 7) : rest);
  auto call = store_ && common::is_sane_id(id) ? store_->get(id) : std::nullopt;
  if (!call) {
    send_error(response, Error{Error::Code::kNotFound, "no such call"}, "", request_id);
    return;
  }
  if (!result) {
    response.send(200, {{"Content-Type", "application/json"}, {"X-Fn-Request-Id", request_id}},
                  call_json(*call));
    return;
  }
  if (call->state != CallState::kDone && call->state != CallState::kFailed) {
    response.send(409, {{"Content-Type", "application/json"}, {"X-Fn-Request-Id", request_id}},
                  common::error_json("the call has not finished", call->call.function,
                                     request_id,
                                     {{"status", call_state_name(call->state)}}));
    return;
  }
  protocol::Headers headers{{"X-Fn-Request-Id", request_id},
                            {"X-Call-Id", call->call.id},
                            {"X-Function-Status", std::to_string(call->status)}};
  if (call->exit_code)
    headers.push_back({"X-Fn-Exit-Code", std::to_string(*call->exit_code)});
  if (!call->content_type.empty()) headers.push_back({"Content-Type", call->content_type});
  if (call->result_truncated) headers.push_back({"X-Result-Truncated", "1"});
  response.send(200, std::move(headers), call->result);
}

}  // namespace gateway
