// Whether a process is running (or runnable) right now, from /proc/PID/stat: the one question
// the kernel answers about a process between its syscalls, without ptrace rights.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <optional>
#include <string_view>

#include "common/unique_fd.h"

namespace common {

// The state letter of a /proc/PID/stat line ('R', 'S', 'D', 'Z', ...): the field after the
// command, which is in parentheses and may itself hold spaces and ')'. nullopt if malformed. Pure.
std::optional<char> proc_stat_state(std::string_view line) noexcept;

class ProcessState {
 public:
  // Opens /proc/PID/stat once (re-read on each question); a process that cannot be looked at
  // counts as not running.
  explicit ProcessState(pid_t pid) noexcept;

  // The main thread is running or waiting for a CPU.
  bool running() const noexcept;
  // Waits, at most `bound`, until running() is false: yields at first, then sleeps 100 us a time.
  void wait_until_not_running(std::chrono::microseconds bound) const noexcept;

 private:
  UniqueFd stat_;
};

}  // namespace common
