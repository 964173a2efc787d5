#include "common/http_server.h"

#include <poll.h>
#include <sys/socket.h>

#include <cerrno>

#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/Net/TCPServer.h>
#include <Poco/Net/TCPServerConnection.h>
#include <Poco/Net/TCPServerConnectionFactory.h>
#include <Poco/Net/TCPServerParams.h>
#include <Poco/ThreadPool.h>
#include <Poco/Timespan.h>

#include "common/logging.h"
#include "protocol/http_parser.h"

namespace common {
namespace {

using Clock = std::chrono::steady_clock;

Poco::Timespan to_timespan(std::chrono::milliseconds ms) {
  return Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(ms.count()) * 1000);
}

PeerInfo peer_of(const Poco::Net::StreamSocket& socket) {
  PeerInfo peer;
  try {
    Poco::Net::SocketAddress address = socket.peerAddress();
    if (address.family() == Poco::Net::SocketAddress::UNIX_LOCAL) {
      peer.unix_socket = true;
    } else {
      peer.remote_host = address.host().toString();
      peer.remote_port = std::to_string(address.port());
    }
  } catch (const Poco::Exception&) {
    peer.unix_socket = true;  // an unnamed unix peer
  }
  return peer;
}

int status_for(protocol::ParseError error) {
  return error == protocol::ParseError::kHeadTooLarge || error == protocol::ParseError::kTooManyHeaders
             ? 431
             : 400;
}

// What RFC 9112 asks of a server beyond the syntax protocol/ checks: a target it can serve (origin
// form "/path", or absolute form "http://host/path"; a function has no use for "*" or CONNECT's
// authority form) and exactly one Host in HTTP/1.1 (at most one in 1.0). Empty when fine.
std::string_view invalid_request_reason(const protocol::RequestHead& head) {
  std::string_view target = head.target;
  auto starts_with_scheme = [&](std::string_view scheme) {
    return target.size() > scheme.size() && protocol::iequals(target.substr(0, scheme.size()), scheme);
  };
  if (!target.starts_with('/') && !starts_with_scheme("http://") && !starts_with_scheme("https://"))
    return "the request target is not a path or an http URL";
  std::size_t hosts = 0;
  for (const auto& header : head.headers) hosts += protocol::iequals(header.name, "Host") ? 1 : 0;
  if (hosts > 1) return "more than one Host header";
  if (hosts == 0 && head.version_minor >= 1) return "missing Host header";
  return {};
}

// Serves the requests of one connection until it closes, errs or the server stops.
class Connection : public Poco::Net::TCPServerConnection {
 public:
  Connection(const Poco::Net::StreamSocket& socket, std::shared_ptr<HttpServer::Shared> shared)
      : TCPServerConnection(socket), shared_(std::move(shared)), fd_(socket.impl()->sockfd()) {
    std::lock_guard lock(shared_->mutex);
    shared_->open_fds.insert(fd_);
  }
  ~Connection() override {
    std::lock_guard lock(shared_->mutex);
    shared_->open_fds.erase(fd_);
  }

  void run() override {
    peer_ = peer_of(socket());
    while (serve_one()) {
    }
  }

 private:
  enum class Wait { kReady, kClosed };

  // Waits for the first byte of a request: the keep-alive timeout between requests.
  Wait wait_for_request() {
    if (offset_ < buffer_.size()) return Wait::kReady;  // a pipelined request is buffered
    buffer_.clear();
    offset_ = 0;
    return receive(Clock::now() + shared_->settings.keep_alive_timeout) ? Wait::kReady
                                                                        : Wait::kClosed;
  }

  // Appends what the client sent next, waiting until `deadline` for it. A head that trickles in
  // costs one poll and one read per piece, with no 16 KiB of the buffer zero-filled (by resize)
  // for each.
  bool receive(Clock::time_point deadline) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    pollfd pfd{fd_, POLLIN, 0};
    if (left.count() <= 0 || ::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) return false;
    char piece[16 * 1024];
    ssize_t n = ::recv(fd_, piece, sizeof piece, 0);
    if (n > 0) buffer_.append(piece, static_cast<std::size_t>(n));
    return n > 0;
  }

  bool serve_one() {
    if (wait_for_request() == Wait::kClosed) return false;
    const ServerSettings& settings = shared_->settings;
    protocol::Limits limits{settings.max_head_bytes, settings.max_headers, UINT64_MAX};
    // Each read is parsed on from where the last one ended: a head sent a byte at a time must not
    // be parsed again from its start after every byte (quadratic: seconds of CPU for 64 KiB).
    protocol::RequestHeadParser parser(limits);
    // The whole head within the read timeout, however slowly it trickles in.
    auto deadline = Clock::now() + settings.read_timeout;
    for (;;) {
      auto parsed = parser.parse(std::string_view(buffer_).substr(offset_));
      if (parsed == protocol::ParseStatus::kComplete)
        return dispatch(std::move(parser.head()), offset_ + parser.consumed());
      if (parsed == protocol::ParseStatus::kError) {
        refuse(status_for(parser.error()), protocol::describe(parser.error()));
        return false;
      }
      if (!receive(deadline)) {
        if (Clock::now() >= deadline) refuse(408, "request head not received in time");
        return false;
      }
    }
  }

