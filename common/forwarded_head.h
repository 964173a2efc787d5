// The request head a proxy sends on for a client's request: the gateway to a watchdog, a watchdog
// to an app server (format server). The client's request line and end-to-end headers, X-Forwarded-*
// for the hop, the request id, and the body's framing.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/http_exchange.h"
#include "common/upstream_exchange.h"

namespace common {

struct ForwardedHead {
  std::string_view request_id;
  std::string_view prefix;  // the matched route, sent as X-Forwarded-Prefix; "" or "/" for none
  // The client is a proxy of ours (the gateway before a watchdog): its X-Forwarded-Proto, -Host,
  // -Prefix and X-Fn-Params stand. Otherwise they are the edge's to set, and a client's own are
  // dropped.
  bool trust_forwarded = false;
  // The body was read whole first (its length then framed as Content-Length).
  std::optional<std::uint64_t> held_length;
  // The request target sent on; "" for the client's.
  std::string_view target = {};
  // The matched route's parameters as a JSON object ({"id": "7"}), sent as X-Fn-Params; "" for
  // none.
  std::string_view route_params = {};
};

std::string forwarded_request_head(const ClientRequest& request, const ForwardedHead& forwarded);

// How the client's body follows the head when it is not held: as it is, or re-framed as chunks.
RequestBody forwarded_body(const ClientRequest& request);

}  // namespace common
