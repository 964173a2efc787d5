// A move-only owner of one file descriptor (MPD's UniqueFileDescriptor): closed exactly once, by the
// destructor or reset(). Every fd fastfn creates is O_CLOEXEC, so none leaks into a child.
#pragma once

#include <utility>

namespace common {

class UniqueFd {
 public:
  UniqueFd() noexcept = default;
  explicit UniqueFd(int fd) noexcept : fd_(fd) {}
  UniqueFd(UniqueFd&& other) noexcept : fd_(other.release()) {}
  UniqueFd& operator=(UniqueFd&& other) noexcept {
    reset(other.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;
  ~UniqueFd() { reset(); }

  int get() const noexcept { return fd_; }
  bool valid() const noexcept { return fd_ >= 0; }
  explicit operator bool() const noexcept { return valid(); }
  int release() noexcept { return std::exchange(fd_, -1); }
  void reset(int fd = -1) noexcept;

 private:
  int fd_ = -1;
};

// A pipe as two owned ends, both O_CLOEXEC. Throws std::system_error when pipe2 fails.
struct Pipe {
  UniqueFd read;
  UniqueFd write;
  static Pipe create();
};

// Sets or clears O_NONBLOCK. Throws std::system_error on failure.
void set_nonblocking(int fd, bool nonblocking = true);

}  // namespace common
