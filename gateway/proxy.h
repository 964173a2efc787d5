// Forwards one request to a function's watchdogs: round robin over the sockets that are up, a
// pooled keep-alive connection per socket, the request streamed in and the response streamed out
// through common/upstream_exchange. A socket that refuses the connection is marked down and the
// next one is tried (nothing was sent); a request that was sent is never replayed.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/error.h"
#include "common/http_exchange.h"
#include "gateway/function_runtime.h"

namespace gateway {

struct ProxyContext {
  std::string_view request_id;
  std::string_view prefix;  // the matched route, sent as X-Forwarded-Prefix; "" for "/"
  std::chrono::steady_clock::time_point deadline;
  std::string_view params = {};  // the route's parameters as JSON, sent as X-Fn-Params; "" for none
};

// Serves `request` through `function`. On error the response is untouched when it had not started
// (the caller sends the error) and aborted when it had. kUnavailable: every socket is down.
common::Status proxy_request(FunctionRuntime& function, common::ClientRequest& request,
                             common::ClientResponse& response, const ProxyContext& context);

// The head sent to a watchdog: the client's request line and end-to-end headers, with
// X-Forwarded-For/-Proto/-Host/-Prefix and X-Fn-Request-Id set by the gateway.
std::string upstream_head(const common::ClientRequest& request, const ProxyContext& context);

}  // namespace gateway
