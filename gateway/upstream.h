// One socket of a function: a watchdog the gateway supervises, or an address from
// FN_RUNTIME_SOCKETS. It knows whether it is up (probed, or refused a connection), how often its
// watchdog was restarted and why it last failed, and keeps a pool of idle keep-alive connections
// so a request costs no connect.
#pragma once

#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/address.h"
#include "common/connection_pool.h"
#include "common/error.h"
#include "common/unique_fd.h"

namespace gateway {

using UpstreamConnection = common::PooledConnection;

class Upstream {
 public:
  using Clock = std::chrono::steady_clock;
  // kStarting: (re)started and not yet probed; routable, a refused connect marks it down.
  // kCold: its watchdog is parked (started on demand, stopped while idle); neither probes nor
  // refused connects change that, only starting() does.
  enum class State { kStarting, kUp, kDown, kCold };

  Upstream(std::string function, int index, common::Address address, bool supervised);
  ~Upstream();

  // A connection: an idle pooled one that is still open, else a new one. A refused or failed
  // connect marks the upstream down and returns kUnavailable (nothing was sent: the caller may
  // try another socket).
  common::Result<UpstreamConnection> checkout(std::chrono::milliseconds connect_timeout);
  // Returns a connection whose last exchange left it in step.
  void checkin(UpstreamConnection connection);
  // Closes every idle connection (the watchdog was restarted or the function removed).
  void drop_idle();

  void mark(State state, std::optional<std::string> error = std::nullopt);
  // A supervised watchdog was just (re)started: until `until`, failed probes and refused connects
  // mean "still starting", not "down".
  void starting(Clock::time_point until);
  bool in_startup() const { return in_startup(Clock::now()); }
  bool in_startup(Clock::time_point now) const;
  // Its watchdog was parked: kCold, idle connections closed.
  void park();
  State state() const noexcept { return state_.load(std::memory_order_relaxed); }
  bool routable() const noexcept { return state() == State::kStarting || state() == State::kUp; }

  void count_restart() noexcept { restarts_.fetch_add(1, std::memory_order_relaxed); }
  std::uint64_t restarts() const noexcept { return restarts_.load(std::memory_order_relaxed); }
  void set_pid(pid_t pid) noexcept { pid_.store(pid, std::memory_order_relaxed); }
  pid_t pid() const noexcept { return pid_.load(std::memory_order_relaxed); }
  // Why its last error: the launch problem while there is one, else what last failed.
  std::optional<std::string> last_error() const;
  // Why its watchdog cannot be started at all (a missing command or workdir, a script without its
  // exec bit), or nullopt; set by the supervisor before each launch, cleared by starting().
  void set_problem(std::optional<std::string> problem);
  std::optional<std::string> problem() const;

  const std::string& function() const noexcept { return function_; }
  int index() const noexcept { return index_; }
  const common::Address& address() const noexcept { return address_; }
  bool supervised() const noexcept { return supervised_; }

 private:
  common::Result<common::UniqueFd> connect_new(std::chrono::milliseconds timeout);

  const std::string function_;
  const int index_;
  const common::Address address_;
  const bool supervised_;
  std::atomic<State> state_{State::kStarting};
  std::atomic<std::uint64_t> restarts_{0};
  std::atomic<pid_t> pid_{0};
  mutable std::mutex mutex_;
  std::optional<std::string> last_error_;
  std::optional<std::string> problem_;
  Clock::time_point startup_until_{};
  common::ConnectionPool connections_;
};

}  // namespace gateway