  bool dispatch(protocol::RequestHead head, std::size_t body_offset) {
    if (auto reason = invalid_request_reason(head); !reason.empty()) {
      refuse(400, reason);
      return false;
    }
    auto framing = protocol::request_framing(head);
    if (!framing.ok) {
      refuse(400, protocol::describe(framing.error));
      return false;
    }
    ClientRequest request(fd_, buffer_, body_offset, std::move(head), framing.framing, peer_,
                          shared_->settings.read_timeout);
    bool keep_alive;
    {
      std::lock_guard lock(shared_->mutex);
      keep_alive = !shared_->draining;
    }
    ClientResponse response(fd_, request, keep_alive);
    if (framing.close_after) response.close_after();
    shared_->handler(request, response);
    if (!response.finished()) response.abort();
    // A success answered before the whole body was read (a function that ignores its input):
    // the rest is read and dropped, as nginx does, so the connection stays usable; a body that
    // is too long or too slow for that closes it instead.
    if (response.keep_alive() && !request.body_complete()) discard_body(request);
    offset_ = request.end_offset();
    // Unread body bytes would be parsed as the next request.
    return response.keep_alive() && request.body_complete();
  }

  static void discard_body(ClientRequest& request) {
    constexpr std::uint64_t kMaxDiscard = 1 << 20;
    std::uint64_t limit = request.body_bytes_read() + kMaxDiscard;
    while (!request.body_complete()) {
      auto piece = request.read_body(limit);
      if (!piece || piece->empty()) return;
    }
  }

  // Answers a request that cannot be parsed, then the connection closes.
  void refuse(int status, std::string_view reason) {
    static const auto log = common::logger("http");
    std::string id = new_request_id();
    log->info("refused request status={} reason=\"{}\" request_id={}", status, reason, id);
    std::string body = error_json("bad request: " + std::string(reason), "", id);
    std::string head = "HTTP/1.1 " + std::to_string(status) + " " +
                       std::string(protocol::reason_phrase(status)) +
                       "\r\nContent-Type: application/json\r\nConnection: close\r\n"
                       "X-Fn-Request-Id: " + id + "\r\nContent-Length: " +
                       std::to_string(body.size()) + "\r\n\r\n";
    send_all(fd_, head, body);
  }

  std::shared_ptr<HttpServer::Shared> shared_;
  int fd_;
  PeerInfo peer_;
  std::string buffer_;  // the connection's one reader
  std::size_t offset_ = 0;
};

}  // namespace

class HttpServer::Factory : public Poco::Net::TCPServerConnectionFactory {
 public:
  explicit Factory(std::shared_ptr<Shared> shared) : shared_(std::move(shared)) {}

  Poco::Net::TCPServerConnection* createConnection(const Poco::Net::StreamSocket& socket) override {
    Poco::Net::StreamSocket client(socket);
    client.setSendTimeout(to_timespan(shared_->settings.write_timeout));
    return new Connection(client, shared_);  // Poco takes ownership
  }

 private:
  std::shared_ptr<Shared> shared_;
};

HttpServer::HttpServer(Poco::Net::ServerSocket socket, const ServerSettings& settings,
                       RequestHandler handler)
    : shared_(std::make_shared<Shared>()),
      pool_(std::make_unique<Poco::ThreadPool>(2, settings.max_threads, 60)) {
  shared_->settings = settings;
  shared_->handler = std::move(handler);
  Poco::Net::TCPServerParams::Ptr params = new Poco::Net::TCPServerParams;
  params->setMaxThreads(settings.max_threads);
  params->setMaxQueued(settings.max_queued);
  server_ = std::make_unique<Poco::Net::TCPServer>(new Factory(shared_), *pool_, socket, params);
}

HttpServer::~HttpServer() { abort_connections(); }

void HttpServer::start() { server_->start(); }

void HttpServer::stop_accepting() { server_->stop(); }

void HttpServer::begin_drain() {
  std::lock_guard lock(shared_->mutex);
  shared_->draining = true;
}

void HttpServer::abort_connections() {
  server_->stop();
  {
    std::lock_guard lock(shared_->mutex);
    for (int fd : shared_->open_fds) ::shutdown(fd, SHUT_RDWR);
  }
  pool_->joinAll();
}

int HttpServer::current_connections() const { return server_->currentConnections(); }

}  // namespace common
