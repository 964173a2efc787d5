#include "gateway/proxy.h"

#include "common/forwarded_head.h"
#include "common/logging.h"
#include "common/upstream_exchange.h"
#include "gateway/balancer.h"

namespace gateway {
namespace {

using common::Error;

constexpr std::chrono::milliseconds kConnectTimeout{1000};

protocol::Headers response_headers(const FunctionRuntime& function, std::size_t index,
                                   std::string_view request_id) {
  protocol::Headers headers{{"X-Fn-Request-Id", std::string(request_id)}};
  if (!function.spec.include_debug_headers) return headers;
  headers.push_back({"X-Fn-Runtime-Routing", function.routing()});
  headers.push_back({"X-Fn-Runtime-Socket-Index", std::to_string(index)});
  headers.push_back({"X-Fn-Function", function.spec.name});
  headers.push_back({"X-Fn-Runtime", function.spec.runtime});  // FastFN's
  return headers;
}

void log_outcome(const Upstream& upstream, const common::UpstreamResult& result,
                 std::string_view request_id) {
  static const auto log = common::logger("gateway.proxy");
  if (result.state == common::UpstreamState::kBroken || result.state == common::UpstreamState::kClosed)
    log->error("watchdog response broken function={} index={} request_id={} reason=\"{}\"",
               upstream.function(), upstream.index(), request_id, result.detail);
}

bool may_replay(const common::UpstreamResult& result, const common::ClientRequest& request) {
  return result.state == common::UpstreamState::kClosed && result.request_unread &&
         !result.response_started && request.body_bytes_read() == 0;
}

// A watchdog answers within the function's timeout (with a 504 at worst): one that had all of it
// and sent nothing is hung, and takes no new request until a probe hears from it again.
void mark_if_hung(Upstream& upstream, const FunctionRuntime& function,
                  const common::UpstreamResult& result, std::chrono::steady_clock::time_point sent_at) {
  if (result.state != common::UpstreamState::kTimedOut || result.response_started) return;
  auto waited = std::chrono::duration_cast<std::chrono::milliseconds>(
      std::chrono::steady_clock::now() - sent_at);
  if (waited < function.timeout()) return;  // the deadline was mostly spent queueing
  upstream.mark(Upstream::State::kDown,
                "no answer to a request within " + std::to_string(waited.count()) + " ms");
}

}  // namespace

std::string upstream_head(const common::ClientRequest& request, const ProxyContext& context) {
  return common::forwarded_request_head(
      request, {context.request_id, context.prefix, false, std::nullopt, {}, context.params});
}

common::Status proxy_request(FunctionRuntime& function, common::ClientRequest& request,
                             common::ClientResponse& response, const ProxyContext& context) {
  std::size_t count = std::min<std::size_t>(function.upstreams.size(), 64);
  std::size_t start = count ? function.cursor.fetch_add(1, std::memory_order_relaxed) % count : 0;
  std::uint64_t tried = 0;
  std::uint64_t retried = 0;  // sockets given a second chance on a fresh connection
  std::optional<common::Status> last_failure;
  std::string head = upstream_head(request, context);
  for (;;) {
    auto index = pick_round_robin(function.routable_mask(), tried, count, start);
    if (!index)
      return last_failure.value_or(common::fail(Error::Code::kUnavailable, function.unavailable_reason()));
    std::uint64_t bit = std::uint64_t{1} << *index;
    tried |= bit;
    Upstream& upstream = *function.upstreams[*index];
    auto connection = upstream.checkout(kConnectTimeout);
    if (!connection) continue;  // refused: nothing was sent, the next socket may serve it
    common::UpstreamRequest upstream_request{head, common::forwarded_body(request), request.method(),
                                             function.max_body(), context.deadline, 64 * 1024,
                                             response_headers(function, *index, context.request_id),
                                             {}};
    auto sent_at = std::chrono::steady_clock::now();
    if (function.spec.include_debug_headers) upstream_request.latency_since = sent_at;
    auto result = common::exchange_with_upstream(
        {connection->fd.get(), connection->fd.get(), connection->buffer}, upstream_request, request,
        response);
    if (may_replay(result, request)) {
      // The watchdog closed or died without reading the request: it cannot have run it, so it
      // goes elsewhere (a request the watchdog read is never sent twice). A kept-alive connection
      // gets one fresh connection to the same socket, since the watchdog may only have closed
      // that connection; a fresh one moves on to the next socket.
      log_outcome(upstream, result, context.request_id);
      last_failure = result.status;
      if (connection->reused && !(retried & bit)) {
        retried |= bit;
        tried &= ~bit;
        upstream.drop_idle();  // its other idle connections are as dead
      }
      continue;
    }
    log_outcome(upstream, result, context.request_id);
    mark_if_hung(upstream, function, result, sent_at);
    if (result.state == common::UpstreamState::kReusable) upstream.checkin(std::move(*connection));
    return result.status;
  }
}

}  // namespace gateway
