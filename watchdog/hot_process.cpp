#include "watchdog/hot_process.h"

#include <poll.h>
#include <unistd.h>

#include "common/logging.h"
#include "common/upstream_exchange.h"
#include "protocol/http_writer.h"

namespace watchdog {

const char* stop_reason_name(StopReason reason) noexcept {
  switch (reason) {
    case StopReason::kTimeout: return "timeout";
    case StopReason::kProtocol: return "protocol";
    case StopReason::kExited: return "exited";
    case StopReason::kClientGone: return "client_gone";
    case StopReason::kIdle: return "idle";
    case StopReason::kRecycle: return "recycle";
    case StopReason::kMaxRequests: return "max_requests";
    case StopReason::kShutdown: return "shutdown";
  }
  return "exited";
}

common::Result<std::unique_ptr<HotProcess>> HotProcess::spawn(const common::SpawnOptions& options,
                                                              StderrPump& pump,
                                                              std::uint64_t generation) {
  auto child = common::Child::spawn(options);
  if (!child) return tl::unexpected(child.error());
  common::set_nonblocking(child->stdin_fd().get());
  common::set_nonblocking(child->stdout_fd().get());
  auto tag = std::make_shared<LogTag>(child->pid());
  pump.add(std::move(child->stderr_fd()), tag);
  return std::unique_ptr<HotProcess>(new HotProcess(std::move(*child), std::move(tag), generation));
}

HotProcess::HotProcess(common::Child child, std::shared_ptr<LogTag> tag, std::uint64_t generation)
    : child_(std::move(child)),
      tag_(std::move(tag)),
      generation_(generation),
      spawned_at_(Clock::now()),
      last_used_(spawned_at_) {}

void HotProcess::poison(StopReason reason) noexcept {
  if (!poisoned_) poisoned_ = reason;
}

bool HotProcess::check_idle() {
  if (poisoned_) return false;
  // One poll per request for both questions: has it exited (its pidfd reads ready), and did it
  // write anything (or close stdout) between requests, which puts the stream out of step (Fn
  // shuts such a container down too).
  pollfd fds[2] = {{child_.exit_fd(), POLLIN, 0}, {child_.stdout_fd().get(), POLLIN, 0}};
  if (::poll(fds, 2, 0) <= 0) return true;
  if (fds[0].revents && child_.try_reap()) poison(StopReason::kExited);
  else poison(StopReason::kProtocol);
  return false;
}

namespace {

// The stdio protocol needs the length first: a chunked body is held (bounded by max-body).
common::Result<std::string> read_whole_body(common::ClientRequest& request, std::uint64_t max_body) {
  std::string body;
  for (;;) {
    auto piece = request.read_body(max_body);
    if (!piece) return tl::unexpected(piece.error());
    if (piece->empty()) return body;
    body.append(*piece);
  }
}

std::optional<StopReason> stop_reason(common::UpstreamState state) {
  switch (state) {
    case common::UpstreamState::kReusable: return std::nullopt;
    case common::UpstreamState::kOutOfStep:
    case common::UpstreamState::kBroken: return StopReason::kProtocol;
    case common::UpstreamState::kClosed: return StopReason::kExited;
    case common::UpstreamState::kTimedOut: return StopReason::kTimeout;
    case common::UpstreamState::kAbandoned: return StopReason::kClientGone;
  }
  return StopReason::kExited;
}

}  // namespace

common::Status HotProcess::serve(Invocation& invocation, std::uint64_t max_body,
                                 const std::function<void()>& done) {
  static const auto log = common::logger("watchdog.hot");
  auto& client = invocation.request;
  common::UpstreamRequest request;
  request.method = client.method();
  request.max_body = max_body;
  request.deadline = invocation.deadline;
  request.response_headers = {{"X-Fn-Request-Id", invocation.request_id}};
  std::string held;
  if (!client.content_length()) {
    auto body = read_whole_body(client, max_body);
    if (!body) return tl::unexpected(body.error());
    held = std::move(*body);
  }
  std::uint64_t length = client.content_length().value_or(held.size());
  protocol::append_hot_request_head(request.head, client.head(),
                                    {invocation.request_id, invocation.deadline_unix_ms, length});
  request.head += held;
  request.body = length > 0 && held.empty() ? common::RequestBody::kAsIs : common::RequestBody::kNone;

  tag_->set_request(invocation.request_id);
  // The request id stays after the exchange: stderr lines the handler wrote for this request may
  // still be in the pipe.
  bool settled = false;
  auto settle = [&](common::UpstreamState state, bool ok, const std::string& detail) {
    settled = true;
    ++requests_;
    last_used_ = Clock::now();
    if (auto reason = stop_reason(state)) {
      poison(*reason);
      if (*reason == StopReason::kProtocol || *reason == StopReason::kExited)
        log->error("handler broke the protocol pid={} reason=\"{}\"", pid(), detail);
    } else if (ok) {
      ++successes_;
    }
    done();  // from here on the process may serve another request: no member is touched
  };
  request.upstream_done = [&](common::UpstreamState state) { settle(state, true, ""); };
  auto result = common::exchange_with_upstream(
      {child_.stdin_fd().get(), child_.stdout_fd().get(), stdout_buffer_}, request, client,
      invocation.response);
  if (!settled) settle(result.state, result.status.has_value(), result.detail);
  return result.status;
}

}  // namespace watchdog
