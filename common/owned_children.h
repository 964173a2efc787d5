// The pids of the Child objects alive in this process, for a process that is PID 1 (a container's
// entrypoint): orphans of other processes are reparented to it and must be reaped, but never a
// Child's own process, whose exit status its owner reads. Recording is off (and free) until
// enable_orphan_reaping().
#pragma once

#include <sys/types.h>

#include <condition_variable>
#include <mutex>
#include <thread>

namespace common {

class OwnedChildren {
 public:
  // Holds the lock while a child is spawned and recorded, or removed, or while orphans are reaped;
  // a no-op unless reaping is enabled.
  class Guard {
   public:
    Guard();
    ~Guard();
    Guard(const Guard&) = delete;
    Guard& operator=(const Guard&) = delete;
    void add(pid_t pid);
    void remove(pid_t pid);
    bool owns(pid_t pid) const;

   private:
    std::unique_lock<std::mutex> lock_;
  };
};

// Turns recording on. Call before the first Child is spawned.
void enable_orphan_reaping();

// Reaps every exited child of this process that no Child owns (scanning /proc). Returns how many;
// 0 unless reaping is enabled.
int reap_orphans();

// When this process is PID 1, enables reaping and reaps orphans every `interval` on a thread
// of its own until destroyed; otherwise does nothing (the init system reaps them).
class OrphanReaper {
 public:
  explicit OrphanReaper(std::chrono::milliseconds interval = std::chrono::milliseconds(500));
  ~OrphanReaper();
  OrphanReaper(const OrphanReaper&) = delete;
  OrphanReaper& operator=(const OrphanReaper&) = delete;

 private:
  std::mutex mutex_;
  std::condition_variable_any wake_;
  std::jthread thread_;
};

}  // namespace common
