// One child process, owned (STYLE.md section 5): its pid, its process group, a pidfd to wait on with
// poll(), and the parent's ends of its stdio pipes. Spawned with clone(CLONE_VM | CLONE_VFORK), as
// glibc's posix_spawn does (the cheapest spawn Linux offers), but with our own code between clone and
// exec so that the child can also be made a subreaper or be given a parent-death signal (prctl calls
// posix_spawn has no hook for). It runs in its own process group, with every fd above 2 closed,
// default signal dispositions and an empty signal mask. The destructor stops and reaps the whole group
// if the owner did not, so no child, grandchild or zombie outlives its owner.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "common/unique_fd.h"

namespace common {

// kStdout is for stderr only: it goes where stdout goes (2>&1), so that the two stay in order on
// one pipe.
enum class Stdio { kPipe, kInherit, kNull, kStdout };

struct SpawnOptions {
  std::vector<std::string> argv;  // REQUIRES: not empty. argv[0] is searched in PATH without a '/'
  std::vector<std::string> env;   // "NAME=value" entries: the child's whole environment
  std::string workdir;            // "" keeps the parent's
  Stdio stdin_mode = Stdio::kPipe;
  Stdio stdout_mode = Stdio::kPipe;
  Stdio stderr_mode = Stdio::kPipe;
  // The child becomes the subreaper of its own descendants (PR_SET_CHILD_SUBREAPER, kept across
  // exec): what it starts and orphans (setsid, double fork) stays below it instead of escaping to
  // init, and comes to this process when the child exits, where end_orphans() ends it. In a process
  // that called become_subreaper(), set it for every child (see owned_children.h).
  bool contain_descendants = false;
  // PR_SET_PDEATHSIG: the child gets this signal when the THREAD that spawned it exits, the process
  // being killed included (0: none). Only for a child whose spawning thread outlives it (a request
  // served on that thread), never for one spawned from a pool thread that may retire.
  int parent_death_signal = 0;
};

struct ExitStatus {
  int code = 0;    // the exit code, or 128 + signal as shells report it
  int signal = 0;  // the signal that ended it, 0 for a normal exit
  bool success() const noexcept { return code == 0 && signal == 0; }
  std::string describe() const;  // "exit code 3", "killed by signal 9 (Killed)"
};

class Child {
 public:
  static constexpr std::chrono::milliseconds kDefaultGrace{1000};

  // Starts a child. Returns kBadGateway with a clear reason ("cannot execute \"x\": No such file or
  // directory", "cannot enter workdir ...") when exec or chdir fails, kUnavailable when no process
  // can be made now (EAGAIN); throws std::system_error when pipes or pidfds cannot be made.
  static Result<Child> spawn(const SpawnOptions& options);

  Child(Child&& other) noexcept;
  Child& operator=(Child&& other) noexcept;
  Child(const Child&) = delete;
  Child& operator=(const Child&) = delete;
  // Stops the group (SIGTERM, kDefaultGrace, SIGKILL) and reaps, unless already reaped.
  ~Child();

  pid_t pid() const noexcept { return pid_; }
  bool running() const noexcept { return pid_ > 0 && !status_; }
  // The parent's pipe ends (invalid for non-pipe stdio); callers may reset() them to close.
  UniqueFd& stdin_fd() noexcept { return stdin_; }
  UniqueFd& stdout_fd() noexcept { return stdout_; }
  UniqueFd& stderr_fd() noexcept { return stderr_; }
  // Readable (POLLIN) once the child has exited; valid until reaped.
  int exit_fd() const noexcept { return pidfd_.get(); }

  // Sends `sig` to the child's whole process group; a no-op once reaped. Thread-safe: may be
  // called from another thread while the owner reaps (the reap and the signal exclude each other,
  // so a reaped, possibly reused, group id is never signalled).
  void signal_group(int sig) noexcept;

  // Reaps the child if it has exited: kills what is left of its group first (a process left behind
  // by a function is an orphan nobody will wait for), then waits; in a subreaper process
  // (become_subreaper()) also ends the orphans it left (end_orphans()). nullopt while it runs.
  std::optional<ExitStatus> try_reap();

  // Waits for the exit until `deadline`; nullopt if it is still running then.
  std::optional<ExitStatus> wait_until(std::chrono::steady_clock::time_point deadline);

  // SIGTERM to the group, up to `grace` for it to exit, then SIGKILL; reaps. Returns the status.
  ExitStatus terminate(std::chrono::milliseconds grace = kDefaultGrace);

  const std::optional<ExitStatus>& status() const noexcept { return status_; }

 private:
  Child() = default;
  struct Reaping;  // the lock that keeps signal_group() and the reap apart, on the heap: movable

  pid_t pid_ = -1;
  std::unique_ptr<Reaping> reaping_;
  UniqueFd pidfd_;
  UniqueFd stdin_;
  UniqueFd stdout_;
  UniqueFd stderr_;
  std::optional<ExitStatus> status_;
};

// Whether `argv0` could be started in `workdir` now: the same checks exec makes, without running
// it (the file exists, is a regular executable file, and so is its "#!" interpreter; the workdir is
// a folder that can be entered). The error (kBadGateway) reads like the spawn's own: "cannot
// execute \"x\": No such file or directory", "cannot enter workdir \"d\": ...". `path_env` is searched
// for a name without '/'; a relative path is taken from `workdir`.
Status check_executable(const std::string& argv0, const std::string& workdir,
                        const std::string& path_env);

// Searches `name` in the PATH entries of `path_env` ("/usr/bin:/bin"); returns the first executable
// regular file, or "" when none. A name containing '/' is returned as it is.
std::string find_executable(const std::string& name, const std::string& path_env);

}  // namespace common
