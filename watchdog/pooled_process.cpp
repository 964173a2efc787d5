#include "watchdog/pooled_process.h"

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
    case StopReason::kClosed: return "closed";
    case StopReason::kStartFailed: return "start_failed";
  }
  return "exited";
}

common::Result<std::optional<std::string>> hold_body(common::ClientRequest& request,
                                                     std::uint64_t max_body) {
  constexpr std::uint64_t kHeldLength = 64 * 1024;
  auto length = request.content_length();
  if (length && *length > kHeldLength) return std::nullopt;
  auto body = request.read_whole_body(max_body);
  if (!body) return tl::unexpected(body.error());
  return std::optional<std::string>(std::move(*body));
}

}  // namespace watchdog
