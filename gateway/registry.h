// The functions the gateway serves now. Requests read an immutable snapshot (functions and route
// table) without a lock; a reload builds the next snapshot and swaps it in: a function whose
// fingerprint did not change keeps its sockets, connections and counters, a new or changed one gets
// fresh watchdogs (on new socket paths, so the old ones can drain), and what left is stopped after
// the swap. So a reload never fails a request to another function.
#pragma once

#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "gateway/config.h"
#include "gateway/discovery.h"
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
  // `supervisor` must outlive the registry. `base_env` is the environment watchdogs inherit.
  Registry(Supervisor& supervisor, std::string watchdog_binary, std::vector<std::string> base_env);

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
  std::vector<std::string> watchdog_argv(const FunctionSpec& spec, const std::string& socket) const;
  std::string socket_path(const GatewayConfig& config, const FunctionSpec& spec, int index);
  void stop(const FunctionRuntime& function);

  Supervisor& supervisor_;
  std::string watchdog_binary_;
  std::vector<std::string> base_env_;
  std::mutex reload_mutex_;
  std::uint64_t generation_ = 0;
  std::atomic<std::shared_ptr<const Snapshot>> snapshot_;
};

// Removes socket files in `dir` that nothing accepts on any more (left by a gateway that died).
void remove_stale_sockets(const std::string& dir);

}  // namespace gateway
