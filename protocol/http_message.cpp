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

}  // namespace protocol
