// One HTTP/1.1 round trip with an upstream that is not the client: a hot handler's stdin/stdout
// pipes, or a watchdog's socket behind the gateway. It writes the request (a head the caller framed,
// then the client's body streamed as it arrives) while it parses the response with protocol/ and
// relays it to the client, so neither direction can fill a buffer and stall the other.
//
// A response with a Content-Length up to hold_limit is held until complete, so that bytes after it
// (garbage) can still make it a 502 and the head and body leave in one send; a chunked or larger
// response streams as it arrives (server-sent events work), its trailers passed on.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"
#include "common/http_exchange.h"
#include "common/pipe_order.h"
#include "protocol/http_message.h"

namespace common {

// How the client's body follows the head.
enum class RequestBody {
  kNone,      // no body (or it is already appended to the head)
  kAsIs,      // the client's Content-Length body, streamed byte for byte
  kChunked,   // the client's body (whatever its framing) re-framed as chunks
};

// The state of the upstream channel after the exchange: may it carry another request?
enum class UpstreamState {
  kReusable,   // the whole request went, the whole response came, nothing more
  kClosing,    // the response is whole and good, but the upstream said it closes after it
               // (Connection: close, or HTTP/1.0 without keep-alive): it carries no other request
  kOutOfStep,  // the response is whole, but bytes followed it or the request was not all read
  kClosed,     // the upstream closed or failed before its response was complete
  kBroken,     // its response broke the HTTP rules
  kTimedOut,   // the deadline passed
  kAbandoned,  // the client went away (or sent a bad body) mid-exchange
};

struct UpstreamRequest {
  std::string head;  // request line, headers, blank line; and, with RequestBody::kNone, any body
  RequestBody body = RequestBody::kNone;
  std::string_view method;  // the client's, for the response framing (HEAD has no body)
  std::uint64_t max_body = UINT64_MAX;
  std::chrono::steady_clock::time_point deadline;
  std::size_t hold_limit = 64 * 1024;
  // Added to the upstream's response headers (X-Fn-Request-Id, debug headers); a header of the same
  // name from the upstream is replaced. Hop-by-hop headers of the upstream are always dropped.
  protocol::Headers response_headers;
  // Called once the upstream's part is over and it is known to be reusable or not (`detail` says
  // why not), before the last bytes go to the client (all of a held response), so that a hot
  // handler can serve the next request while this one's client still reads. Not called when the
  // exchange fails before that.
  std::function<void(UpstreamState state, std::string_view detail)> upstream_done;
  // A body already held whole, written after the head (with RequestBody::kNone). Must outlive the
  // exchange.
  std::string_view held_body = {};
  // When set, X-Fn-Latency-Ms (FastFN's debug header) is added too: the milliseconds from then to
  // the upstream's response head.
  std::optional<std::chrono::steady_clock::time_point> latency_since = std::nullopt;
};

struct UpstreamResult {
  Status status;  // ok, or the error for the client (the response was aborted if it had started)
  UpstreamState state = UpstreamState::kReusable;
  bool response_started = false;  // any response byte arrived from the upstream
  // The upstream refused the request's bytes (EPIPE), reset the connection with them unread
  // (ECONNRESET: the kernel's word that they were never read), or answered while all of them were
  // still in its pipe (a stale answer), as opposed to a close after reading them. Only then may
  // the request go to another upstream.
  bool request_unread = false;
  std::string detail;             // for the log: what broke, and the first bytes it sent
};

struct UpstreamChannel {
  int write_fd;  // non-blocking; where the request goes
  int read_fd;   // non-blocking; where the response comes from (may equal write_fd)
  // The channel's one reader: bytes read and not yet consumed stay here for its whole life.
  // Must outlive the exchange.
  std::string& buffer;
  // write_fd is a pipe (a hot handler's stdin), whose unread bytes the kernel can count: a response
  // that starts while none of the request was read answers an earlier request, and one that ends
  // with request bytes still unread leaves them for the next request. Both put the channel out of
  // step. So that a buffered reader cannot pull a body it then ignores out of the pipe together with
  // the head, a body is written only once the head has been read. A socket cannot tell; its peer
  // is a watchdog, which reads exactly.
  bool pipe = false;
  // With a pipe: the order of the process's reads and writes (nullptr without inotify, leaving the
  // unread-byte counts alone to judge). Must outlive the exchange.
  PipeOrder* order = nullptr;
};

// Runs the exchange. `client`/`response` must outlive the call.
UpstreamResult exchange_with_upstream(const UpstreamChannel& channel, const UpstreamRequest& request,
                                      ClientRequest& client, ClientResponse& response);

}  // namespace common
