#include "protocol/http_message.h"

#include <algorithm>
#include <iterator>

namespace protocol {
namespace {

char lower(char c) noexcept {
  return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
}

struct Reason {
  int status;
  std::string_view phrase;
};

// RFC 9110 section 15, in status order for the binary search.
constexpr Reason kReasons[] = {
    {100, "Continue"},
    {101, "Switching Protocols"},
    {103, "Early Hints"},
    {200, "OK"},
    {201, "Created"},
    {202, "Accepted"},
    {203, "Non-Authoritative Information"},
    {204, "No Content"},
    {205, "Reset Content"},
    {206, "Partial Content"},
    {300, "Multiple Choices"},
    {301, "Moved Permanently"},
    {302, "Found"},
    {303, "See Other"},
    {304, "Not Modified"},
    {307, "Temporary Redirect"},
    {308, "Permanent Redirect"},
    {400, "Bad Request"},
    {401, "Unauthorized"},
    {402, "Payment Required"},
    {403, "Forbidden"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {406, "Not Acceptable"},
    {407, "Proxy Authentication Required"},
    {408, "Request Timeout"},
    {409, "Conflict"},
    {410, "Gone"},
    {411, "Length Required"},
    {412, "Precondition Failed"},
    {413, "Content Too Large"},
    {414, "URI Too Long"},
    {415, "Unsupported Media Type"},
    {416, "Range Not Satisfiable"},
    {417, "Expectation Failed"},
    {421, "Misdirected Request"},
    {422, "Unprocessable Content"},
    {425, "Too Early"},
    {426, "Upgrade Required"},
    {428, "Precondition Required"},
    {429, "Too Many Requests"},
    {431, "Request Header Fields Too Large"},
    {451, "Unavailable For Legal Reasons"},
    {500, "Internal Server Error"},
    {501, "Not Implemented"},
    {502, "Bad Gateway"},
    {503, "Service Unavailable"},
    {504, "Gateway Timeout"},
    {505, "HTTP Version Not Supported"},
};

}  // namespace

bool iequals(std::string_view a, std::string_view b) noexcept {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(),
                                            [](char x, char y) { return lower(x) == lower(y); });
}

const Header* find_header(const Headers& headers, std::string_view name) noexcept {
  for (const Header& header : headers) {
    if (iequals(header.name, name)) return &header;
  }
  return nullptr;
}

std::string_view header_value(const Headers& headers, std::string_view name,
                              std::string_view fallback) noexcept {
  const Header* header = find_header(headers, name);
  return header ? std::string_view(header->value) : fallback;
}

std::size_t remove_header(Headers& headers, std::string_view name) {
  return std::erase_if(headers,
                       [name](const Header& header) { return iequals(header.name, name); });
}

std::string_view reason_phrase(int status) noexcept {
  const Reason* end = std::end(kReasons);
  const Reason* found = std::lower_bound(std::begin(kReasons), end, status,
                                         [](const Reason& r, int s) { return r.status < s; });
  return found != end && found->status == status ? found->phrase : "Unknown";
}

int hex_value(char c) noexcept {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

std::optional<std::string> percent_decode(std::string_view text, bool (*refused)(char)) {
  std::string decoded;
  decoded.reserve(text.size());
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] != '%') {
      decoded += text[i];
      continue;
    }
    int high = i + 2 < text.size() ? hex_value(text[i + 1]) : -1;
    int low = high >= 0 ? hex_value(text[i + 2]) : -1;
    if (low < 0) return std::nullopt;
    char c = static_cast<char>(high * 16 + low);
    if (refused && refused(c)) return std::nullopt;
    decoded += c;
    i += 2;
  }
  return decoded;
}

bool keeps_alive(const Headers& headers, int version_minor) noexcept {
  bool close = false, keep = false;
  for (const auto& header : headers) {
    if (!iequals(header.name, "Connection")) continue;
    std::string_view list = header.value;
    while (!list.empty()) {
      auto comma = list.find(',');
      std::string_view token = list.substr(0, comma);
      while (!token.empty() && (token.front() == ' ' || token.front() == '\t')) token.remove_prefix(1);
      while (!token.empty() && (token.back() == ' ' || token.back() == '\t')) token.remove_suffix(1);
      close = close || iequals(token, "close");
      keep = keep || iequals(token, "keep-alive");
      list = comma == std::string_view::npos ? "" : list.substr(comma + 1);
    }
  }
  return version_minor == 0 ? keep && !close : !close;
}

}  // namespace protocol
