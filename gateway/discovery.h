// Discovery turns the functions dir into the list of functions the gateway serves. Every folder
// (at any depth) that holds a handler is a function: handler.py (python), handler.js or
// handler.mjs (node), handler.sh (sh), an executable file named handler (exec), or a
// fn.config.json with "command". Its name is its path below the functions dir ("api/users") and its
// route "/" + name unless fn.config.json lists routes. Dotfolders, "_" folders (private, as in
// FastFN), node_modules and the assets dir are never walked. Functions named in runtime_sockets
// use those sockets instead of supervised daemons, and names with no folder become remote-only
// functions. Nothing here is fatal: a broken function is left out with one problem line and the
// others are returned. Discovery reads the file system but keeps no state, so the hot-reload code
// can call it again and compare fingerprints.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "gateway/config.h"
#include "gateway/function_config.h"

namespace gateway {

struct FunctionSpec {
  std::string name;                 // "api/users"; the remote-only function "x" is named "x"
  std::filesystem::path dir;        // absolute; empty for remote-only functions
  std::vector<std::string> routes;  // at least one; conflicts and reserved routes removed
  std::string runtime;              // python | node | sh | exec | remote
  Format format = Format::kCgi;
  std::vector<std::string> command;  // argv run in workdir; empty for remote functions
  std::filesystem::path workdir;     // == dir
  std::vector<std::string> methods;  // uppercase; empty = every method
  std::optional<std::uint64_t> timeout_ms, idle_timeout_ms, max_body_bytes;
  std::optional<std::uint64_t> min_instances, max_instances, max_requests;
  // Watchdogs to run: fn.config.json's daemons, else runtime-daemons of the runtime, else 1.
  // With external_sockets, their count.
  int daemons = 1;
  // The handler's: added to the watchdog's environment, which its handlers inherit and from which
  // a watchdog started with --flags-only reads no option.
  std::map<std::string, std::string> env;
  bool cgi_headers = false;  // the watchdog's --cgi-headers
  WorkerPoolConfig worker_pool;            // enabled == false when fn.config.json has none
  // worker_pool.min_warm (else the gateway's min-warm) is 0: watchdogs start on the first request
  // and are parked after idle_ttl without one. Never for external sockets.
  bool on_demand = false;
  std::chrono::milliseconds idle_ttl{300'000};
  bool include_debug_headers = false;
  bool remote = false;  // only reachable through external_sockets; has no folder
  // Addresses from runtime_sockets. When non-empty the gateway routes to these and supervises
  // nothing for this function.
  std::vector<std::string> external_sockets;
  // Opaque; differs when anything that needs a restart differs: fn.config.json's content, the
  // handler file's size or mtime, or the settings taken from the gateway config.
  std::string fingerprint;
};

struct DiscoveryResult {
  std::vector<FunctionSpec> functions;  // sorted by name; no two share a route
  std::vector<std::string> problems;    // one log line each, in the order found
  std::optional<AssetsConfig> assets;   // dir made absolute
};

// Walks config.functions_dir. Never throws for problems in the tree; a missing functions dir is
// a problem line and gives no folder functions (remote-only ones are still returned).
DiscoveryResult discover(const GatewayConfig& config);

}  // namespace gateway
