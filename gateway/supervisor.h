// Runs the watchdog daemons of every supervised function (FastFN's runtime daemons, with a
// fastfn-watchdog each): starts them on their unix sockets (a stale socket file there is the
// watchdog's to replace: it connects first, and never unlinks a live one), restarts one that exits
// with exponential backoff (100 ms doubling to 5 s, reset after it stayed up 10 s), counts restarts
// and records why it died on its Upstream, and stops them on removal or shutdown (SIGTERM, then
// SIGKILL after a grace), removing their sockets. A daemon may also be parked (not running, not
// restarted) and unparked, for functions started on demand. One thread waits on all of them
// through their pidfds, and it alone spawns them (start() and unpark() only ask it to), since a
// watchdog follows the thread that spawned it (PR_SET_PDEATHSIG) and this one lives as long as the
// gateway. A watchdog's stdout and stderr go to one pipe, read by one pump thread for all of them
// (gateway/watchdog_output.h: relayed to the gateway's stderr, kept for /_fn/logs).
#pragma once

#include <chrono>
#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/child.h"
#include "common/output_pump.h"
#include "common/unique_fd.h"
#include "gateway/function_logs.h"
#include "gateway/upstream.h"

namespace gateway {

// When a watchdog that exited is started again: after 100 ms, doubling with each failure up to 5 s;
// a watchdog that had stayed up 10 s starts the count again. Pure: time is passed in.
class RestartBackoff {
 public:
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kMin{100};
  static constexpr std::chrono::milliseconds kMax{5000};
  static constexpr std::chrono::seconds kStableAfter{10};

  // The watchdog started at `started` exited at `now`: the delay before the next start.
  std::chrono::milliseconds exited(Clock::time_point started, Clock::time_point now);
  // It could not be started at all: the delay before the next attempt.
  std::chrono::milliseconds failed_to_start();
  // Parked, or told to stop: the next exit is no failure of a running one.
  void reset() noexcept { failures_ = 0; }
  int failures() const noexcept { return failures_; }

 private:
  int failures_ = 0;
};

struct DaemonSpec {
  std::vector<std::string> argv;  // fastfn-watchdog and its options
  std::vector<std::string> env;   // the watchdog's, which its handlers inherit ("NAME=value")
  // What the watchdog will run, and where: checked before each launch (launch_problem()).
  std::vector<std::string> command;
  std::string workdir;
  std::string socket_path;
  std::shared_ptr<Upstream> upstream;  // marked starting, down, restarted
  std::shared_ptr<FunctionLog> log;    // where its output lines are kept; null: relayed only
};

// Spawns the watchdog of `spec` (no stdin) with its stdout and stderr on one pipe, the child's
// stdout_fd(). When that pipe cannot be made (the fd limit), it inherits the gateway's stdout and
// stderr instead, and `no_pipe` says why (else it is left alone). Errors as common::Child::spawn's,
// without its exception: a failure to make the pidfd is kUnavailable.
common::Result<common::Child> spawn_watchdog(const DaemonSpec& spec, std::string* no_pipe);

// Why the watchdog of `spec` could not run its function now, or nullopt: the workdir must be a
// folder that can be entered and the command an executable file, and so its "#!" interpreter
// (common::check_executable; searched in the PATH of `spec.env` when it has no '/', taken from the
// workdir when relative), as exec will require. The text reads like the spawn's own error
// ("cannot execute \"x\": No such file or directory").
std::optional<std::string> launch_problem(const DaemonSpec& spec);

class Supervisor {
 public:
  using Clock = std::chrono::steady_clock;

  Supervisor();
  ~Supervisor();  // stop_all() with the default grace
  Supervisor(const Supervisor&) = delete;
  Supervisor& operator=(const Supervisor&) = delete;

  enum class Start { kNow, kParked };
  // Starts a daemon now and keeps it running, or registers it parked. Thread-safe.
  void start(DaemonSpec spec, Start when = Start::kNow);
  // Stops the daemon serving `upstream` (SIGTERM, SIGKILL after the grace) and keeps it stopped
  // until unpark(); its upstream turns cold. Thread-safe.
  void park(const std::shared_ptr<Upstream>& upstream);
  // Starts a parked daemon: at once, or as soon as its previous process has exited. Thread-safe.
  void unpark(const std::shared_ptr<Upstream>& upstream);
  // Stops the daemon serving `upstream` gracefully, in the background. Thread-safe.
  void stop(const std::shared_ptr<Upstream>& upstream);
  // Stops every daemon and waits: SIGTERM, up to `grace`, SIGKILL; removes their sockets.
  void stop_all(std::chrono::milliseconds grace = std::chrono::seconds(10));

  static constexpr std::chrono::milliseconds kStopGrace{12'000};  // a watchdog drains 10 s

 private:
  struct Daemon {
    DaemonSpec spec;
    std::optional<common::Child> child;
    RestartBackoff backoff;
    Clock::time_point started_at{};
    Clock::time_point restart_at{};
    bool stopping = false;  // for good: removed once its process has exited
    bool parked = false;
    bool told_to_stop = false;  // its process was sent SIGTERM: its exit is no failure
    Clock::time_point kill_at{};
  };

  Daemon* find_locked(const std::shared_ptr<Upstream>& upstream);
  void terminate_locked(Daemon& daemon, Clock::time_point now);

  void run();
  void launch_locked(Daemon& daemon, Clock::time_point now);
  void reap_locked(Daemon& daemon, Clock::time_point now);
  int poll_timeout_locked(Clock::time_point now) const;
  void wake();

  // First: destroyed last, after the watchdogs have exited, so that their last lines are read.
  common::OutputPump pump_;
  std::mutex mutex_;
  std::list<Daemon> daemons_;
  bool no_pipe_logged_ = false;  // said once: a gateway out of fds would say it at every restart
  common::UniqueFd wakeup_;
  bool quit_ = false;
  std::thread::id supervisor_thread_;  // the only thread that spawns watchdogs
  std::thread thread_;
};

}  // namespace gateway
