// The HTTP/1.1 message model shared by the parser, the writers and the CGI helpers: heads as plain
// values, headers in arrival order with their original case. Pure data; no I/O.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace protocol {

struct Header {
  std::string name;
  std::string value;
};
using Headers = std::vector<Header>;

struct RequestHead {
  std::string method;
  std::string target;  // the request-target exactly as received (origin-form, absolute-form, ...)
  int version_minor = 1;
  Headers headers;
};

struct ResponseHead {
  int version_minor = 1;
  int status = 200;
  std::string reason;
  Headers headers;
};

// ASCII case-insensitive comparison, as header names and the chunked token require.
bool iequals(std::string_view a, std::string_view b) noexcept;

// Returns the first header named `name` (case-insensitive), or nullptr. The pointer is into `headers`
// and is valid until it is modified.
const Header* find_header(const Headers& headers, std::string_view name) noexcept;

// Returns the value of the first header named `name`, or `fallback` when there is none.
std::string_view header_value(const Headers& headers, std::string_view name,
                              std::string_view fallback = {}) noexcept;

// The value of a hex digit, or -1.
int hex_value(char c) noexcept;

// Decodes each %XX of `text` once. nullopt when a '%' is not followed by two hex digits, or when
// `refused` says no to a decoded byte (an encoded NUL, separator or second '%').
std::optional<std::string> percent_decode(std::string_view text, bool (*refused)(char) = nullptr);

// Removes every header named `name`; returns how many were removed.
std::size_t remove_header(Headers& headers, std::string_view name);

// The standard reason phrase for a status code ("OK", "Bad Gateway"); "Unknown" for others.
std::string_view reason_phrase(int status) noexcept;

// Whether a message with these headers keeps its connection open (RFC 9112 9.3): HTTP/1.1 unless
// its Connection header lists "close"; HTTP/1.0 only when it lists "keep-alive" and not "close".
bool keeps_alive(const Headers& headers, int version_minor) noexcept;

}  // namespace protocol
