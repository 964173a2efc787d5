#include "common/upstream_exchange.h"

#include <poll.h>
#include <sched.h>
#include <sys/ioctl.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <optional>

#include <fmt/format.h>

#include "common/unique_fd.h"
#include "protocol/http_parser.h"
#include "protocol/http_writer.h"

namespace common {
namespace {

using Clock = std::chrono::steady_clock;

// How long an upstream may go on once its client has gone: a short request finishes (and its
// process stays for the next one), a long one is stopped (a process spawned per abandoned
// request would cost far more than letting it finish).
constexpr std::chrono::milliseconds kAbandonedGrace{1000};

int poll_timeout(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
  return left.count() <= 0 ? 0 : static_cast<int>(std::min<long long>(left.count() + 1, 60'000));
}

// The first bytes of a broken response, printable, for the log line that explains the 502.
std::string first_bytes(std::string_view bytes) {
  std::string shown;
  for (char c : bytes.substr(0, 80)) {
    auto byte = static_cast<unsigned char>(c);
    if (c == '\n') shown += "\\n";
    else if (c == '\r') shown += "\\r";
    else if (c == '"' || c == '\\') shown += std::string("\\") + c;
    else if (byte < 0x20 || byte > 0x7e) shown += fmt::format("\\x{:02x}", byte);
    else shown += c;
  }
  return shown;
}

// Bytes written into a pipe and not yet read by the process at its other end.
std::uint64_t unread_in_pipe(int fd) {
  int unread = 0;
  return ::ioctl(fd, FIONREAD, &unread) == 0 && unread > 0 ? static_cast<std::uint64_t>(unread) : 0;
}

class Exchange {
 public:
  Exchange(const UpstreamChannel& channel, const UpstreamRequest& request, ClientRequest& client,
           ClientResponse& response)
      : channel_(channel), request_(request), client_(client), response_(response),
        out_(request.head) {}

  UpstreamResult run();

 private:
  enum class Phase { kHead, kBody, kDone };

  Status refill_request();
  void write_request();
  bool waiting_for_head_read() const { return !body_gate_open_ && out_offset_ == out_.size(); }
  int poll_timeout_now();
  void abandon();
  Status read_response();
  Status parse_response();
  Status start_response();
  Status take_body();
  Status check_answer_order();
  Status answered_first(std::string_view evidence);
  UpstreamResult complete();
  protocol::Headers client_headers();
  Status fail(UpstreamState state, Error::Code code, std::string why);

  const UpstreamChannel& channel_;
  const UpstreamRequest& request_;
  ClientRequest& client_;
  ClientResponse& response_;
  bool request_pending() const {
    return out_offset_ < out_.size() || !piece_.empty() || after_offset_ < after_.size();
  }

  // The request bytes not yet written, in order: owned bytes (the head or a chunk-size line), a
  // piece of the client's body (a view into its connection buffer, valid until the next
  // read_body), then owned bytes again (a chunk's CRLF, the last chunk).
  std::string out_;
  std::size_t out_offset_ = 0;
  std::string_view piece_;
  std::string after_;
  std::size_t after_offset_ = 0;
  std::uint64_t written_ = 0;  // request bytes written to the channel
  // Closed while a pipe's reader has not read the whole head: only head bytes are written.
  bool body_gate_open_ = true;
  int gate_polls_ = 0;
  bool body_sent_;
  bool write_closed_ = false;
  bool watch_client_ = true;
  bool abandoned_ = false;  // the client went away: the response is read and dropped
  Clock::time_point deadline_;
  std::size_t offset_ = 0;  // into channel_.buffer
  Phase phase_ = Phase::kHead;
  protocol::ResponseHeadParser head_parser_;
  protocol::ResponseHead head_;
  protocol::BodyFraming client_framing_;  // as the upstream announced it (kept for HEAD)
  std::optional<protocol::BodyDecoder> decoder_;
  bool hold_ = false;
  std::string held_;
  PipeOrderState order_;  // as check_answer_order() last found it
  UpstreamResult result_;
};

UpstreamResult Exchange::run() {
  deadline_ = request_.deadline;
  body_sent_ = request_.body == RequestBody::kNone || client_.body_complete();
  piece_ = request_.held_body;
  body_gate_open_ = !channel_.pipe || (request_.body == RequestBody::kNone && piece_.empty());
  if (request_.body == RequestBody::kChunked && client_.body_complete())
    protocol::append_last_chunk(out_);
  write_request();  // a pipe or socket between requests has room: no poll for the first write
  while (phase_ != Phase::kDone) {
    if (auto refilled = refill_request(); !refilled) return result_;
    if (Clock::now() >= deadline_) {
      if (abandoned_)
        fail(UpstreamState::kAbandoned, Error::Code::kClientGone,
             "the client went away and the function did not finish within the grace");
      else
        fail(UpstreamState::kTimedOut, Error::Code::kTimeout, "the function ran past its timeout");
      return result_;
    }
    bool writing = !write_closed_ && request_pending() && !waiting_for_head_read();
    // Once its body is read, a client that hangs up ends the exchange (as nginx does) instead of
    // leaving the upstream to work for nobody until the deadline.
    bool watching_client = watch_client_ && client_.body_complete();
    pollfd fds[3] = {{channel_.read_fd, POLLIN, 0},
                     {watching_client ? client_.fd() : -1, POLLIN | POLLRDHUP, 0},
                     {writing ? channel_.write_fd : -1, POLLOUT, 0}};
    if (::poll(fds, 3, poll_timeout_now()) < 0 && errno != EINTR) {
      fail(UpstreamState::kClosed, Error::Code::kInternal, "poll failed");
      return result_;
    }
    if (fds[1].revents) {
      watch_client_ = false;  // gone, or a pipelined request waits in the socket: stop polling it
      if (client_.peer_gone()) abandon();
    }
    if (fds[2].revents) write_request();
    if (waiting_for_head_read() && unread_in_pipe(channel_.write_fd) == 0) {
      body_gate_open_ = true;
      write_request();
    }
    if (fds[0].revents && !read_response()) return result_;
  }
  return complete();
}

// The kernel has no event for "a pipe was read": while the handler has yet to read the head, the
// pipe is checked again after a yield (it usually reads at once), then every millisecond.
void Exchange::abandon() {
  abandoned_ = true;
  deadline_ = std::min(deadline_, Clock::now() + kAbandonedGrace);
  if (response_.started()) response_.abort();
}

int Exchange::poll_timeout_now() {
  int timeout = poll_timeout(deadline_);
  if (!waiting_for_head_read()) return timeout;
  if (gate_polls_++ < 64) {
    ::sched_yield();
    return 0;
  }
  return std::min(timeout, 1);
}

Status Exchange::refill_request() {
  if (write_closed_ || request_pending() || body_sent_ || !body_gate_open_) return {};
  auto read = client_.read_body(request_.max_body);
  if (!read) return fail(UpstreamState::kAbandoned, read.error().code, read.error().context);
  out_.clear();
  after_.clear();
  out_offset_ = after_offset_ = 0;
  piece_ = *read;
  bool chunked = request_.body == RequestBody::kChunked;
  if (piece_.empty()) {
    body_sent_ = true;
    if (chunked) protocol::append_last_chunk(after_);
  } else if (chunked) {
    out_ = fmt::format("{:x}\r\n", piece_.size());
    after_ = "\r\n";
  }
  return {};
}

void Exchange::write_request() {
  iovec parts[3] = {{out_.data() + out_offset_, out_.size() - out_offset_},
                    {const_cast<char*>(piece_.data()), piece_.size()},
                    {after_.data() + after_offset_, after_.size() - after_offset_}};
  ssize_t n = ::writev(channel_.write_fd, parts, body_gate_open_ ? 3 : 1);
  if (n < 0) {
    if (errno == EPIPE || errno == ECONNRESET) result_.request_unread = out_offset_ == 0;
    if (errno != EAGAIN && errno != EINTR) write_closed_ = true;  // its read side tells why
    return;
  }
  auto written = static_cast<std::size_t>(n);
  written_ += written;
  std::size_t step = std::min(written, parts[0].iov_len);
  out_offset_ += step;
  written -= step;
  step = std::min(written, piece_.size());
  piece_.remove_prefix(step);
  after_offset_ += written - step;
}

Status Exchange::read_response() {
  std::string& buffer = channel_.buffer;
  if (offset_ > 0 && offset_ == buffer.size()) {
    buffer.clear();
    offset_ = 0;
  }
  ssize_t n = read_append(channel_.read_fd, buffer);
  if (n < 0 && errno == EAGAIN) return {};
  if (n < 0 && errno == ECONNRESET && !result_.response_started) result_.request_unread = true;
  if (n <= 0)
    return fail(UpstreamState::kClosed, Error::Code::kBadGateway,
                "the function closed its output before its response was complete");
  bool first = !result_.response_started;
  result_.response_started = true;
  // Whatever was written before a byte of this request was read answers another request.
  if (first && channel_.pipe && unread_in_pipe(channel_.write_fd) >= written_) {
    result_.request_unread = true;
    return answered_first("its stdin still held the request");
  }
  return parse_response();
}

// The events tell whether the process wrote before it read the request, which it may have read
// by now: asked before the response's first byte goes to the client, or once a held response is
// whole, so that a small answer costs one look at them.
Status Exchange::check_answer_order() {
  if (!channel_.order) return {};
  order_ = channel_.order->after_answer_seen();
  if (order_.answered_before_reading())
    return answered_first("it wrote before its first read of the request");
  return {};
}

Status Exchange::answered_first(std::string_view evidence) {
  return fail(UpstreamState::kBroken, Error::Code::kBadGateway,
              fmt::format("the function answered before reading any of its request (an earlier "
                          "request's late answer; {})",
                          evidence));
}

Status Exchange::parse_response() {
  if (phase_ == Phase::kHead) {
    // Parsed on from where the last read ended: a head that trickles in costs linear time.
    auto parsed = head_parser_.parse(std::string_view(channel_.buffer).substr(offset_));
    if (parsed == protocol::ParseStatus::kIncomplete) return {};
    if (parsed == protocol::ParseStatus::kError)
      return fail(UpstreamState::kBroken, Error::Code::kBadGateway,
                  "invalid http response from function: " +
                      std::string(protocol::describe(head_parser_.error())));
    offset_ += head_parser_.consumed();
    head_ = std::move(head_parser_.head());
    head_parser_ = protocol::ResponseHeadParser();
    // An interim response (100 Continue to a client's Expect) is not the answer: skip it.
    if (head_.status >= 100 && head_.status < 200 && head_.status != 101) return parse_response();
    if (auto started = start_response(); !started) return started;
  }
  return take_body();
}

Status Exchange::start_response() {
  if (head_.status < 200)
    return fail(UpstreamState::kBroken, Error::Code::kBadGateway,
                "invalid http response from function: interim status " +
                    std::to_string(head_.status));
  auto framing = protocol::response_framing(head_, "GET");
  if (!framing.ok || framing.framing.kind == protocol::BodyKind::kUntilClose)
    return fail(UpstreamState::kBroken, Error::Code::kBadGateway,
                "invalid http response from function: " +
                    std::string(framing.ok ? "no Content-Length and not chunked"
                                           : protocol::describe(framing.error)));
  client_framing_ = framing.framing;
  if (request_.method == "HEAD") framing.framing.kind = protocol::BodyKind::kNone;
  decoder_.emplace(framing.framing, protocol::Limits{64 * 1024, 100, UINT64_MAX});
  hold_ = framing.framing.kind != protocol::BodyKind::kChunked &&
          framing.framing.length <= request_.hold_limit;
  phase_ = Phase::kBody;
  if (hold_ || abandoned_) return {};
  if (auto ordered = check_answer_order(); !ordered) return ordered;
  return response_.start(head_.status, client_headers(), client_framing_, head_.reason);
}

Status Exchange::take_body() {
  while (phase_ == Phase::kBody) {
    auto step = decoder_->next(std::string_view(channel_.buffer).substr(offset_));
    if (step.status == protocol::ParseStatus::kError)
      return fail(UpstreamState::kBroken, Error::Code::kBadGateway,
                  "invalid http response body from function: " +
                      std::string(protocol::describe(step.error)));
    offset_ += step.consumed;
    if (!step.data.empty()) {
      if (hold_) held_.append(step.data);
      else if (abandoned_) continue;
      else if (auto written = response_.write(step.data); !written)
        return fail(UpstreamState::kAbandoned, written.error().code, written.error().context);
    }
    if (step.status == protocol::ParseStatus::kComplete) phase_ = Phase::kDone;
    else if (step.consumed == 0) return {};
  }
  return {};
}

UpstreamResult Exchange::complete() {
  if (!check_answer_order()) return result_;
  bool garbage = offset_ < channel_.buffer.size();
  if (garbage && hold_) {
    fail(UpstreamState::kBroken, Error::Code::kBadGateway,
         "invalid http response from function: bytes after the body");
    return result_;
  }
  bool request_unsent = write_closed_ || request_pending() || !body_sent_;
  std::uint64_t unread = !request_unsent && channel_.pipe ? unread_in_pipe(channel_.write_fd) : 0;
  if (garbage) {
    result_.state = UpstreamState::kOutOfStep;
    result_.detail = "bytes after the response: \"" +
                     first_bytes(std::string_view(channel_.buffer).substr(offset_)) + "\"";
  } else if (request_unsent) {
    result_.state = UpstreamState::kOutOfStep;
    result_.detail = "it answered before reading the whole request (the rest was never sent)";
  } else if (unread > 0) {
    result_.state = UpstreamState::kOutOfStep;
    result_.detail = fmt::format(
        "it answered without reading all of its request: {} bytes left unread in its stdin", unread);
  } else if (channel_.order && order_.read_after_answering()) {
    result_.state = UpstreamState::kOutOfStep;
    result_.detail = "it read its stdin after it began to answer: bytes of its request it had not "
                     "read before answering";
  } else if (!protocol::keeps_alive(head_.headers, head_.version_minor)) {
    result_.state = UpstreamState::kClosing;
    result_.detail = "it said it closes after this response";
  }
  channel_.buffer.clear();
  if (request_.upstream_done) request_.upstream_done(result_.state, result_.detail);
  if (abandoned_) {
    result_.status = tl::unexpected(Error{Error::Code::kClientGone, "the client went away"});
  } else if (hold_) {
    auto headers = client_headers();
    if (request_.method == "HEAD") {
      response_.start(head_.status, std::move(headers), client_framing_, head_.reason);
      result_.status = response_.finish();
    } else {
      result_.status = response_.send(head_.status, std::move(headers), held_, head_.reason);
    }
  } else {
    result_.status = response_.finish(decoder_->trailers());
  }
  // A client that left during finish() leaves the upstream in step: it stays reusable.
  return result_;
}

protocol::Headers Exchange::client_headers() {
  std::optional<protocol::Header> latency;
  if (request_.latency_since) {
    std::chrono::duration<double, std::milli> ms =
        std::chrono::steady_clock::now() - *request_.latency_since;
    latency = protocol::Header{"X-Fn-Latency-Ms", fmt::format("{:.3f}", ms.count())};
  }
  auto ours = [&](std::string_view name) {
    for (const auto& extra : request_.response_headers)
      if (protocol::iequals(extra.name, name)) return true;
    return latency && protocol::iequals(latency->name, name);
  };
  protocol::Headers headers;
  for (auto& header : head_.headers)
    if (!protocol::is_hop_by_hop(header.name) && !ours(header.name))
      headers.push_back(std::move(header));
  headers.insert(headers.end(), request_.response_headers.begin(), request_.response_headers.end());
  if (latency) headers.push_back(std::move(*latency));
  return headers;
}

Status Exchange::fail(UpstreamState state, Error::Code code, std::string why) {
  result_.state = state;
  if (state == UpstreamState::kBroken || state == UpstreamState::kClosed)
    result_.detail = why + "; first bytes: \"" + first_bytes(channel_.buffer) + "\"";
  else
    result_.detail = why;
  if (response_.started()) response_.abort();
  result_.status = tl::unexpected(Error{code, std::move(why)});
  return result_.status;
}

}  // namespace

UpstreamResult exchange_with_upstream(const UpstreamChannel& channel, const UpstreamRequest& request,
                                      ClientRequest& client, ClientResponse& response) {
  return Exchange(channel, request, client, response).run();
}

}  // namespace common
