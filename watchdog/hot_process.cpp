#include "watchdog/hot_process.h"

#include <poll.h>
#include <unistd.h>

#include "watchdog/hot_exchange.h"

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
  if (child_.try_reap()) {
    poison(StopReason::kExited);
    return false;
  }
  // Bytes (or EOF) on stdout between requests mean the stream is out of step (Fn shuts such a
  // container down too).
  pollfd fd{child_.stdout_fd().get(), POLLIN, 0};
  if (::poll(&fd, 1, 0) > 0) {
    poison(StopReason::kProtocol);
    return false;
  }
  return true;
}

common::Status HotProcess::serve(Invocation& invocation, std::uint64_t max_body) {
  tag_->set_request(invocation.request_id);
  auto served = HotExchange(*this, invocation, max_body).run();
  tag_->set_request("");
  ++requests_;
  if (served && !poisoned_) ++successes_;
  last_used_ = Clock::now();
  return served;
}

}  // namespace watchdog
