#include "watchdog/server.h"

#include <chrono>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "common/logging.h"
#include "common/process_metrics.h"
#include "common/units.h"
#include "protocol/http_parser.h"

namespace watchdog {
namespace {

using common::Error;
using Clock = std::chrono::steady_clock;

// RAII: a request counted in flight for as long as it is served.
class InFlight {
 public:
  explicit InFlight(std::atomic<int>& counter) : counter_(counter), count_(++counter) {}
  ~InFlight() { --counter_; }
  InFlight(const InFlight&) = delete;
  InFlight& operator=(const InFlight&) = delete;
  int count() const noexcept { return count_; }

 private:
  std::atomic<int>& counter_;
  int count_;
};

std::string status_json(bool ok, std::string_view ok_word, std::string_view reason) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  writer.StartObject();
  writer.Key("status");
  std::string_view status = ok ? ok_word : std::string_view("unavailable");
  writer.String(status.data(), static_cast<rapidjson::SizeType>(status.size()));
  if (!ok) {
    writer.Key("reason");
    writer.String(reason.data(), static_cast<rapidjson::SizeType>(reason.size()));
  }
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

std::int64_t unix_ms_now() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

protocol::Headers json_headers(const std::string& request_id) {
  return {{"Content-Type", "application/json"}, {"X-Fn-Request-Id", request_id}};
}

}  // namespace

Server::Server(const Options& options, Runner& runner) : options_(options), runner_(runner) {}

void Server::handle(common::ClientRequest& client, common::ClientResponse& reply) noexcept {
  static const auto log = common::logger("watchdog.server");
  auto start = Clock::now();
  try {
    std::string request_id = common::request_id_for(client.head().headers);
    if (client.path().starts_with("/_/")) {
      serve_reserved(client, reply, request_id);
      return;
    }
    reply.time_from(start);
    reply.on_complete([this, &reply, start] {
      metrics_.requests.inc(reply.started() ? reply.status() : 499);
      metrics_.latency.observe(std::chrono::duration<double>(Clock::now() - start).count());
    });
    auto served = serve_function(client, reply, request_id);
    if (!served && !reply.started()) send_error(reply, served.error(), request_id);
    else if (!served) reply.abort();
    if (!served) log->warn("request failed request_id={} error={} reason=\"{}\"", request_id,
                           common::code_name(served.error().code), served.error().context);
    log_access(client, reply, request_id, start);
  } catch (const std::exception& e) {
    log->error("request handler failed error=\"{}\"", e.what());
    reply.abort();
  }
}

common::Status Server::serve_function(common::ClientRequest& request,
                                      common::ClientResponse& response,
                                      const std::string& request_id) {
  InFlight in_flight(metrics_.in_flight);
  if (options_.max_inflight > 0 && in_flight.count() > options_.max_inflight)
    return common::fail(Error::Code::kTooBusy, "max-inflight reached");
  if (auto admitted = admit(request, response); !admitted) return admitted;
  auto timeout = common::effective_timeout(options_.exec_timeout);
  Invocation invocation{request, response, request_id, Clock::now() + timeout,
                        unix_ms_now() + timeout.count()};
  try {
    return runner_.serve(invocation);
  } catch (const std::system_error& e) {  // fd or process exhaustion while spawning
    return common::fail(Error::Code::kUnavailable, std::string("cannot start: ") + e.what());
  }
}

common::Status Server::admit(const common::ClientRequest& request,
                             common::ClientResponse& response) {
  auto length = request.content_length();
  if (length && *length > options_.max_body) {
    response.close_after();  // the body is not read: the connection cannot be reused
    return common::fail(Error::Code::kBodyTooLarge,
                        "request body of " + std::to_string(*length) + " bytes is over max-body (" +
                            std::to_string(options_.max_body) + ")");
  }
  return {};
}

void Server::send_error(common::ClientResponse& response, const Error& error,
                        const std::string& request_id) {
  int status = common::http_status(error.code);
  if (error.code == Error::Code::kClientGone) {
    response.abort();
    return;
  }
  auto headers = json_headers(request_id);
  if (status == 429 || status == 503) headers.push_back({"Retry-After", "1"});
  response.send(status, std::move(headers),
                common::error_json(error.context, options_.name, request_id));
}

void Server::serve_reserved(common::ClientRequest& request, common::ClientResponse& response,
                            const std::string& request_id) {
  std::string_view path = request.path();
  if (request.method() != "GET" && request.method() != "HEAD") {
    auto headers = json_headers(request_id);
    headers.push_back({"Allow", "GET, HEAD"});
    response.send(405, headers, common::error_json("method not allowed", options_.name, request_id));
    return;
  }
  if (path == "/_/health") {
    Health health = draining_ ? Health{false, "shutting down"} : runner_.health();
    response.send(health.ok ? 200 : 503, json_headers(request_id),
                  status_json(health.ok, "ok", health.reason));
  } else if (path == "/_/ready") {
    Health ready = draining_ ? Health{false, "shutting down"} : runner_.ready();
    int status = ready.ok ? 200 : 503;
    // 429 at the limit, as OpenFaaS's of-watchdog says it: busy, not broken.
    if (ready.ok && options_.max_inflight > 0 && in_flight() >= options_.max_inflight) {
      ready = {false, "max-inflight reached"};
      status = 429;
    }
    response.send(status, json_headers(request_id), status_json(ready.ok, "ready", ready.reason));
  } else if (path == "/_/metrics") {
    std::string text;
    metrics_.render(text, options_.name);
    runner_.render_metrics(text);
    common::append_process_metrics(text);
    response.send(200, {{"Content-Type", "text/plain; version=0.0.4; charset=utf-8"}}, text);
  } else {
    response.send(404, json_headers(request_id),
                  common::error_json("no such endpoint", options_.name, request_id));
  }
}

void Server::log_access(const common::ClientRequest& request,
                        const common::ClientResponse& response, const std::string& request_id,
                        Clock::time_point start) {
  static const auto log = common::logger("watchdog.access");
  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  int status = response.started() ? response.status() : 499;
  log->info("request method={} path={} function={} status={} ms={:.2f} bytes={} request_id={}",
            request.method(), request.path(), options_.name, status, seconds * 1000,
            response.body_bytes(), request_id);
}

}  // namespace watchdog
