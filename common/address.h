// Listen and connect addresses in the forms DESIGN.md accepts: "unix:/path.sock", "tcp:HOST:PORT",
// "HOST:PORT" and ":PORT" (every interface). Pure parsing; sockets are made elsewhere.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace common {

struct Address {
  enum class Kind { kUnix, kTcp };
  Kind kind = Kind::kTcp;
  std::string path;  // kUnix: an absolute or relative filesystem path
  std::string host;  // kTcp: "" for every interface, an IPv4/IPv6 literal or a name
  std::uint16_t port = 0;

  // "unix:/run/x.sock" or "tcp:127.0.0.1:8080": the canonical form, parseable again.
  std::string to_string() const;
};

// Parses an address; nullopt with `error` set to what was expected when it is malformed.
std::optional<Address> parse_address(std::string_view text, std::string* error = nullptr);

}  // namespace common
