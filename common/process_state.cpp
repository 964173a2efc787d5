#include "common/process_state.h"

#include <fcntl.h>
#include <sched.h>
#include <unistd.h>

#include <string>
#include <thread>

namespace common {

std::optional<char> proc_stat_state(std::string_view line) noexcept {
  auto close = line.rfind(')');  // the last one: the command may contain ')'
  if (close == std::string_view::npos || close + 2 >= line.size() || line[close + 1] != ' ')
    return std::nullopt;
  return line[close + 2];
}

ProcessState::ProcessState(pid_t pid) noexcept
    : stat_(::open(("/proc/" + std::to_string(pid) + "/stat").c_str(), O_RDONLY | O_CLOEXEC)) {}

bool ProcessState::settled() const noexcept {
  if (!stat_) return true;
  char buffer[512];  // the state is within the first 16 + 64 bytes (pid, up to 64 of command)
  ssize_t n = ::pread(stat_.get(), buffer, sizeof(buffer), 0);
  if (n <= 0) return true;
  auto state = proc_stat_state({buffer, static_cast<std::size_t>(n)});
  return state != 'R' && state != 'D';
}

bool ProcessState::wait_until_settled(std::chrono::microseconds bound) const noexcept {
  auto give_up = std::chrono::steady_clock::now() + bound;
  for (int round = 0; !settled(); ++round) {
    if (std::chrono::steady_clock::now() >= give_up) return false;
    if (round < 16)
      ::sched_yield();  // it may be waiting for this CPU
    else
      std::this_thread::sleep_for(std::chrono::microseconds(100));
  }
  return true;
}

}  // namespace common
