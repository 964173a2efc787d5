#include "common/http_connection.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>

#include "common/http_server.h"
#include "common/logging.h"

namespace common {
namespace {

constexpr std::size_t kReceivePiece = 16 * 1024;
constexpr std::uint64_t kMaxDiscard = 1 << 20;
// A body of up to this many bytes is received by the event loop before a worker runs the
// request: the bodies of most function calls, which a slow client would otherwise send while a
// thread waits. A larger one streams to the handler from the worker, as it comes, so that memory
// stays bounded by this much per connection.
constexpr std::uint64_t kBodyReceivedFirst = 64 * 1024;
// A buffer this large or smaller is kept by an idle connection; a larger one is freed.
constexpr std::size_t kIdleBufferKept = 4 * 1024;

int status_for(protocol::ParseError error) {
  return error == protocol::ParseError::kHeadTooLarge ||
                 error == protocol::ParseError::kTooManyHeaders
             ? 431
             : 400;
}

// What RFC 9112 asks of a server beyond the syntax protocol/ checks: a target it can serve (origin
// form "/path", or absolute form "http://host/path"; a function has no use for "*" or CONNECT's
// authority form) and exactly one Host in HTTP/1.1 (at most one in 1.0). Empty when fine.
std::string_view invalid_request_reason(const protocol::RequestHead& head) {
  std::string_view target = head.target;
  auto starts_with_scheme = [&](std::string_view scheme) {
    return target.size() > scheme.size() &&
           protocol::iequals(target.substr(0, scheme.size()), scheme);
  };
  if (!target.starts_with('/') && !starts_with_scheme("http://") && !starts_with_scheme("https://"))
    return "the request target is not a path or an http URL";
  std::size_t hosts = 0;
  for (const auto& header : head.headers) hosts += protocol::iequals(header.name, "Host") ? 1 : 0;
  if (hosts > 1) return "more than one Host header";
  if (hosts == 0 && head.version_minor >= 1) return "missing Host header";
  return {};
}

// One non-blocking send of a small answer; what the socket does not take at once is dropped (the
// connection closes after it anyway).
void send_now(int fd, std::string_view head, std::string_view body) noexcept {
  iovec parts[2] = {{const_cast<char*>(head.data()), head.size()},
                    {const_cast<char*>(body.data()), body.size()}};
  msghdr message{};
  message.msg_iov = parts;
  message.msg_iovlen = 2;
  [[maybe_unused]] ssize_t n = ::sendmsg(fd, &message, MSG_NOSIGNAL | MSG_DONTWAIT);
}

}  // namespace

HttpConnection::HttpConnection(UniqueFd fd, PeerInfo peer, const ServerSettings& settings)
    : fd_(std::move(fd)), peer_(std::move(peer)), settings_(settings) {}

HttpConnection::Received HttpConnection::receive_now() {
  // A head that trickles in costs one read per piece, with no 16 KiB of the buffer zero-filled
  // (by resize) for each.
  char piece[kReceivePiece];
  ssize_t n;
  while ((n = ::recv(fd_.get(), piece, sizeof piece, MSG_DONTWAIT)) < 0 && errno == EINTR) {
  }
  if (n > 0) {
    buffer_.append(piece, static_cast<std::size_t>(n));
    return Received::kData;
  }
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return Received::kNothing;
  return Received::kClosed;
}

HttpConnection::Head HttpConnection::parse_head() {
  if (head_) return Head::kComplete;  // found before, waiting for its body or for a worker
  if (offset_ >= buffer_.size()) {
    buffer_.clear();
    offset_ = 0;
    return parser_ ? Head::kPartial : Head::kNone;
  }
  if (!parser_) {
    // Bytes before the request are spent; dropping them leaves the parser's view the same.
    buffer_.erase(0, offset_);
    offset_ = 0;
    parser_.emplace(protocol::Limits{settings_.max_head_bytes, settings_.max_headers, UINT64_MAX});
  }
  // Each read is parsed on from where the last one ended: a head sent a byte at a time must not
  // be parsed again from its start after every byte (quadratic: seconds of CPU for 64 KiB).
  auto parsed = parser_->parse(std::string_view(buffer_).substr(offset_));
  if (parsed == protocol::ParseStatus::kIncomplete) return Head::kPartial;
  if (parsed == protocol::ParseStatus::kError) {
    refuse(status_for(parser_->error()), protocol::describe(parser_->error()), false);
    parser_.reset();
    return Head::kRefused;
  }
  head_ = std::move(parser_->head());
  framing_ = protocol::request_framing(*head_);
  body_offset_ = offset_ + parser_->consumed();
  parser_.reset();
  body_scan_.reset();
  body_scanned_ = body_offset_;
  continue_sent_ = false;
  return Head::kComplete;
}

bool HttpConnection::body_ready() {
  if (!framing_.ok || !invalid_request_reason(*head_).empty()) return true;  // dispatch() refuses it
  const protocol::BodyFraming& body = framing_.framing;
  std::size_t buffered = buffer_.size() - body_offset_;
  bool ready = true;
  if (body.kind == protocol::BodyKind::kLength)
    ready = body.length > kBodyReceivedFirst || buffered >= body.length;
  else if (body.kind == protocol::BodyKind::kChunked)
    ready = buffered >= kBodyReceivedFirst || chunked_body_ready();
  if (!ready && !continue_sent_ && expects_continue(*head_)) {
    continue_sent_ = true;
    send_now(fd_.get(), "HTTP/1.1 100 Continue\r\n\r\n", {});
  }
  return ready;
}

bool HttpConnection::chunked_body_ready() {
  if (!body_scan_) body_scan_.emplace(framing_.framing, kRequestBodyLimits);
  for (;;) {
    auto step = body_scan_->next(std::string_view(buffer_).substr(body_scanned_));
    body_scanned_ += step.consumed;
    if (step.status != protocol::ParseStatus::kIncomplete) return true;
    if (body_scan_->announced_bytes() > kBodyReceivedFirst) return true;
    if (step.consumed == 0) return false;
  }
}

void HttpConnection::refuse_late_head() noexcept {
  refuse(408, "request head not received in time", false);
}

void HttpConnection::refuse_late_body() noexcept {
  refuse(408, "request body not received in time", false);
}

HttpConnection::Discard HttpConnection::discard_buffered() {
  if (!unread_) return Discard::kDone;
  auto skipped = unread_->skip_buffered_body(discard_limit_);
  if (!skipped) {
    unread_.reset();
    return Discard::kFailed;
  }
  if (!*skipped) return Discard::kMore;
  offset_ = unread_->end_offset();
  unread_.reset();
  return Discard::kDone;
}

void HttpConnection::shrink_idle_buffer() {
  if (offset_ < buffer_.size() || parser_) return;
  buffer_.clear();
  offset_ = 0;
  if (buffer_.capacity() > kIdleBufferKept) std::string().swap(buffer_);
}

HttpConnection::Outcome HttpConnection::serve(const RequestHandler& handler,
                                              const std::atomic<bool>& draining) noexcept {
  try {
    for (;;) {
      Outcome outcome = dispatch(handler, draining.load());
      if (outcome != Outcome::kKeepAlive) return outcome;
      // A pipelined request already whole in the buffer is served on this thread at once; a part
      // of one goes back to the loop, which waits for the rest.
      Head next = parse_head();
      if (next == Head::kNone && linger_for_next()) next = parse_head();
      if (next == Head::kRefused) return Outcome::kClose;
      if (next != Head::kComplete || !body_ready()) return Outcome::kKeepAlive;
    }
  } catch (const std::exception& e) {
    logger("http")->error("connection failed error=\"{}\"", e.what());
  } catch (...) {
    logger("http")->error("connection failed error=\"unknown exception\"");
  }
  unread_.reset();
  return Outcome::kClose;
}

bool HttpConnection::linger_for_next() {
  // A keep-alive client usually sends its next request right after reading the answer: waiting
  // for it here a moment saves two thread hand-offs through the loop (a third of the throughput
  // of small requests); a client that stays silent costs the thread only this moment.
  if (settings_.worker_linger.count() <= 0) return false;
  pollfd pfd{fd_.get(), POLLIN, 0};
  int timeout = static_cast<int>(
      std::chrono::ceil<std::chrono::milliseconds>(settings_.worker_linger).count());
  if (::poll(&pfd, 1, timeout) <= 0) return false;
  return receive_now() == Received::kData;
}

HttpConnection::Outcome HttpConnection::dispatch(const RequestHandler& handler, bool draining) {
  protocol::RequestHead head = std::move(*head_);
  head_.reset();
  if (auto reason = invalid_request_reason(head); !reason.empty()) {
    refuse(400, reason, true);
    return Outcome::kClose;
  }
  if (!framing_.ok) {
    refuse(400, protocol::describe(framing_.error), true);
    return Outcome::kClose;
  }
  ClientRequest& request = unread_.emplace(fd_.get(), buffer_, body_offset_, std::move(head),
                                           framing_.framing, peer_, settings_.read_timeout);
  if (continue_sent_) request.continue_sent();
  ClientResponse response(fd_.get(), request, !draining);
  if (framing_.close_after) response.close_after();
  handler(request, response);
  if (!response.finished()) response.abort();
  // Unread body bytes would be parsed as the next request: a success answered before the whole
  // body was read (a function that ignores its input) has the rest dropped by the loop, as nginx
  // does, so the connection stays usable; a client still waiting for "100 Continue" may never
  // send that body, so its connection closes instead.
  if (!response.keep_alive() || (!request.body_complete() && request.awaiting_continue())) {
    unread_.reset();
    return Outcome::kClose;
  }
  if (!request.body_complete()) {
    discard_limit_ = request.body_bytes_read() + kMaxDiscard;
    return Outcome::kDiscard;
  }
  offset_ = request.end_offset();
  unread_.reset();
  return Outcome::kKeepAlive;
}

// Answers a request that cannot be parsed, then the connection closes.
void HttpConnection::refuse(int status, std::string_view reason, bool may_block) noexcept {
  static const auto log = common::logger("http");
  try {
    std::string id = new_request_id();
    log->info("refused request status={} reason=\"{}\" request_id={}", status, reason, id);
    std::string body = error_json("bad request: " + std::string(reason), "", id);
    std::string head = "HTTP/1.1 " + std::to_string(status) + " " +
                       std::string(protocol::reason_phrase(status)) +
                       "\r\nContent-Type: application/json\r\nConnection: close\r\n"
                       "X-Fn-Request-Id: " +
                       id + "\r\nContent-Length: " + std::to_string(body.size()) + "\r\n\r\n";
    if (may_block)
      send_all(fd_.get(), head, body);
    else
      send_now(fd_.get(), head, body);
  } catch (const std::exception& e) {
    log->error("refusing a request failed error=\"{}\"", e.what());
  }
}

}  // namespace common
