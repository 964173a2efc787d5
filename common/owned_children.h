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

// Makes this process the subreaper of its descendants (PR_SET_CHILD_SUBREAPER): a process that a
// child of ours orphans (setsid and a double fork, "sleep &" in a shell that exits) is reparented to
// us instead of to init, so we can end it. Also turns recording on, and makes every Child's reap
// call end_orphans(). Spawn every Child with SpawnOptions::contain_descendants then, so that what a
// LIVE child orphans stays below it (it is the subreaper of its own tree) and only comes to us when
// that child exits: any child of ours that no Child owns is then a leftover of one that has ended.
// Call before the first Child is spawned. Throws std::system_error if prctl fails.
void become_subreaper();

// True once become_subreaper() was called.
bool is_subreaper() noexcept;

// In a subreaper process, kills (SIGKILL) and reaps every child of this process that no Child owns,
// and then what those leave behind in turn, until none is left. Returns how many processes it
// ended; 0 (and nothing done) unless become_subreaper() was called. Child::try_reap calls it; call
// it yourself after stopping something that was not a Child.
int end_orphans();

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
