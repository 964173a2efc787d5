#include "watchdog/request_info.h"

#include "protocol/http_message.h"

namespace watchdog {
namespace {

// The prefix counts only when it is a whole leading segment of the path.
std::string script_name(const common::ClientRequest& request) {
  std::string_view prefix = protocol::header_value(request.head().headers, "X-Forwarded-Prefix");
  while (!prefix.empty() && prefix.back() == '/') prefix.remove_suffix(1);
  std::string_view path = request.path();
  if (prefix.empty() || !path.starts_with(prefix)) return "";
  if (path.size() > prefix.size() && path[prefix.size()] != '/') return "";
  return std::string(prefix);
}

// The last hop of X-Forwarded-For: the address the gateway saw.
std::string forwarded_for(const common::ClientRequest& request) {
  std::string_view value = protocol::header_value(request.head().headers, "X-Forwarded-For");
  auto comma = value.rfind(',');
  if (comma != std::string_view::npos) value.remove_prefix(comma + 1);
  while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  return std::string(value);
}

}  // namespace

RequestInfo request_info(const common::ClientRequest& request, const common::Address& listen) {
  RequestInfo info;
  info.script_name = script_name(request);
  std::string_view host = protocol::header_value(request.head().headers, "Host");
  auto colon = host.rfind(':');
  bool has_port = colon != std::string_view::npos && host.find(']', colon) == std::string_view::npos;
  info.server_name = std::string(has_port ? host.substr(0, colon) : host);
  if (has_port) info.server_port = std::string(host.substr(colon + 1));
  if (info.server_name.empty())
    info.server_name = listen.kind == common::Address::Kind::kTcp ? listen.host : "localhost";
  if (info.server_port.empty())
    info.server_port = listen.kind == common::Address::Kind::kTcp ? std::to_string(listen.port) : "80";
  if (request.peer().unix_socket) {
    // Only processes of our own user can reach a 0600 socket: the gateway's header is trusted.
    info.remote_addr = forwarded_for(request);
    if (info.remote_addr.empty()) info.remote_addr = "127.0.0.1";
  } else {
    info.remote_addr = request.peer().remote_host;
    info.remote_port = request.peer().remote_port;
  }
  return info;
}

}  // namespace watchdog
