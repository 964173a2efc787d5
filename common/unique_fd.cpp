#include "common/unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <system_error>

namespace common {

void UniqueFd::reset(int fd) noexcept {
  // close() is not retried on EINTR: on Linux the fd is released either way.
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

Pipe Pipe::create() {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) throw std::system_error(errno, std::system_category(), "pipe2");
  return Pipe{UniqueFd(fds[0]), UniqueFd(fds[1])};
}

void set_nonblocking(int fd, bool nonblocking) {
  int flags = ::fcntl(fd, F_GETFL);
  if (flags < 0) throw std::system_error(errno, std::system_category(), "fcntl(F_GETFL)");
  flags = nonblocking ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  if (::fcntl(fd, F_SETFL, flags) != 0)
    throw std::system_error(errno, std::system_category(), "fcntl(F_SETFL)");
}

ssize_t read_append(int fd, std::string& buffer) {
  char piece[kReadPiece];
  ssize_t n;
  while ((n = ::read(fd, piece, sizeof piece)) < 0 && errno == EINTR) {
  }
  if (n > 0) buffer.append(piece, static_cast<std::size_t>(n));
  return n;
}

}  // namespace common
