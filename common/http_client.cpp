#include "common/http_client.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <array>
#include <cerrno>
#include <climits>
#include <cstring>

#include "common/address.h"
#include "common/connect.h"
#include "common/units.h"
#include "protocol/http_parser.h"

namespace common {
namespace {

using Clock = std::chrono::steady_clock;

// Headers the request's own framing replaces.
bool is_framing_header(std::string_view name) {
  for (std::string_view framing : {"content-length", "transfer-encoding", "connection",
                                   "keep-alive", "te", "upgrade", "proxy-connection", "expect"})
    if (protocol::iequals(name, framing)) return true;
  return false;
}

// Waits until `fd` is ready for `events`: false once `deadline` passed.
bool wait_for(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
    if (left <= 0) return false;
    pollfd ready{fd, events, 0};
    int n = ::poll(&ready, 1, static_cast<int>(std::min<std::int64_t>(left, INT_MAX)));
    if (n != 0 && !(n < 0 && errno == EINTR)) return true;  // the call that follows tells how
  }
}

class Connection {
 public:
  Connection(int fd, Clock::time_point deadline) : fd_(fd), deadline_(deadline) {}

  // A peer that answers before it read the whole request may close on the rest: its answer can
  // still be read, so a failed write is left for the read to judge.
  Status write_all(std::string_view data) {
    while (!data.empty()) {
      ssize_t n = ::send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n > 0) {
        data.remove_prefix(static_cast<std::size_t>(n));
      } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (!wait_for(fd_, POLLOUT, deadline_)) return timed_out();
      } else if (errno != EINTR) {
        return {};
      }
    }
    return {};
  }

  // Appends what the peer sent next to `buffer`; sets eof() at its end.
  Status read_more() {
    std::array<char, 16 * 1024> chunk;
    for (;;) {
      ssize_t n = ::recv(fd_, chunk.data(), chunk.size(), 0);
      if (n > 0) {
        buffer.append(chunk.data(), static_cast<std::size_t>(n));
        return {};
      }
      if (n == 0 || errno == ECONNRESET) {
        eof_ = true;
        return {};
      }
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        if (!wait_for(fd_, POLLIN, deadline_)) return timed_out();
      } else if (errno != EINTR) {
        return fail(Error::Code::kBadGateway,
                    std::string("cannot read the reply: ") + std::strerror(errno));
      }
    }
  }

  bool eof() const noexcept { return eof_; }
  std::string buffer;

 private:
  static Status timed_out() {
    return fail(Error::Code::kTimeout, "no reply within the deadline");
  }

  int fd_;
  Clock::time_point deadline_;
  bool eof_ = false;
};

Status closed_early(std::string_view what) {
  return fail(Error::Code::kBadGateway, "the connection closed before the reply's " +
                                            std::string(what) + " was whole");
}

// Reads a final reply's head (interim 1xx ones are skipped); `at` is where the body starts.
Result<protocol::ResponseHead> read_head(Connection& connection, std::size_t& at) {
  for (;;) {
    protocol::ResponseHeadParser parser;
    protocol::ParseStatus status;
    while ((status = parser.parse(std::string_view(connection.buffer).substr(at))) ==
           protocol::ParseStatus::kIncomplete) {
      if (connection.eof()) return tl::unexpected(closed_early("head").error());
      if (auto read = connection.read_more(); !read) return tl::unexpected(read.error());
    }
    if (status == protocol::ParseStatus::kError)
      return fail(Error::Code::kBadGateway,
                  "a reply that breaks HTTP: " + std::string(protocol::describe(parser.error())));
    at += parser.consumed();
    if (parser.head().status >= 200) return std::move(parser.head());
  }
}

}  // namespace

std::string request_bytes(std::string_view method, std::string_view target,
                          const protocol::Headers& headers, std::string_view host,
                          std::string_view body) {
  std::string out;
  out.append(method).append(" ").append(target).append(" HTTP/1.1\r\n");
  for (const auto& header : headers)
    if (!is_framing_header(header.name))
      out.append(header.name).append(": ").append(header.value).append("\r\n");
  if (!protocol::find_header(headers, "Host")) out.append("Host: ").append(host).append("\r\n");
  out.append("Content-Length: ").append(std::to_string(body.size())).append("\r\n");
  out.append("Connection: close\r\n");
  out.append("\r\n").append(body);
  return out;
}

