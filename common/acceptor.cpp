#include "common/acceptor.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>

#include <cerrno>
#include <cstring>

#include "common/logging.h"

namespace common {
namespace {

constexpr std::chrono::seconds kEpisodeQuiet{1};

UniqueFd open_spare() { return UniqueFd(::open("/dev/null", O_RDONLY | O_CLOEXEC)); }

bool out_of_fds(int error) {
  return error == EMFILE || error == ENFILE || error == ENOBUFS || error == ENOMEM;
}

// The connection went away between the kernel's accept and ours: nothing to do about it.
bool vanished(int error) {
  return error == ECONNABORTED || error == EPROTO || error == EINTR || error == EPERM ||
         error == ENETDOWN || error == ENOPROTOOPT || error == EHOSTDOWN || error == ENONET ||
         error == EHOSTUNREACH || error == EOPNOTSUPP || error == ENETUNREACH;
}

}  // namespace

PeerInfo peer_info(const sockaddr_storage& address, socklen_t length) {
  PeerInfo peer;
  char text[INET6_ADDRSTRLEN] = {};
  if (length >= sizeof(sockaddr_in) && address.ss_family == AF_INET) {
    const auto& in = reinterpret_cast<const sockaddr_in&>(address);
    ::inet_ntop(AF_INET, &in.sin_addr, text, sizeof text);
    peer.remote_host = text;
    peer.remote_port = std::to_string(ntohs(in.sin_port));
  } else if (length >= sizeof(sockaddr_in6) && address.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(address);
    ::inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof text);
    peer.remote_host = text;
    peer.remote_port = std::to_string(ntohs(in6.sin6_port));
  } else {
    peer.unix_socket = true;  // AF_UNIX, named or not
  }
  return peer;
}

Acceptor::Acceptor(UniqueFd listener) : listener_(std::move(listener)), spare_(open_spare()) {
  set_nonblocking(listener_.get());
}

Acceptor::Result Acceptor::accept(Accepted* accepted) {
  if (!listener_) return Result::kNone;
  sockaddr_storage address{};
  socklen_t length = sizeof address;
  int fd = ::accept4(listener_.get(), reinterpret_cast<sockaddr*>(&address), &length, SOCK_CLOEXEC);
  if (fd >= 0) {
    if (in_episode_ && std::chrono::steady_clock::now() - last_failure_ >= kEpisodeQuiet)
      end_episode();
    accepted->fd = UniqueFd(fd);
    accepted->peer = peer_info(address, length);
    return Result::kAccepted;
  }
  int error = errno;
  if (error == EAGAIN || error == EWOULDBLOCK || vanished(error)) return Result::kNone;
  begin_episode(error);
  if (!out_of_fds(error)) return Result::kFailed;
  // The spare's slot takes the waiting connection, which is closed at once; without a spare (it
  // could not be reopened last time) the connection waits in the backlog for the pause.
  if (spare_) {
    spare_.reset();
    UniqueFd shed(::accept4(listener_.get(), nullptr, nullptr, SOCK_CLOEXEC));
    if (shed) {
      ++shed_;
      ++episode_shed_;
    }
    shed.reset();
    spare_ = open_spare();
  } else {
    spare_ = open_spare();
  }
  return Result::kShed;
}

void Acceptor::begin_episode(int error) {
  last_failure_ = std::chrono::steady_clock::now();
  if (in_episode_) return;
  in_episode_ = true;
  episode_shed_ = 0;
  logger("http")->warn("cannot accept connections, shedding and pausing error=\"{}\"",
                       std::strerror(error));
}

void Acceptor::end_episode() {
  in_episode_ = false;
  logger("http")->info("accepting connections again shed={}", episode_shed_);
}

}  // namespace common
