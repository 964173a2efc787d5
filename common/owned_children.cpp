#include "common/owned_children.h"

#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>
#include <system_error>
#include <unordered_set>
#include <vector>

namespace common {
namespace {

std::atomic<bool> enabled{false};
std::atomic<bool> subreaper{false};
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

// Calls visit(pid, state) for every process of /proc whose parent is this process.
template <class Visit>
void scan_proc_children(Visit visit) {
  pid_t self = ::getpid();
  std::error_code ec;
  for (const auto& entry : std::filesystem::directory_iterator("/proc", ec)) {
    const std::string name = entry.path().filename();
    if (name.empty() || name.find_first_not_of("0123456789") != std::string::npos) continue;
    char state = 0;
    pid_t parent = 0;
    if (read_stat(entry.path(), state, parent) && parent == self)
      visit(static_cast<pid_t>(std::stol(name)), state);
  }
}

// The children of this process that can be orphans: those of its main thread, from
// /proc/self/task/PID/children (CONFIG_PROC_CHILDREN). An orphan is reparented to the first live
// thread of its subreaper, which is the main thread while it lives (in both binaries it waits for
// signals until exit); a Child is listed under the thread that spawned it, and is no orphan anyway.
// One small read per call. Falls back to a scan of /proc (every thread's children) when the file
// does not exist.
std::vector<pid_t> children_of_self() {
  std::vector<pid_t> pids;
  pid_t self = ::getpid();
  std::ifstream in("/proc/self/task/" + std::to_string(self) + "/children");
  if (in) {
    for (pid_t pid; in >> pid;) pids.push_back(pid);
    return pids;
  }
  scan_proc_children([&](pid_t pid, char) { pids.push_back(pid); });
  return pids;
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

void become_subreaper() {
  if (::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
    throw std::system_error(errno, std::system_category(), "prctl(PR_SET_CHILD_SUBREAPER)");
  enable_orphan_reaping();
  subreaper.store(true, std::memory_order_release);
}

bool is_subreaper() noexcept { return subreaper.load(std::memory_order_acquire); }

int end_orphans() {
  if (!is_subreaper()) return 0;
  int ended = 0;
  // Under the lock, so no Child is spawned (and not yet recorded) or reaped meanwhile. The pids
  // read are our children: nobody but us can reap them, so none is reused before the kill. Each
  // round ends what the last one orphaned; the bound only guards against a bug.
  OwnedChildren::Guard guard;
  for (int round = 0; round < 1000; ++round) {
    std::vector<pid_t> orphans;
    for (pid_t pid : children_of_self())
      if (!guard.owns(pid)) orphans.push_back(pid);
    if (orphans.empty()) break;
    for (pid_t pid : orphans) ::kill(pid, SIGKILL);
    for (pid_t pid : orphans) {
      int status = 0;
      while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
      }
    }
    ended += static_cast<int>(orphans.size());
  }
  return ended;
}

int reap_orphans() {
  if (!enabled.load(std::memory_order_acquire)) return 0;
  int reaped = 0;
  scan_proc_children([&](pid_t pid, char state) {
    if (state != 'Z') return;
    OwnedChildren::Guard guard;
    int status = 0;
    if (!guard.owns(pid) && ::waitpid(pid, &status, WNOHANG) == pid) ++reaped;
  });
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
