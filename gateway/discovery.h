// Discovery turns the functions dir into the list of functions the gateway serves. Every folder
// (at any depth) that holds a handler is a function: handler.py (python), handler.js or
// handler.mjs (node), handler.php (php, run by php-cgi), handler.lua (lua), handler.sh (sh), an
// executable file named handler (exec), go.mod or handler.go (go, built first), Cargo.toml (rust,
// built first), or a fn.config.json with "command". Its name is its path below the functions dir ("api/users") and its
// route "/" + name unless fn.config.json lists routes. A folder without a handler may hold
// FastFN's file routes instead (file_routes.h): each is a function of its own. Dotfolders, "_"
// folders (private, as in FastFN), node_modules and the assets dir are never walked. Functions named in runtime_sockets
// use those sockets instead of supervised daemons, and names with no folder become remote-only
// functions. Nothing here is fatal: a broken function is left out with one problem line and the
// others are returned. A walk (scan()) keeps no state, so the hot-reload code can call it again and
// compare fingerprints; Discovery adds the one memory reloads need: only a successful read can
// remove a function, so what a scan could not read (out of fds, EACCES, EIO) keeps its last good
// state instead of being unloaded.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <tl/expected.hpp>

#include "gateway/config.h"
#include "gateway/dependencies.h"
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
  std::optional<std::uint64_t> min_instances, max_instances, max_requests, max_concurrency;
  // Watchdogs to run: fn.config.json's daemons, else runtime-daemons of the runtime, else 1.
  // With external_sockets, their count.
  int daemons = 1;
  // The handler's: added to the watchdog's environment, which its handlers inherit and from which
  // a watchdog started with --flags-only reads no option.
  std::map<std::string, std::string> env;
  bool cgi_headers = false;  // the watchdog's --cgi-headers
  WorkerPoolConfig worker_pool;            // enabled == false when fn.config.json has none
  AsyncConfig async;                       // calls from the queue (/async-function/)
  // worker_pool.min_warm (else the gateway's min-warm) is 0: watchdogs start on the first request
  // and are parked after idle_ttl without one. Never for external sockets.
  bool on_demand = false;
  std::chrono::milliseconds idle_ttl{300'000};
  bool include_debug_headers = false;
  // Run through fastfn's event shim: FastFN's handler(event) (format http, the handler's function
  // named by invoke.handler or found in its source).
  bool event_contract = false;
  // A FastFN file route (file_routes.h): one file of a folder without a handler. Its routes serve
  // only the paths they match, none below them.
  bool file_route = false;
  bool remote = false;  // only reachable through external_sockets; has no folder
  // Non-empty: the folder is meant as a function but cannot run (its fn.config.json is invalid,
  // it names a runtime the folder has no handler for, its handler has no runtime): it is listed
  // not ready with this reason and its route answers 503 with it until fixed; nothing is started.
  std::string broken;
  // Its dependencies are being installed (broken says so): listed "installing", not an error.
  bool installing = false;
  // Addresses from runtime_sockets. When non-empty the gateway routes to these and supervises
  // nothing for this function.
  std::vector<std::string> external_sockets;
  // Opaque; differs when anything that needs a restart differs: fn.config.json's content, the
  // handler file's size or mtime, or the settings taken from the gateway config.
  std::string fingerprint;
};

// A read that failed for another reason than absence: EMFILE, ENFILE, ENOMEM, EACCES, EIO...
// (ENOENT and ENOTDIR are answers, not failures: the thing is gone.)
struct ReadFailure {
  std::filesystem::path path;  // the folder or file, as it was asked for
  int error = 0;               // errno
  // Out of fds or memory: goes away by itself, so another try soon is worth it.
  bool transient() const;
  // "Too many open files".
  std::string reason() const;
};

template <class T>
using ReadResult = tl::expected<T, ReadFailure>;

// The file system as discovery and the directory watcher read it. It is the seam where tests make a
// folder unreadable (they run as root, which chmod does not stop). Implementations are
// thread-safe.
class TreeReader {
 public:
  struct Entry {
    std::string name;     // a file name, never "." or ".."
    bool is_dir = false;  // following symlinks; false for a dangling link
  };
  virtual ~TreeReader() = default;
  // The entries of folder `dir`, in no particular order.
  virtual ReadResult<std::vector<Entry>> list(const std::filesystem::path& dir) const = 0;
  // The whole content of the regular file `file`.
  virtual ReadResult<std::string> read(const std::filesystem::path& file) const = 0;
};

// The real file system. Lives as long as the process.
const TreeReader& disk_reader();

// A part of the tree that a scan could not read; the functions it covers are missing from that
// scan's result.
struct Unread {
  ReadFailure failure;
  std::string shown;   // the failing path as the user wrote it ("functions/api/fn.config.json")
  std::string name;    // a function name or a folder below the functions dir ("api")
  bool self = false;   // covers the function `name` itself (its fn.config.json, its folder)
  bool below = false;  // covers every function under name + "/" (the folder could not be listed)
};

struct DiscoveryResult {
  std::vector<FunctionSpec> functions;  // sorted by name; no two share a route
  std::vector<std::string> problems;    // one log line each, in the order found
  std::optional<AssetsConfig> assets;   // dir made absolute
  std::vector<Unread> unread;           // empty when every folder and file could be read
  std::vector<DependencyInstall> installs;  // of the functions listed installing
};

// One walk of config.functions_dir through `reader`, with no memory. Never throws for problems in
// the tree; a missing functions dir is a problem line and gives no folder functions (remote-only
// ones are still returned). Fails with the path and errno when the functions dir, or its own
// fn.config.json, exists but cannot be read: such a walk says nothing about which functions exist.
ReadResult<DiscoveryResult> scan(const GatewayConfig& config, const TreeReader& reader);

// Discovery with the memory of the last result it returned, for reloads. A scan that fails gives
// back the last result (so a reload changes nothing); a function covered by an Unread keeps its
// last spec, fingerprint included, so the registry keeps it running (a function never seen before
// stays out until it can be read). The next scan that can read applies the real changes. Each
// failing path is one problem line when it starts failing, not again while it keeps failing.
// Thread-safe.
class Discovery {
 public:
  // `reader` must outlive this object.
  explicit Discovery(const TreeReader& reader = disk_reader());
  Discovery(const Discovery&) = delete;
  Discovery& operator=(const Discovery&) = delete;

  DiscoveryResult discover(const GatewayConfig& config);
  // True when the last discover() held something back because of a transient failure (out of
  // fds or memory): a later call may see changes this one could not.
  bool retry_wanted() const;

 private:
  const TreeReader& reader_;
  mutable std::mutex mutex_;
  std::optional<DiscoveryResult> last_;  // functions and assets as last returned
  std::set<std::string> failing_;        // the paths that failed in the last call
  bool retry_wanted_ = false;
};

// The process's Discovery over the disk. The gateway's reloads (SIGHUP, the watcher's callback)
// all go through it, and the watcher asks it whether a reload must be tried again.
Discovery& process_discovery();

// process_discovery().discover(config).
DiscoveryResult discover(const GatewayConfig& config);

}  // namespace gateway
