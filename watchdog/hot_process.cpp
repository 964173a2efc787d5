#include "watchdog/hot_process.h"

#include <poll.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include <system_error>

#include "common/logging.h"
#include "common/upstream_exchange.h"
#include "protocol/http_writer.h"

namespace watchdog {

common::Result<std::unique_ptr<PooledProcess>> HotProcess::spawn(const SpawnContext& context) {
  try {
    return spawn_or_throw(context);
  } catch (const std::system_error& error) {  // no fd or process to be had: EMFILE, EAGAIN
    return common::fail(common::Error::Code::kUnavailable,
                        std::string("cannot start the handler: ") + error.what());
  }
}

common::Result<std::unique_ptr<PooledProcess>> HotProcess::spawn_or_throw(
    const SpawnContext& context) {
  auto child = common::Child::spawn(context.options);
  if (!child) return tl::unexpected(child.error());
  common::set_nonblocking(child->stdin_fd().get());
  common::set_nonblocking(child->stdout_fd().get());
  auto tag = std::make_shared<LogTag>(child->pid());
  context.pump.add(std::move(child->stderr_fd()), tag);
  auto order = context.pipes.watch(child->stdin_fd().get(), child->stdout_fd().get());
  std::unique_ptr<HotProcess> process(
      new HotProcess(std::move(*child), std::move(tag), context.generation, context.clock()));
  process->order_ = std::move(order);
  return std::unique_ptr<PooledProcess>(std::move(process));
}

HotProcess::HotProcess(common::Child child, std::shared_ptr<LogTag> tag, std::uint64_t generation,
                       Clock::time_point now)
    : PooledProcess(std::move(child), generation, now, State::kIdle),
      process_state_(child_.pid()),
      tag_(std::move(tag)) {}

bool HotProcess::check_idle(bool dispatching) {
  if (poisoned()) return false;
  // One poll per request for both questions: has it exited (its pidfd reads ready), and did it
  // write anything (or close stdout) between requests, which puts the stream out of step (Fn
  // shuts such a container down too).
  pollfd fds[2] = {{child_.exit_fd(), POLLIN, 0}, {child_.stdout_fd().get(), POLLIN, 0}};
  if (::poll(fds, 2, 0) > 0) {
    if (fds[0].revents && child_.try_reap()) poison(StopReason::kExited);
    else poison(StopReason::kProtocol);
    return false;
  }
  if (!out_of_step_while_idle(dispatching)) return true;
  poison(StopReason::kProtocol);
  return false;
}

// What it did with its stdin since its last answer: a read then took bytes of the last request it
// had not read before answering, and bytes still unread would be glued to the next request.
bool HotProcess::out_of_step_while_idle(bool dispatching) {
  static const auto log = common::logger("watchdog.hot");
  int unread = 0;
  if (::ioctl(child_.stdin_fd().get(), FIONREAD, &unread) == 0 && unread > 0) {
    log->error("handler broke the protocol pid={} reason=\"it left {} bytes of its last request "
               "unread in its stdin\"", pid(), unread);
    return true;
  }
  if (!order_) return false;
  // The kernel queues the event of a write only after its bytes have reached us: a handler
  // preempted inside the last write of its answer (an answer in several writes: chunks, or Python
  // with PYTHONUNBUFFERED) would have that write taken for an answer to the next request (a late
  // one). It is past that write once it settles, which is at once as a rule (it waits to read its
  // next request); one that is still busy after the bound is judged by its stdin pipe alone.
  constexpr std::chrono::milliseconds kLastWriteBound{100};
  common::PipeOrderState last;
  if (dispatching) {
    bool settled = process_state_.wait_until_settled(kLastWriteBound);
    if (!settled) log->debug("handler still busy after its answer pid={}", pid());
    last = order_->begin(settled);
  } else {
    last = order_->now();
  }
  if (!last.read_after_answering()) return false;
  log->error("handler broke the protocol pid={} reason=\"it read its stdin after it answered: bytes "
             "of its last request it had not read before answering\"", pid());
  return true;
}

namespace {

std::optional<StopReason> stop_reason(common::UpstreamState state) {
  switch (state) {
    case common::UpstreamState::kReusable: return std::nullopt;
    case common::UpstreamState::kClosing: return StopReason::kClosed;
    case common::UpstreamState::kOutOfStep:
    case common::UpstreamState::kBroken: return StopReason::kProtocol;
    case common::UpstreamState::kClosed: return StopReason::kExited;
    case common::UpstreamState::kTimedOut: return StopReason::kTimeout;
    case common::UpstreamState::kAbandoned: return StopReason::kClientGone;
  }
  return StopReason::kExited;
}

}  // namespace

HotProcess::Served HotProcess::serve(Invocation& invocation, const std::optional<std::string>& held,
                                     std::uint64_t max_body, const Done& done) {
  static const auto log = common::logger("watchdog.hot");
  auto& client = invocation.request;
  common::UpstreamRequest request;
  request.method = client.method();
  request.max_body = max_body;
  request.deadline = invocation.deadline;
  request.response_headers = {{"X-Fn-Request-Id", invocation.request_id}};
  std::uint64_t length = held ? held->size() : client.content_length().value_or(0);
  protocol::append_hot_request_head(request.head, client.head(),
                                    {invocation.request_id, invocation.deadline_unix_ms, length});
  if (held) request.held_body = *held;
  request.body = held ? common::RequestBody::kNone : common::RequestBody::kAsIs;

  tag_->set_request(invocation.request_id);
  // The request id stays after the exchange: stderr lines the handler wrote for this request may
  // still be in the pipe.
  bool settled = false;
  auto settle = [&](common::UpstreamState state, bool ok, const std::string& detail) {
    settled = true;
    auto reason = stop_reason(state);
    if (reason == StopReason::kProtocol || reason == StopReason::kExited)
      log->error("handler broke the protocol pid={} reason=\"{}\"", pid(), detail);
    done({ok, reason});  // from here on the process may serve another request: no member is touched
  };
  request.upstream_done = [&](common::UpstreamState state, std::string_view detail) {
    settle(state, true, std::string(detail));
  };
  auto result = common::exchange_with_upstream(
      {child_.stdin_fd().get(), child_.stdout_fd().get(), stdout_buffer_, true, order_.get()}, request,
      client,
      invocation.response);
  if (!settled) settle(result.state, result.status.has_value(), result.detail);
  return {result.status, result.request_unread && held && !invocation.response.started()};
}

}  // namespace watchdog
