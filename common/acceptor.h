// The accepting end of the listening socket, which never gives up: accept4 without blocking, and
// when the process is out of file descriptors (EMFILE, ENFILE) the classic spare fd (libev's and
// nginx's answer): the spare /dev/null is closed, the waiting connection accepted into its slot
// and closed at once (the client sees a reset rather than a hang in the backlog), and the spare
// reopened. The caller then pauses accepting for a moment. An episode of shortage is logged once,
// at its start, and once at its end: the first accept a second after the last failure (an fd freed
// now and then by the server's own work does not make each failure an episode of its own).
#pragma once

#include <sys/socket.h>

#include <chrono>
#include <cstdint>

#include "common/http_exchange.h"
#include "common/unique_fd.h"

namespace common {

// The peer of an accepted socket, as ClientRequest reports it.
PeerInfo peer_info(const sockaddr_storage& address, socklen_t length);

class Acceptor {
 public:
  // Takes the listening socket and makes it non-blocking; opens the spare fd.
  explicit Acceptor(UniqueFd listener);

  enum class Result {
    kAccepted,  // *accepted holds the connection (blocking, close-on-exec)
    kNone,      // nothing waits (EAGAIN), or a connection vanished before it was taken
    kShed,      // out of fds: one waiting connection was closed; pause before the next accept
    kFailed,    // another error (logged once per episode); pause too
  };
  struct Accepted {
    UniqueFd fd;
    PeerInfo peer;
  };
  Result accept(Accepted* accepted);

  int fd() const noexcept { return listener_.get(); }
  bool open() const noexcept { return listener_.valid(); }
  // Closes the listening socket: new connections are refused from now on.
  void close() noexcept { listener_.reset(); }
  std::uint64_t shed() const noexcept { return shed_; }

 private:
  void begin_episode(int error);
  void end_episode();

  UniqueFd listener_;
  UniqueFd spare_;
  bool in_episode_ = false;
  std::chrono::steady_clock::time_point last_failure_{};
  std::uint64_t shed_ = 0;          // connections closed for want of fds, since the start
  std::uint64_t episode_shed_ = 0;  // ... in this episode
};

}  // namespace common
