#include "common/forwarded_head.h"

#include "protocol/http_writer.h"

namespace common {
namespace {

// What the edge says about the request: a client's own would be believed by what is behind it.
bool is_forwarded_header(std::string_view name) {
  for (std::string_view own :
       {"X-Forwarded-Proto", "X-Forwarded-Host", "X-Forwarded-Prefix", "X-Fn-Params"})
    if (protocol::iequals(name, own)) return true;
  return false;
}

// Headers the proxy sets itself, or that describe the client's hop only.
bool replaced(std::string_view name, bool trust_forwarded) {
  for (std::string_view own : {"Content-Length", "X-Forwarded-For", "X-Fn-Request-Id", "Expect"})
    if (protocol::iequals(name, own)) return true;
  if (!trust_forwarded && is_forwarded_header(name)) return true;
  return protocol::is_hop_by_hop(name);
}

std::string forwarded_for(const ClientRequest& request) {
  std::string chain(protocol::header_value(request.head().headers, "X-Forwarded-For"));
  std::string client = request.peer().unix_socket ? "127.0.0.1" : request.peer().remote_host;
  return chain.empty() ? client : chain + ", " + client;
}

void add_unless_present(protocol::Headers& headers, std::string_view name, std::string value) {
  if (protocol::find_header(headers, name) == nullptr) headers.push_back({std::string(name), std::move(value)});
}

}  // namespace

std::string forwarded_request_head(const ClientRequest& request, const ForwardedHead& forwarded) {
  std::string_view target = forwarded.target.empty() ? request.target() : forwarded.target;
  protocol::RequestHead head{std::string(request.method()), std::string(target), 1, {}};
  for (const auto& header : request.head().headers)
    if (!replaced(header.name, forwarded.trust_forwarded)) head.headers.push_back(header);
  head.headers.push_back({"X-Forwarded-For", forwarded_for(request)});
  add_unless_present(head.headers, "X-Forwarded-Proto", "http");
  auto host = protocol::header_value(request.head().headers, "Host");
  if (!host.empty()) add_unless_present(head.headers, "X-Forwarded-Host", std::string(host));
  // The request goes on as HTTP/1.1, which needs a Host; an HTTP/1.0 client may have sent none.
  add_unless_present(head.headers, "Host", "localhost");
  if (!forwarded.prefix.empty() && forwarded.prefix != "/")
    add_unless_present(head.headers, "X-Forwarded-Prefix", std::string(forwarded.prefix));
  if (!forwarded.route_params.empty())
    add_unless_present(head.headers, "X-Fn-Params", std::string(forwarded.route_params));
  head.headers.push_back({"X-Fn-Request-Id", std::string(forwarded.request_id)});
  if (forwarded.held_length) {
    if (*forwarded.held_length > 0 || request.has_body())
      head.headers.push_back({"Content-Length", std::to_string(*forwarded.held_length)});
  } else if (auto length = request.content_length(); length && *length > 0) {
    head.headers.push_back({"Content-Length", std::to_string(*length)});
  } else if (request.has_body()) {
    head.headers.push_back({"Transfer-Encoding", "chunked"});
  }
  std::string out;
  protocol::append_request_head(out, head);
  return out;
}

RequestBody forwarded_body(const ClientRequest& request) {
  if (!request.has_body()) return RequestBody::kNone;
  return request.content_length() ? RequestBody::kAsIs : RequestBody::kChunked;
}

}  // namespace common
