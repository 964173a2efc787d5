// The functions the gateway serves now. Requests read an immutable snapshot (functions and route
// table) without a lock; a reload builds the next snapshot and swaps it in: a function whose
// fingerprint did not change keeps its sockets, connections and counters, a new or changed one gets
// fresh watchdogs (on new socket paths, so the old ones can drain), and what left is stopped after
// the swap. So a reload never fails a request to another function. Every launch of a function gets
// socket paths no other launch ever had (a serial in the name), so one function's watchdog can never
// take over, or unlink, another's socket.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "gateway/config.h"
#include "gateway/discovery.h"
#include "gateway/function_logs.h"
#include "gateway/function_runtime.h"
#include "gateway/routes.h"
#include "gateway/supervisor.h"

namespace gateway {

struct Snapshot {
  std::vector<std::shared_ptr<FunctionRuntime>> functions;  // sorted by name
  RouteTable routes;                                        // indexes into functions
  std::optional<AssetsConfig> assets;
};

class Registry {
 public:
  // `supervisor` must outlive the registry. `base_env` is the environment watchdogs inherit (and
  // with them their handlers), below each function's own env. `watchdog_flags` are given to every
  // watchdog (the gateway's log format and level). `logs`, when given, must outlive the registry:
  // each function served has its log there, and its watchdogs write into it.
  Registry(Supervisor& supervisor, std::string watchdog_binary, std::vector<std::string> base_env,
           std::vector<std::string> watchdog_flags = {}, FunctionLogs* logs = nullptr);

  // Makes `discovered` the served set. Thread-safe (reloads are serialised).
  void apply(const GatewayConfig& config, const DiscoveryResult& discovered);

  // The current snapshot; never null. Thread-safe.
  std::shared_ptr<const Snapshot> current() const { return snapshot_.load(); }
  // Every socket of every function now, for the health prober.
  std::vector<std::shared_ptr<Upstream>> upstreams() const;
  // Parks the watchdogs of on-demand functions idle for their idle_ttl. Thread-safe.
  void park_idle();
  // Stops the watchdogs of every function (the supervisor waits for them).
  void clear();

 private:
  std::shared_ptr<FunctionRuntime> launch(const GatewayConfig& config, const FunctionSpec& spec);
  void stop(const FunctionRuntime& function);

  Supervisor& supervisor_;
  std::string watchdog_binary_;
  std::vector<std::string> base_env_;
  std::vector<std::string> watchdog_flags_;
  FunctionLogs* logs_;
  std::mutex reload_mutex_;
  std::uint64_t launches_ = 0;  // under reload_mutex_
  std::atomic<std::shared_ptr<const Snapshot>> snapshot_;
};

// Removes socket files in `dir` that nothing accepts on any more (left by a gateway that died).
void remove_stale_sockets(const std::string& dir);

// The variable that tells a watchdog which gateway to follow (it stops when that process dies).
inline constexpr const char* kParentPidVariable = "FASTFN_PARENT_PID";

// The socket of daemon `index` of the `launch`-th function launch of gateway `pid`:
// "<dir>/<pid>-<readable name>-<launch>-<index>.sock". Distinct (pid, launch, index) give distinct
// paths whatever the names; the readable name (anything but [A-Za-z0-9_-] made '_') is shortened
// so that the path fits sun_path (107 bytes) when `dir` leaves room.
std::string socket_path(const std::string& dir, long pid, const std::string& function,
                        std::uint64_t launch, int index);

// How fastfn-watchdog is started for `spec` on `socket`: every setting as a flag (`shared_flags`
// first), and --flags-only so that nothing in its environment configures it.
std::vector<std::string> watchdog_argv(const std::string& binary, const FunctionSpec& spec,
                                       const std::string& socket,
                                       const std::vector<std::string>& shared_flags = {});

// The watchdog's environment, which its handlers inherit: `base` ("NAME=value"), then the
// function's env over it, then kParentPidVariable=`parent_pid` (which the function cannot set).
std::vector<std::string> watchdog_env(std::vector<std::string> base, const FunctionSpec& spec,
                                      long parent_pid);

}  // namespace gateway
