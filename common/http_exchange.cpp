#include "common/http_exchange.h"

#include <poll.h>
#include <sys/socket.h>
#include <sys/uio.h>

#include <cassert>
#include <cerrno>
#include <ctime>
#include <random>

#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "common/unique_fd.h"
#include "protocol/http_writer.h"

namespace common {
namespace {

std::string_view http_date() {
  // One formatting per second per thread: the Date header is on every response.
  thread_local std::time_t cached_second = 0;
  thread_local char cached[40];
  std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    std::tm tm{};
    ::gmtime_r(&now, &tm);
    std::strftime(cached, sizeof(cached), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached_second = now;
  }
  return cached;
}


protocol::BodyFraming normalized(protocol::BodyFraming framing) {
  if (framing.kind == protocol::BodyKind::kLength && framing.length == 0)
    framing.kind = protocol::BodyKind::kNone;
  return framing;
}

// HTTP/1.1 keeps the connection unless told to close; HTTP/1.0 closes unless told to keep it.
bool client_wants_keep_alive(const protocol::RequestHead& head) {
  std::string_view connection = protocol::header_value(head.headers, "Connection");
  bool close = false, keep = false;
  while (!connection.empty()) {
    auto comma = connection.find(',');
    std::string_view token = connection.substr(0, comma);
    while (!token.empty() && token.front() == ' ') token.remove_prefix(1);
    while (!token.empty() && token.back() == ' ') token.remove_suffix(1);
    close = close || protocol::iequals(token, "close");
    keep = keep || protocol::iequals(token, "keep-alive");
    connection = comma == std::string_view::npos ? "" : connection.substr(comma + 1);
  }
  return head.version_minor == 0 ? keep && !close : !close;
}

}  // namespace

ClientRequest::ClientRequest(int fd, std::string& buffer, std::size_t body_offset,
                             protocol::RequestHead head, protocol::BodyFraming framing,
                             const PeerInfo& peer, std::chrono::milliseconds read_timeout)
    : fd_(fd),
      buffer_(buffer),
      offset_(body_offset),
      head_(std::move(head)),
      framing_(normalized(framing)),
      decoder_(framing_, kRequestBodyLimits),
      peer_(peer),
      read_timeout_(read_timeout) {
  continue_pending_ = has_body() && expects_continue(head_);
}

bool expects_continue(const protocol::RequestHead& head) {
  return head.version_minor == 1 &&
         protocol::iequals(protocol::header_value(head.headers, "Expect"), "100-continue");
}

std::string_view ClientRequest::path() const noexcept {
  std::string_view target = head_.target;
  if (!target.starts_with('/')) {  // absolute-form: http://host/path
    auto scheme = target.find("://");
    auto slash = scheme == std::string_view::npos ? scheme : target.find('/', scheme + 3);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  return target.substr(0, target.find('?'));
}

std::optional<std::uint64_t> ClientRequest::content_length() const noexcept {
  if (framing_.kind == protocol::BodyKind::kChunked) return std::nullopt;
  return framing_.kind == protocol::BodyKind::kLength ? framing_.length : 0;
}

Result<std::string_view> ClientRequest::read_body(std::uint64_t max_body) {
  if (continue_pending_) {
    continue_pending_ = false;
    if (auto sent = send_all(fd_, "HTTP/1.1 100 Continue\r\n\r\n"); !sent)
      return tl::unexpected(sent.error());
  }
  for (;;) {
    auto piece = next_buffered(max_body);
    if (!piece) return tl::unexpected(piece.error());
    if (*piece) return **piece;
    if (auto received = receive_more(); !received) return tl::unexpected(received.error());
  }
}

Result<std::string> ClientRequest::read_whole_body(std::uint64_t max_body) {
  std::string body;
  for (;;) {
    auto piece = read_body(max_body);
    if (!piece) return tl::unexpected(piece.error());
    if (piece->empty()) return body;
    body.append(*piece);
  }
}

Result<bool> ClientRequest::skip_buffered_body(std::uint64_t max_body) {
  for (;;) {
    auto piece = next_buffered(max_body);
    if (!piece) return tl::unexpected(piece.error());
    if (!*piece) break;
    if ((*piece)->empty()) return true;
  }
  buffer_.erase(0, offset_);  // the dropped bytes can go: the buffer holds only what is unread
  offset_ = 0;
  return false;
}

Result<std::optional<std::string_view>> ClientRequest::next_buffered(std::uint64_t max_body) {
  for (;;) {
    if (decoder_.done()) return std::string_view();
    auto step = decoder_.next(std::string_view(buffer_).substr(offset_));
    // A chunk announcing more than the limit (or than 64 bits hold) is refused on its size line:
    // waiting for its data would end only at the read timeout, without an answer.
    bool too_large = step.status == protocol::ParseStatus::kError
                         ? step.error == protocol::ParseError::kBodyTooLarge
                         : decoder_.announced_bytes() > max_body;
    if (too_large)
      return fail(Error::Code::kBodyTooLarge, "request body is over the limit of " +
                                                  std::to_string(max_body) + " bytes");
    if (step.status == protocol::ParseStatus::kError)
      return fail(Error::Code::kBadRequest,
                  "malformed request body: " + std::string(protocol::describe(step.error)));
    offset_ += step.consumed;
    if (!step.data.empty()) return step.data;
    if (step.status == protocol::ParseStatus::kComplete) return std::string_view();
    if (step.consumed > 0) continue;
    return std::nullopt;
  }
}

bool ClientRequest::peer_gone() const noexcept {
  char byte;
  ssize_t n = ::recv(fd_, &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  return n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
}

Status ClientRequest::receive_more() {
  // Views handed out before are spent by contract, so the consumed bytes can go now.
  buffer_.erase(0, offset_);
  offset_ = 0;
  pollfd pfd{fd_, POLLIN, 0};
  int ready;
  while ((ready = ::poll(&pfd, 1, static_cast<int>(read_timeout_.count()))) < 0 && errno == EINTR) {
  }
  if (ready == 0)
    return fail(Error::Code::kClientGone, "the client sent no body bytes for " +
                                              std::to_string(read_timeout_.count()) + "ms");
  if (read_append(fd_, buffer_) <= 0)
    return fail(Error::Code::kClientGone, "the client closed before the end of the body");
  return {};
}

ClientResponse::ClientResponse(int fd, const ClientRequest& request, bool keep_alive)
    : request_(request),
      fd_(fd),
      head_only_(request.method() == "HEAD"),
      http10_(request.head().version_minor == 0),
      keep_alive_(keep_alive && client_wants_keep_alive(request.head())) {}

ClientResponse::ClientResponse(HttpReply& captured, std::size_t body_limit,
                               const ClientRequest& request)
    : ClientResponse(-1, request, true) {
  captured_ = &captured;
  capture_limit_ = body_limit;
}

Status ClientResponse::start(int status, protocol::Headers headers, protocol::BodyFraming framing,
                             std::string_view reason) {
  // A 1xx sent as the answer would have the client take the next request's answer for this one.
  assert(status >= 200 && status <= 999);
  for (auto name : {"Content-Length", "Transfer-Encoding", "Connection", "Date", "Keep-Alive"})
    protocol::remove_header(headers, name);
  if (arrival_) {
    protocol::remove_header(headers, "X-Duration-Seconds");
    std::chrono::duration<double> took = std::chrono::steady_clock::now() - *arrival_;
    headers.push_back({"X-Duration-Seconds", fmt::format("{:.6f}", took.count())});
  }
  if (framing.kind == protocol::BodyKind::kChunked && http10_)
    framing.kind = protocol::BodyKind::kUntilClose;
  if (framing.kind == protocol::BodyKind::kUntilClose) keep_alive_ = false;
  // An error answered before the body was read (413, 429, 503...): the rest of the body is not
  // worth reading, so the connection closes, and says so, or the client would send its next
  // request on a connection about to close.
  if (status >= 400 && !request_.body_complete()) keep_alive_ = false;
  framing_ = framing;
  headers.push_back({"Date", std::string(http_date())});
  if (framing.kind == protocol::BodyKind::kLength)
    headers.push_back({"Content-Length", std::to_string(framing.length)});
  else if (framing.kind == protocol::BodyKind::kChunked)
    headers.push_back({"Transfer-Encoding", "chunked"});
  if (!keep_alive_) headers.push_back({"Connection", "close"});
  else if (http10_) headers.push_back({"Connection", "keep-alive"});
  if (captured_) {
    captured_->status = status;
    captured_->headers = std::move(headers);
  } else {
    protocol::append_response_head(
        pending_, protocol::ResponseHead{1, status, std::string(reason), std::move(headers)});
  }
  started_ = true;
  status_ = status;
  return {};
}

Status ClientResponse::write(std::string_view data) {
  if (data.empty() || aborted_) return {};
  body_bytes_ += data.size();
  if (head_only_ || framing_.kind == protocol::BodyKind::kNone) return {};
  if (framing_.kind != protocol::BodyKind::kChunked) return flush(data);
  pending_ += fmt::format("{:x}\r\n", data.size());
  if (auto sent = flush(data); !sent) return sent;
  pending_ = "\r\n";  // closes this chunk; it leaves with the next write
  return {};
}

Status ClientResponse::finish(const protocol::Headers& trailers) {
  if (finished_) return {};
  finished_ = true;
  if (framing_.kind == protocol::BodyKind::kLength && !head_only_ &&
      body_bytes_ != framing_.length) {
    abort();
    return fail(Error::Code::kBadGateway, "response body shorter than its Content-Length");
  }
  if (framing_.kind == protocol::BodyKind::kChunked && !head_only_) {
    if (captured_)
      captured_->headers.insert(captured_->headers.end(), trailers.begin(), trailers.end());
    else
      protocol::append_last_chunk(pending_, trailers);
  }
  complete();
  return flush();
}

Status ClientResponse::send(int status, protocol::Headers headers, std::string_view body,
                            std::string_view reason) {
  bool bodiless = status == 204 || status == 304;
  start(status, std::move(headers),
        {bodiless ? protocol::BodyKind::kNone : protocol::BodyKind::kLength, body.size()}, reason);
  body_bytes_ = body.size();
  finished_ = true;
  complete();
  return flush(head_only_ || bodiless ? std::string_view() : body);
}

void ClientResponse::abort() noexcept {
  finished_ = true;
  aborted_ = true;
  if (!captured_) ::shutdown(fd_, SHUT_RDWR);
  complete();
}

void ClientResponse::complete() noexcept {
  if (!on_complete_) return;
  auto callback = std::move(on_complete_);
  on_complete_ = nullptr;
  try {
    callback();
  } catch (...) {  // counting must never cost the answer (abort() is noexcept)
  }
}

Status ClientResponse::flush(std::string_view extra) {
  if (captured_) {  // the head and the chunks' framing are in captured_ already, or not needed
    pending_.clear();
    std::size_t room = capture_limit_ - captured_->body.size();
    if (extra.size() > room) captured_->truncated = true;
    captured_->body.append(extra.substr(0, room));
    return {};
  }
  auto sent = send_all(fd_, pending_, extra);
  pending_.clear();
  if (!sent) abort();
  return sent;
}

Status send_all(int fd, std::string_view first, std::string_view second) {
  iovec parts[2] = {{const_cast<char*>(first.data()), first.size()},
                    {const_cast<char*>(second.data()), second.size()}};
  iovec* next = parts;
  std::size_t left = 2;
  while (left > 0) {
    if (next->iov_len == 0) {
      ++next;
      --left;
      continue;
    }
    msghdr message{};
    message.msg_iov = next;
    message.msg_iovlen = left;
    ssize_t n = ::sendmsg(fd, &message, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      return fail(Error::Code::kClientGone,
                  errno == EAGAIN ? "client write timed out" : "client connection lost");
    }
    for (auto written = static_cast<std::size_t>(n); written > 0;) {
      std::size_t step = std::min(written, next->iov_len);
      next->iov_base = static_cast<char*>(next->iov_base) + step;
      next->iov_len -= step;
      written -= step;
      if (next->iov_len == 0 && left > 0) {
        ++next;
        --left;
      }
    }
  }
  return {};
}

std::string error_json(std::string_view error, std::string_view function,
                       std::string_view request_id, const protocol::Headers& extra) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  auto field = [&writer](std::string_view key, std::string_view value) {
    writer.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
    writer.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  };
  writer.StartObject();
  field("error", error);
  field("function", function);
  field("request_id", request_id);
  for (const auto& [key, value] : extra) field(key, value);
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

bool is_sane_id(std::string_view id) noexcept {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}
std::string new_request_id() {
  thread_local std::mt19937_64 generator{std::random_device{}()};
  return fmt::format("{:016x}{:016x}", generator(), generator());
}

std::string request_id_for(const protocol::Headers& headers) {
  auto sent = protocol::header_value(headers, "X-Fn-Request-Id");
  return is_sane_id(sent) ? std::string(sent) : new_request_id();
}

}  // namespace common
