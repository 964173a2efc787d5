// Who may read the gateway's own endpoints (/_fn/* and /console/). They tell which functions exist,
// their errors, logs and call results, so by default only this machine may read them: a unix
// socket or loopback peer. FN_STATUS_REMOTE=1 opens the reads to every peer, FN_CONSOLE_REMOTE=1
// the console and POST /_fn/reload too (the console's page reads /_fn/*), and a request with
// `Authorization: Bearer FN_STATUS_TOKEN` is let in from anywhere. A browser page could still read
// a loopback gateway through DNS rebinding (its own name resolved to 127.0.0.1), so the Host header
// must name this gateway: an IP literal, a loopback name, this machine's hostname, or one of
// FN_STATUS_HOSTS. Pure.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace gateway {

struct StatusAccess {
  bool remote_reads = false;  // FN_STATUS_REMOTE=1 (or FN_CONSOLE_REMOTE=1)
  bool remote_admin = false;  // FN_CONSOLE_REMOTE=1: the console, /_fn/logs, POST /_fn/reload
  std::string token;          // FN_STATUS_TOKEN; "" for none
  // Host names (no port) the gateway answers to besides IP literals and loopback names:
  // this machine's hostname and FN_STATUS_HOSTS, lower case.
  std::vector<std::string> hosts;
};

enum class StatusScope { kRead, kAdmin };

struct StatusVerdict {
  enum class Kind { kAllowed, kForbidden, kUnauthorized } kind = Kind::kAllowed;
  std::string reason;  // for the client, when not allowed
};

// The host part of a Host header value, lower case, without its port or IPv6 brackets.
std::string host_of(std::string_view host_header);

// True when `host` (from host_of) may name this gateway.
bool known_host(const StatusAccess& access, std::string_view host);

// `host_header` and `authorization` as the request has them ("" when absent).
StatusVerdict status_verdict(const StatusAccess& access, StatusScope scope, bool loopback_peer,
                             bool unix_peer, std::string_view host_header,
                             std::string_view authorization);

// FN_STATUS_HOSTS: names separated by commas or spaces, lower-cased. Pure.
std::vector<std::string> parse_status_hosts(std::string_view text);

}  // namespace gateway
