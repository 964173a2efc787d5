#include "protocol/http_writer.h"

#include <algorithm>
#include <array>
#include <charconv>

#include "protocol/http_parser.h"

namespace protocol {
namespace {

template <class Integer>
void append_integer(std::string& out, Integer value, int base = 10) {
  std::array<char, 24> digits;
  auto end = std::to_chars(digits.data(), digits.data() + digits.size(), value, base).ptr;
  out.append(digits.data(), end);
}

void append_field(std::string& out, std::string_view name, std::string_view value) {
  out += name;
  out += ": ";
  out += value;
  out += "\r\n";
}

void append_fields(std::string& out, const Headers& headers) {
  for (const Header& header : headers) append_field(out, header.name, header.value);
}

// RFC 9110 7.6.1: the names a Connection field lists are hop-by-hop for this message too.
bool listed_in_connection(const Headers& headers, std::string_view name) {
  for (const Header& header : headers) {
    if (!iequals(header.name, "Connection")) continue;
    std::string_view list = header.value;
    while (!list.empty()) {
      std::size_t comma = std::min(list.find(','), list.size());
      std::string_view item = list.substr(0, comma);
      item.remove_prefix(std::min(item.find_first_not_of(" \t"), item.size()));
      item.remove_suffix(item.size() - std::min(item.find_last_not_of(" \t") + 1, item.size()));
      if (iequals(item, name)) return true;
      list.remove_prefix(std::min(comma + 1, list.size()));
    }
  }
  return false;
}

// No CR, LF or other control byte but HTAB: the text cannot end its line early.
bool clean_text(std::string_view text) noexcept {
  return std::none_of(text.begin(), text.end(), [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return (byte < 0x20 && byte != '\t') || byte == 0x7f;
  });
}

// A field that would break the framing of the stdio stream (a CR or LF in it, a bad name) is left
// out: a desynchronised handler would answer the next request with this one's response.
bool keeps_framing(const Header& header) {
  return is_token(header.name) && clean_text(header.value);
}

bool forwarded_to_handler(const Headers& headers, const Header& header) {
  return !is_hop_by_hop(header.name) && !iequals(header.name, "Content-Length") &&
         !iequals(header.name, "X-Fn-Request-Id") && !iequals(header.name, "X-Fn-Deadline-Ms") &&
         keeps_framing(header) && !listed_in_connection(headers, header.name);
}

}  // namespace

bool is_hop_by_hop(std::string_view name) noexcept {
  constexpr std::array<std::string_view, 6> kNames = {"Connection",        "Keep-Alive", "TE",
                                                      "Transfer-Encoding", "Upgrade",    "Trailer"};
  constexpr std::string_view kProxyPrefix = "Proxy-";
  if (name.size() >= kProxyPrefix.size() &&
      iequals(name.substr(0, kProxyPrefix.size()), kProxyPrefix)) {
    return true;
  }
  return std::any_of(kNames.begin(), kNames.end(),
                     [name](std::string_view hop) { return iequals(name, hop); });
}

void append_request_head(std::string& out, const RequestHead& head) {
  out += head.method;
  out += ' ';
  out += head.target;
  out += " HTTP/1.";
  append_integer(out, head.version_minor);
  out += "\r\n";
  append_fields(out, head.headers);
  out += "\r\n";
}

void append_response_head(std::string& out, const ResponseHead& head) {
  out += "HTTP/1.";
  append_integer(out, head.version_minor);
  out += ' ';
  append_integer(out, head.status);
  out += ' ';
  // The reason comes from a program (a CGI Status, a handler's status line): one that could end
  // the status line early would let it write a second response into this one.
  bool own_reason = !head.reason.empty() && clean_text(head.reason);
  out += own_reason ? std::string_view(head.reason) : reason_phrase(head.status);
  out += "\r\n";
  append_fields(out, head.headers);
  out += "\r\n";
}

void append_hot_request_head(std::string& out, const RequestHead& client,
                             const HotRequestMeta& meta) {
  // Always HTTP/1.1 whatever the client spoke: the stdio link is persistent, and a handler told
  // HTTP/1.0 may close it after answering.
  out += client.method;
  out += ' ';
  out += client.target;
  out += " HTTP/1.1\r\n";
  for (const Header& header : client.headers) {
    if (forwarded_to_handler(client.headers, header)) append_field(out, header.name, header.value);
  }
  out += "Content-Length: ";
  append_integer(out, meta.content_length);
  out += "\r\nX-Fn-Request-Id: ";
  out += meta.request_id;
  out += "\r\nX-Fn-Deadline-Ms: ";
  append_integer(out, meta.deadline_unix_ms);
  out += "\r\n\r\n";
}

void append_chunk(std::string& out, std::string_view data) {
  if (data.empty()) return;
  append_integer(out, data.size(), 16);
  out += "\r\n";
  out += data;
  out += "\r\n";
}

void append_last_chunk(std::string& out, const Headers& trailers) {
  out += "0\r\n";
  append_fields(out, trailers);
  out += "\r\n";
}

}  // namespace protocol
