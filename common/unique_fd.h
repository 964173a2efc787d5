// A move-only owner of one file descriptor (MPD's UniqueFileDescriptor): closed exactly once, by the
// destructor or reset(). Every fd fastfn creates is O_CLOEXEC, so none leaks into a child.
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <string>
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

// Bytes one read(2) may append in read_append.
inline constexpr std::size_t kReadPiece = 64 * 1024;

// One read(2) of up to kReadPiece bytes from `fd` onto the end of `buffer` (retried on EINTR);
// returns what read returned. Through a piece on the stack, because growing the string first
// would zero-fill all 64 KiB of room for an answer of a hundred bytes (9% of the watchdog's CPU
// proxying a fast app).
ssize_t read_append(int fd, std::string& buffer);

}  // namespace common
