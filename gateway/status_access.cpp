#include "gateway/status_access.h"

#include <arpa/inet.h>

#include <algorithm>
#include <cctype>

namespace gateway {
namespace {

std::string lower(std::string_view text) {
  std::string out(text);
  std::transform(out.begin(), out.end(), out.begin(),
                 [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return out;
}

bool is_ip_literal(const std::string& host) {
  unsigned char address[16];
  return ::inet_pton(AF_INET, host.c_str(), address) == 1 ||
         ::inet_pton(AF_INET6, host.c_str(), address) == 1;
}

// Compares in time independent of where the texts differ, so the token cannot be found byte by
// byte from response times.
bool same_secret(std::string_view a, std::string_view b) {
  unsigned char differ = a.size() == b.size() ? 0 : 1;
  for (std::size_t i = 0; i < a.size(); ++i)
    differ |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
  return differ == 0;
}

std::string_view bearer_of(std::string_view authorization) {
  constexpr std::string_view kScheme = "bearer ";
  if (authorization.size() <= kScheme.size() ||
      lower(authorization.substr(0, kScheme.size())) != kScheme)
    return {};
  std::string_view token = authorization.substr(kScheme.size());
  while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
  while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
  return token;
}

}  // namespace

std::string host_of(std::string_view host_header) {
  std::string_view host = host_header;
  if (host.starts_with('[')) {
    auto close = host.find(']');
    return lower(host.substr(1, close == std::string_view::npos ? host.size() - 1 : close - 1));
  }
  if (auto colon = host.rfind(':'); colon != std::string_view::npos) host = host.substr(0, colon);
  if (host.ends_with('.')) host.remove_suffix(1);  // "localhost." is localhost
  return lower(host);
}

bool known_host(const StatusAccess& access, std::string_view host) {
  std::string name(host);
  // A name a page's own domain cannot be: an address (a rebinding page's requests carry its
  // domain's name, never an address) or a loopback name, which resolvers keep on this machine.
  if (name.empty() || is_ip_literal(name) || name == "localhost" || name.ends_with(".localhost"))
    return true;
  return std::find(access.hosts.begin(), access.hosts.end(), name) != access.hosts.end();
}

StatusVerdict status_verdict(const StatusAccess& access, StatusScope scope, bool loopback_peer,
                             bool unix_peer, std::string_view host_header,
                             std::string_view authorization) {
  using Kind = StatusVerdict::Kind;
  std::string_view offered = bearer_of(authorization);
  // A page in a browser cannot know the token, so a request that carries it needs no Host check.
  if (!access.token.empty() && !offered.empty()) {
    if (same_secret(offered, access.token)) return {};
    return {Kind::kUnauthorized, "the bearer token is not FN_STATUS_TOKEN"};
  }
  // No browser reaches a unix socket; an HTTP/1.0 client may send no Host at all.
  if (!unix_peer && !host_header.empty() && !known_host(access, host_of(host_header)))
    return {Kind::kForbidden, "the Host header does not name this gateway (FN_STATUS_HOSTS adds "
                              "names to the addresses and loopback names it answers to)"};
  if (loopback_peer || unix_peer) return {};
  if (scope == StatusScope::kRead ? access.remote_reads : access.remote_admin) return {};
  if (!access.token.empty())
    return {Kind::kUnauthorized, "the gateway's own endpoints need Authorization: Bearer "
                                 "FN_STATUS_TOKEN from a non-loopback client"};
  return {Kind::kForbidden,
          scope == StatusScope::kRead
              ? "the gateway's own endpoints answer loopback clients only (FN_STATUS_REMOTE=1 or "
                "FN_STATUS_TOKEN opens them)"
              : "the console, /_fn/logs and /_fn/reload answer loopback clients only "
                "(FN_CONSOLE_REMOTE=1 or FN_STATUS_TOKEN opens them)"};
}

std::vector<std::string> parse_status_hosts(std::string_view text) {
  std::vector<std::string> hosts;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find_first_of(", ", start);
    if (end == std::string_view::npos) end = text.size();
    if (end > start) hosts.push_back(host_of(text.substr(start, end - start)));
    start = end + 1;
  }
  return hosts;
}

}  // namespace gateway
