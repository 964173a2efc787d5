// What a CGI program is told about the request beyond its head: the route prefix the gateway
// matched (X-Forwarded-Prefix becomes SCRIPT_NAME), the server's name and port, and the client's
// address (behind the gateway on a private unix socket, the X-Forwarded-For it set).
#pragma once

#include <string>

#include "common/address.h"
#include "common/http_exchange.h"

namespace watchdog {

struct RequestInfo {
  std::string script_name;
  std::string server_name;
  std::string server_port;
  std::string remote_addr;
  std::string remote_port;
};

RequestInfo request_info(const common::ClientRequest& request, const common::Address& listen);

}  // namespace watchdog
