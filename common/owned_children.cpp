#include "common/owned_children.h"

#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <string>
#include <unordered_set>

namespace common {
namespace {

std::atomic<bool> enabled{false};
std::mutex mutex;
std::unordered_set<pid_t> owned;

// The state letter and parent pid of /proc/PID/stat ("pid (comm) S ppid ..."; comm may hold
// spaces and parentheses, so parse from the last ')').
bool read_stat(const std::filesystem::path& dir, char& state, pid_t& parent) {
  std::ifstream in(dir / "stat");
  std::string line;
  if (!std::getline(in, line)) return false;
  auto close = line.rfind(')');
  if (close == std::string::npos || close + 4 >= line.size()) return false;
  state = line[close + 2];
  parent = static_cast<pid_t>(std::stol(line.substr(close + 4)));
  return true;
}

}  // namespace

OwnedChildren::Guard::Guard() {
  if (enabled.load(std::memory_order_acquire)) lock_ = std::unique_lock(mutex);
}

OwnedChildren::Guard::~Guard() = default;

void OwnedChildren::Guard::add(pid_t pid) {
  if (lock_) owned.insert(pid);
}

void OwnedChildren::Guard::remove(pid_t pid) {
  if (lock_) owned.erase(pid);
}

bool OwnedChildren::Guard::owns(pid_t pid) const { return lock_ && owned.count(pid) > 0; }

void enable_orphan_reaping() { enabled.store(true, std::memory_order_release); }

int reap_orphans() {
  if (!enabled.load(std::memory_order_acquire)) return 0;
  pid_t self = ::getpid();
  int reaped = 0;
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    char state = 0;
    pid_t parent = 0;
    if (!read_stat(entry.path(), state, parent) || state != 'Z' || parent != self) continue;
    pid_t pid = static_cast<pid_t>(std::stol(name));
    OwnedChildren::Guard guard;
    int status = 0;
    if (!guard.owns(pid) && ::waitpid(pid, &status, WNOHANG) == pid) ++reaped;
  }
  return reaped;
}

OrphanReaper::OrphanReaper(std::chrono::milliseconds interval) {
  if (::getpid() != 1) return;
  enable_orphan_reaping();
  thread_ = std::jthread([this, interval](std::stop_token stop) {
    std::unique_lock lock(mutex_);
    for (;;) {
      wake_.wait_for(lock, stop, interval, [] { return false; });
      if (stop.stop_requested()) return;
      reap_orphans();
    }
  });
}

OrphanReaper::~OrphanReaper() {
  if (thread_.joinable()) {
    thread_.request_stop();
    thread_.join();
  }
}

}  // namespace common
