// The gateway's HTTP edge: /_fn/ status endpoints and the reserved /console/, then static assets
// (before routing, or after it with run_worker_first), then routing (404),
// methods (405 with Allow), body size (413), worker_pool admission (429/503 with Retry-After), and
// the proxy. Every response carries X-Fn-Request-Id; errors are DESIGN.md's JSON; one access line
// and the metrics per request.
#pragma once

#include <atomic>
#include <chrono>
#include <functional>
#include <string>

#include "common/error.h"
#include "common/http_exchange.h"
#include "gateway/async_calls.h"
#include "gateway/call_queue.h"
#include "gateway/function_logs.h"
#include "gateway/registry.h"

namespace gateway {

// Where asynchronous calls are queued: POST /async-function/NAME[/rest] (OpenFaaS's path).
inline constexpr std::string_view kAsyncPrefix = "/async-function/";

// The console is for the person at this machine: true for a unix socket or a loopback address.
bool is_loopback_peer(const common::PeerInfo& peer) noexcept;

class Server {
 public:
  // `registry` must outlive the server.
  explicit Server(const Registry& registry) : registry_(registry) {}

  // Serves /console/ from `dir` (the page's files); to loopback and unix-socket clients only unless
  // `remote` is set. Without a call, /console/ is 404. Call before requests arrive.
  void set_console(std::string dir, bool remote) {
    console_dir_ = std::move(dir);
    console_remote_ = remote;
  }

  // What POST /_fn/reload runs (what SIGHUP does): "" once reloaded, else why it was refused.
  using Reload = std::function<std::string()>;
  // Without a call, /_fn/reload is 404. Call before requests arrive. The endpoint answers the
  // clients the console answers (loopback and unix socket, unless `remote`).
  void set_reload(Reload reload) { reload_ = std::move(reload); }

  // POST /async-function/... queues calls in `store` and pokes `calls`; GET /_fn/calls/ID reports
  // them. Without a call, both are 404. Both must outlive the server. Call before requests arrive.
  void set_queue(CallQueue& store, AsyncCalls& calls) {
    store_ = &store;
    calls_ = &calls;
  }

  // GET /_fn/logs/NAME serves the functions' logs from `logs` (which must outlive the server);
  // without a call, it is 404. Call before requests arrive.
  void set_logs(FunctionLogs& logs) { logs_ = &logs; }

  // The request callback, on a connection thread. Never throws.
  void handle(common::ClientRequest& request, common::ClientResponse& response) noexcept;

  int in_flight() const noexcept { return in_flight_.load(); }
  // SIGTERM: /_fn/health answers 503 from now on (the connections close after their response:
  // HttpServer), and the followers of logs end.
  void begin_drain() noexcept {
    draining_ = true;
    if (logs_) logs_->close_all();
  }

 private:
  void serve_status(common::ClientRequest& request, common::ClientResponse& response,
                    const std::string& request_id);
  void serve_console(common::ClientRequest& request, common::ClientResponse& response,
                     const std::string& request_id);
  void serve_reload(common::ClientRequest& request, common::ClientResponse& response,
                    const std::string& request_id);
  // server_async.cpp: the queue's endpoints.
  void serve_enqueue(common::ClientRequest& request, common::ClientResponse& response,
                     const std::string& request_id);
  void serve_call(std::string_view rest, common::ClientResponse& response,
                  const std::string& request_id);
  // server_logs.cpp: GET /_fn/logs/NAME[?lines=N&follow=1].
  void serve_logs(common::ClientRequest& request, common::ClientResponse& response,
                  const std::string& request_id);
  // Loopback and unix-socket peers, or every peer with FN_CONSOLE_REMOTE=1; else answers 403.
  bool admin_allowed(const common::ClientRequest& request, common::ClientResponse& response,
                     const std::string& request_id);
  // GET/HEAD from the assets dir; true when answered. `routed`: a function route matches, so a
  // refused path is left to it.
  bool serve_assets(const Snapshot& snapshot, bool routed, common::ClientRequest& request,
                    common::ClientResponse& response, const std::string& request_id);
  common::Status serve_function(FunctionRuntime& function, const RouteMatch& match,
                                common::ClientRequest& request, common::ClientResponse& response,
                                const std::string& request_id);
  void send_error(common::ClientResponse& response, const common::Error& error,
                  std::string_view function, const std::string& request_id,
                  protocol::Headers extra_headers = {}, protocol::Headers extra_fields = {});

  const Registry& registry_;
  std::atomic<int> in_flight_{0};
  std::atomic<bool> draining_{false};
  std::string console_dir_;
  bool console_remote_ = false;
  Reload reload_;
  CallQueue* store_ = nullptr;
  AsyncCalls* calls_ = nullptr;
  FunctionLogs* logs_ = nullptr;
};

}  // namespace gateway
