#include "watchdog/hot_exchange.h"

#include <poll.h>
#include <unistd.h>

#include <cerrno>

#include "common/logging.h"
#include "protocol/http_writer.h"

namespace watchdog {
namespace {

using common::Error;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kReadSize = 64 * 1024;
constexpr std::uint64_t kHoldLimit = 64 * 1024;

int poll_timeout(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(std::min<long long>(left.count() + 1, 60'000));
}

// The first bytes of a broken response, printable, for the log line that explains the 502.
std::string first_bytes(std::string_view bytes) {
  std::string shown;
  for (char c : bytes.substr(0, 80)) {
    if (c == '\n') shown += "\\n";
    else if (c == '\r') shown += "\\r";
    else if (c == '"') shown += "\\\"";
    else if (static_cast<unsigned char>(c) < 0x20 || static_cast<unsigned char>(c) > 0x7e)
      shown += fmt::format("\\x{:02x}", static_cast<unsigned char>(c));
    else shown += c;
  }
  return shown;
}

}  // namespace

HotExchange::HotExchange(HotProcess& process, Invocation& invocation, std::uint64_t max_body)
    : process_(process), invocation_(invocation), max_body_(max_body) {}

common::Status HotExchange::run() {
  if (auto prepared = prepare_request(); !prepared) return prepared;
  while (phase_ != Phase::kDone) {
    if (auto refilled = refill_request(); !refilled) return refilled;
    if (Clock::now() >= invocation_.deadline)
      return broken(StopReason::kTimeout, Error::Code::kTimeout,
                    "the function ran past its exec-timeout");
    bool writing = !stdin_closed_ && out_offset_ < out_.size();
    pollfd fds[2] = {{process_.child_.stdout_fd().get(), POLLIN, 0},
                     {process_.child_.stdin_fd().get(), POLLOUT, 0}};
    if (::poll(fds, writing ? 2 : 1, poll_timeout(invocation_.deadline)) < 0 && errno != EINTR)
      return broken(StopReason::kExited, Error::Code::kInternal, "poll failed");
    if (writing && fds[1].revents) {
      if (auto written = write_request(); !written) return written;
    }
    if (fds[0].revents) {
      if (auto read = read_response(); !read) return read;
    }
  }
  return complete();
}

common::Status HotExchange::prepare_request() {
  auto& request = invocation_.request;
  auto length = request.content_length();
  std::string body;
  if (!length) {  // chunked: the stdio protocol needs the length first, so the body is held
    char buffer[16 * 1024];
    for (;;) {
      auto read = request.read_body(buffer, sizeof(buffer), max_body_);
      if (!read) return tl::unexpected(read.error());
      if (*read == 0) break;
      body.append(buffer, *read);
    }
    length = body.size();
  }
  protocol::append_hot_request_head(
      out_, request.head(), {invocation_.request_id, invocation_.deadline_unix_ms, *length});
  out_ += body;
  return {};
}

common::Status HotExchange::refill_request() {
  if (stdin_closed_ || out_offset_ < out_.size() || invocation_.request.body_complete()) return {};
  out_.resize(kReadSize);
  out_offset_ = 0;
  auto read = invocation_.request.read_body(out_.data(), out_.size(), max_body_);
  if (!read) {
    out_.clear();
    return broken(StopReason::kClientGone, read.error().code, read.error().context);
  }
  out_.resize(*read);
  return {};
}

common::Status HotExchange::write_request() {
  ssize_t n = ::write(process_.child_.stdin_fd().get(), out_.data() + out_offset_,
                      out_.size() - out_offset_);
  if (n >= 0) {
    out_offset_ += static_cast<std::size_t>(n);
  } else if (errno != EAGAIN && errno != EINTR) {
    stdin_closed_ = true;  // it closed stdin or died: its stdout will tell which
  }
  return {};
}

common::Status HotExchange::read_response() {
  std::string& buffer = process_.stdout_buffer_;
  if (offset_ > 0 && offset_ == buffer.size()) {
    buffer.clear();
    offset_ = 0;
  }
  std::size_t old_size = buffer.size();
  buffer.resize(old_size + kReadSize);
  ssize_t n = ::read(process_.child_.stdout_fd().get(), buffer.data() + old_size, kReadSize);
  buffer.resize(old_size + static_cast<std::size_t>(std::max<ssize_t>(n, 0)));
  if (n < 0 && (errno == EAGAIN || errno == EINTR)) return {};
  if (n <= 0)
    return broken(StopReason::kExited, Error::Code::kBadGateway,
                  "the handler exited before it finished its response");
  return parse_response();
}

common::Status HotExchange::parse_response() {
  std::string_view pending = std::string_view(process_.stdout_buffer_).substr(offset_);
  if (phase_ == Phase::kHead) {
    auto parsed = protocol::parse_response_head(pending);
    if (parsed.status == protocol::ParseStatus::kIncomplete) return {};
    if (parsed.status == protocol::ParseStatus::kError)
      return broken(StopReason::kProtocol, Error::Code::kBadGateway,
                    "invalid http response from function: " +
                        std::string(protocol::describe(parsed.error)));
    head_ = std::move(parsed.head);
    offset_ += parsed.consumed;
    if (auto started = start_response(); !started) return started;
  }
  if (phase_ == Phase::kBody) return take_body();
  return {};
}

common::Status HotExchange::start_response() {
  if (head_.status < 200)
    return broken(StopReason::kProtocol, Error::Code::kBadGateway,
                  "invalid http response from function: interim status " +
                      std::to_string(head_.status));
  auto framing = protocol::response_framing(head_, "GET");
  if (!framing.ok || framing.framing.kind == protocol::BodyKind::kUntilClose)
    return broken(StopReason::kProtocol, Error::Code::kBadGateway,
                  "invalid http response from function: " +
                      std::string(framing.ok ? "no Content-Length and not chunked"
                                             : protocol::describe(framing.error)));
  bool head_request = invocation_.request.method() == "HEAD";
  if (head_request) framing.framing.kind = protocol::BodyKind::kNone;  // a HEAD answer has no body
  decoder_.emplace(framing.framing, protocol::Limits{64 * 1024, 100, UINT64_MAX});
  hold_ = framing.framing.kind == protocol::BodyKind::kLength && framing.framing.length <= kHoldLimit;
  phase_ = Phase::kBody;
  if (hold_ || framing.framing.kind == protocol::BodyKind::kNone) return {};
  return invocation_.response.start(head_.status, client_headers(), framing.framing);
}

common::Status HotExchange::take_body() {
  while (phase_ == Phase::kBody) {
    std::string_view pending = std::string_view(process_.stdout_buffer_).substr(offset_);
    auto step = decoder_->next(pending);
    if (step.status == protocol::ParseStatus::kError)
      return broken(StopReason::kProtocol, Error::Code::kBadGateway,
                    "invalid http response body from function: " +
                        std::string(protocol::describe(step.error)));
    offset_ += step.consumed;
    if (!step.data.empty()) {
      if (hold_) held_.append(step.data);
      else if (auto written = invocation_.response.write(step.data); !written)
        return broken(StopReason::kClientGone, written.error().code, written.error().context);
    }
    if (step.status == protocol::ParseStatus::kComplete) phase_ = Phase::kDone;
    else if (step.consumed == 0) return {};
  }
  return {};
}

common::Status HotExchange::complete() {
  bool garbage = offset_ < process_.stdout_buffer_.size();
  bool request_unread = stdin_closed_ || out_offset_ < out_.size() ||
                        !invocation_.request.body_complete();
  if (garbage && (hold_ || !invocation_.response.started()))
    return broken(StopReason::kProtocol, Error::Code::kBadGateway,
                  "invalid http response from function: bytes after the body");
  if (garbage || request_unread) {
    // The response is whole, but the stdio stream is out of step: this process cannot be reused.
    static const auto log = common::logger("watchdog.hot");
    log->warn("handler out of step, replacing pid={} reason=\"{}\"", process_.pid(),
              garbage ? "bytes after the response" : "answered before reading the whole request");
    process_.poison(StopReason::kProtocol);
  }
  process_.stdout_buffer_.clear();
  if (!invocation_.response.started())
    return invocation_.response.send(head_.status, client_headers(), held_);
  return invocation_.response.finish(decoder_->trailers());
}

protocol::Headers HotExchange::client_headers() {
  protocol::Headers headers;
  for (auto& header : head_.headers)
    if (!protocol::is_hop_by_hop(header.name) && !protocol::iequals(header.name, "X-Fn-Request-Id"))
      headers.push_back(std::move(header));
  headers.push_back({"X-Fn-Request-Id", invocation_.request_id});
  return headers;
}

common::Status HotExchange::broken(StopReason reason, Error::Code code, std::string why) {
  static const auto log = common::logger("watchdog.hot");
  process_.poison(reason);
  if (reason == StopReason::kProtocol || reason == StopReason::kExited) {
    std::string_view bytes = process_.stdout_buffer_;
    log->error("handler broke the protocol pid={} reason=\"{}\" first_bytes=\"{}\"", process_.pid(),
               why, first_bytes(bytes));
  }
  if (invocation_.response.started()) invocation_.response.abort();
  return common::fail(code, std::move(why));
}

}  // namespace watchdog
