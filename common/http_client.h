// A blocking HTTP/1.1 client for the requests the gateway makes itself: the runs of queued calls
// through its own edge (over a socketpair) and the deliveries to X-Callback-Url. One request per
// connection (Connection: close), bounded by one deadline; the reply's body is kept up to a limit
// and the rest read and dropped, so a large answer neither stalls its sender nor fills memory.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"
#include "protocol/http_message.h"

namespace common {

struct HttpReply {
  int status = 0;
  protocol::Headers headers;
  std::string body;        // at most the body limit
  bool truncated = false;  // more followed, and was dropped
};

// The bytes of a request with a Content-Length body: the request line, `headers` (any framing and
// Connection headers of theirs replaced), Host when `headers` lack it, and Connection: close.
std::string request_bytes(std::string_view method, std::string_view target,
                          const protocol::Headers& headers, std::string_view host,
                          std::string_view body);

// Writes `request` on the connected non-blocking socket `fd`, then reads the reply to its end
// (skipping interim 1xx replies). kTimeout past `deadline`; kBadGateway for a reply that breaks
// HTTP or a connection closed before the reply was whole.
Result<HttpReply> round_trip(int fd, std::string_view request, std::string_view method,
                             std::chrono::steady_clock::time_point deadline,
                             std::size_t body_limit);

// "http://host[:port][/path?query]": pure. nullopt for another scheme or a malformed URL.
struct HttpUrl {
  std::string host;  // a name or an IP literal (IPv6 without its brackets)
  std::uint16_t port = 80;
  std::string target;  // "/" at least
  std::string authority;  // the Host header's value, as written in the URL
};
std::optional<HttpUrl> parse_http_url(std::string_view url);

// Connects to `url` and makes one request, all within `timeout`. kUnavailable when the connection
// fails.
Result<HttpReply> send_request(const HttpUrl& url, std::string_view method,
                               const protocol::Headers& headers, std::string_view body,
                               std::chrono::milliseconds timeout, std::size_t body_limit);

}  // namespace common
