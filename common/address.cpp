#include "common/address.h"

#include "common/units.h"

namespace common {
namespace {

std::optional<std::uint16_t> parse_port(std::string_view text) {
  auto value = parse_whole(text, 0, 65535);
  if (!value) return std::nullopt;
  return static_cast<std::uint16_t>(*value);
}

std::optional<Address> parse_tcp(std::string_view text, std::string* error) {
  std::size_t colon = text.rfind(':');
  if (colon == std::string_view::npos) {
    if (error) *error = "expected HOST:PORT or :PORT";
    return std::nullopt;
  }
  std::string_view host = text.substr(0, colon);
  if (host.size() >= 2 && host.front() == '[' && host.back() == ']')
    host = host.substr(1, host.size() - 2);
  auto port = parse_port(text.substr(colon + 1));
  if (!port) {
    if (error) *error = "expected a port number 0..65535 after the last ':'";
    return std::nullopt;
  }
  Address address;
  address.host = std::string(host);
  address.port = *port;
  return address;
}

}  // namespace

std::string Address::to_string() const {
  if (kind == Kind::kUnix) return "unix:" + path;
  bool v6 = host.find(':') != std::string::npos;
  return "tcp:" + (v6 ? "[" + host + "]" : host) + ":" + std::to_string(port);
}

std::optional<Address> parse_address(std::string_view text, std::string* error) {
  if (text.starts_with("unix:")) {
    std::string_view path = text.substr(5);
    if (path.empty()) {
      if (error) *error = "expected a socket path after unix:";
      return std::nullopt;
    }
    Address address;
    address.kind = Address::Kind::kUnix;
    address.path = std::string(path);
    return address;
  }
  if (text.starts_with("tcp:")) text.remove_prefix(4);
  return parse_tcp(text, error);
}

}  // namespace common
