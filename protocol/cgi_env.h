// Builds the environment of a CGI program (RFC 3875 section 4.1) plus the names OpenFaaS's classic
// watchdog users rely on (Http_Method, Http_Path, Http_Query, Http_<Header>) and X_FN_REQUEST_ID.
// Pure: the caller passes in everything, including its own environment.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/http_message.h"

namespace protocol {

struct CgiRequest {
  std::string_view method;
  std::string_view target;        // the request-target: path, optionally "?query"
  std::string_view script_name;   // the route prefix (X-Forwarded-Prefix), "" on a lone watchdog
  std::string_view server_protocol = "HTTP/1.1";
  std::string_view server_software = "fastfn";
  std::string_view server_name;   // from Host without its port, else the listen address
  std::string_view server_port;
  std::string_view remote_addr;
  std::string_view remote_port;
  std::string_view request_id;
  const Headers* headers = nullptr;  // must outlive the call
  bool has_body = false;             // CONTENT_LENGTH is set only for a body (RFC 3875 4.1.2)
  std::uint64_t content_length = 0;
  // OpenFaaS's Http_* variables (its classic watchdog's cgi_headers): the request's headers,
  // Http_Method, Http_Path, Http_Query. The RFC 3875 variables are there either way.
  bool openfaas_variables = true;
};

// True when a header name may become an environment variable: only [A-Za-z0-9-] and not empty.
bool is_safe_env_header(std::string_view name) noexcept;

// "X-Forwarded-For" -> "HTTP_X_FORWARDED_FOR" (uppercase) or "Http_X_Forwarded_For" (OpenFaaS case).
std::string cgi_header_variable(std::string_view name);
std::string openfaas_header_variable(std::string_view name);

// Returns "NAME=value" entries: `base` first (the process environment and per-function env), with
// every entry whose name this request sets removed, then the request's variables. The request always
// wins, so neither a client nor a config can override a meta-variable. Headers with unsafe names are
// dropped and Proxy never becomes HTTP_PROXY or Http_Proxy (httpoxy). As RFC 3875 4.1.18 says,
// Content-Type and Content-Length appear as CONTENT_TYPE / CONTENT_LENGTH, not HTTP_*; the OpenFaaS
// names (Http_Content_Type, Http_Content_Length) are kept because its users read them. Authorization
// is passed (HTTP_AUTHORIZATION, Http_Authorization): the function is the party the client addressed.
std::vector<std::string> build_cgi_env(const CgiRequest& request,
                                       const std::vector<std::string>& base);

// Splits a request-target into path and query (without the '?'); a target of "*" or an absolute URL
// yields its path part.
struct TargetParts {
  std::string_view path;
  std::string_view query;
};
TargetParts split_target(std::string_view target) noexcept;

// PATH_INFO for `path` under the route prefix `script_name`: the rest of the path after the prefix,
// "" when they are equal. REQUIRES: path starts with script_name (the caller routed on it).
std::string_view path_info(std::string_view path, std::string_view script_name) noexcept;

}  // namespace protocol