Result<HttpReply> round_trip(int fd, std::string_view request, std::string_view method,
                             Clock::time_point deadline, std::size_t body_limit) {
  Connection connection(fd, deadline);
  if (auto sent = connection.write_all(request); !sent) return tl::unexpected(sent.error());
  std::size_t at = 0;
  auto head = read_head(connection, at);
  if (!head) return tl::unexpected(head.error());
  auto framing = protocol::response_framing(*head, method);
  if (!framing.ok)
    return fail(Error::Code::kBadGateway,
                "a reply that breaks HTTP: " + std::string(protocol::describe(framing.error)));
  HttpReply reply;
  reply.status = head->status;
  reply.headers = std::move(head->headers);
  auto keep = [&](std::string_view data) {
    std::size_t room = body_limit - reply.body.size();
    if (data.size() > room) reply.truncated = true;
    reply.body.append(data.substr(0, room));
  };
  auto next_bytes = [&]() -> Status {
    connection.buffer.erase(0, at);  // what was taken of the body is kept or dropped by now
    at = 0;
    return connection.read_more();
  };
  if (framing.framing.kind == protocol::BodyKind::kNone) return reply;
  if (framing.framing.kind == protocol::BodyKind::kUntilClose) {
    for (;;) {
      keep(std::string_view(connection.buffer).substr(at));
      at = connection.buffer.size();
      if (connection.eof()) return reply;
      if (auto read = next_bytes(); !read) return tl::unexpected(read.error());
    }
  }
  protocol::BodyDecoder decoder(framing.framing);
  for (;;) {
    auto step = decoder.next(std::string_view(connection.buffer).substr(at));
    at += step.consumed;
    keep(step.data);
    if (step.status == protocol::ParseStatus::kComplete) return reply;
    if (step.status == protocol::ParseStatus::kError)
      return fail(Error::Code::kBadGateway,
                  "a reply that breaks HTTP: " + std::string(protocol::describe(step.error)));
    if (step.consumed > 0) continue;
    if (connection.eof()) return tl::unexpected(closed_early("body").error());
    if (auto read = next_bytes(); !read) return tl::unexpected(read.error());
  }
}

std::optional<HttpUrl> parse_http_url(std::string_view url) {
  constexpr std::string_view kScheme = "http://";
  if (url.size() < kScheme.size() || !protocol::iequals(url.substr(0, kScheme.size()), kScheme))
    return std::nullopt;
  url.remove_prefix(kScheme.size());
  HttpUrl parsed;
  std::size_t end = url.find_first_of("/?#");
  std::string_view authority = url.substr(0, end);
  std::string_view rest = end == std::string_view::npos ? "" : url.substr(end);
  rest = rest.substr(0, rest.find('#'));
  if (authority.empty() || authority.find('@') != std::string_view::npos) return std::nullopt;
  std::string_view host = authority;
  std::string_view port;
  if (authority.front() == '[') {
    std::size_t close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty() && after.front() != ':') return std::nullopt;
    if (!after.empty()) port = after.substr(1);
  } else if (std::size_t colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  if (host.empty()) return std::nullopt;
  if (!port.empty()) {
    auto value = parse_whole(port, 1, 65535);
    if (!value) return std::nullopt;
    parsed.port = static_cast<std::uint16_t>(*value);
  }
  for (char c : rest)
    if (static_cast<unsigned char>(c) <= ' ' || c == 0x7f) return std::nullopt;
  parsed.host = std::string(host);
  parsed.authority = std::string(authority);
  parsed.target = rest.empty() || rest.front() == '?' ? "/" + std::string(rest) : std::string(rest);
  return parsed;
}

Result<HttpReply> send_request(const HttpUrl& url, std::string_view method,
                               const protocol::Headers& headers, std::string_view body,
                               std::chrono::milliseconds timeout, std::size_t body_limit) {
  auto deadline = Clock::now() + timeout;
  Address address;
  address.kind = Address::Kind::kTcp;
  address.host = url.host;
  address.port = url.port;
  auto fd = connect_to(address, timeout);
  if (!fd) return tl::unexpected(fd.error());
  return round_trip(fd->get(), request_bytes(method, url.target, headers, url.authority, body),
                    method, deadline, body_limit);
}

}  // namespace common
