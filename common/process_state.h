// Whether a process is between syscalls' work right now, from /proc/PID/stat (no ptrace rights
// needed): running, runnable or in an uninterruptible wait, or settled (sleeping, stopped, gone).
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
  // counts as settled.
  explicit ProcessState(pid_t pid) noexcept;

  // The main thread is not running, runnable or in an uninterruptible wait ('R', 'D'): it
  // sleeps (a blocking read), is stopped, or is gone.
  bool settled() const noexcept;
  // Waits, at most `bound`, until settled(): yields at first, then sleeps 100 us a time. Whether
  // it settled.
  bool wait_until_settled(std::chrono::microseconds bound) const noexcept;

 private:
  UniqueFd stat_;
};

}  // namespace common
