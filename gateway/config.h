// The gateway's own settings: where the functions live, where to listen, how many watchdog daemons
// each runtime gets and which interpreter runs it, the runtime order that settles route conflicts,
// where the sockets go, explicit (unsupervised) sockets, and the health probe interval. They come
// from flags, then the environment, then fastfn.json (kebab-case keys, as FastFN's), then defaults.
// Loading is pure: the environment and file reads are passed in, so tests need no real files and
// SIGHUP can reload with the same function. Anything malformed is a ConfigError whose what() is one
// line naming the source and the key; main prints it and exits 2.
#pragma once

#include <chrono>
#include <functional>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace gateway {

// A bad setting. what() is one line: `<source>: key "<key>": expected ..., got ...`, where source
// is the config file path, an environment variable name or a flag.
class ConfigError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// The runtimes fastfn knows, in their default conflict order. "exec" runs `./handler` (or a
// configured command) directly and has no interpreter binary.
inline constexpr std::string_view kKnownRuntimes[] = {"python", "node", "php", "lua",
                                                      "sh",     "exec", "go",  "rust"};
inline constexpr int kMaxDaemons = 64;

struct GatewayConfig {
  std::string functions_dir = "./functions";
  std::string listen = "127.0.0.1:8080";
  // runtime -> watchdog daemons per function; a runtime not listed gets 1 (see daemons_for()).
  std::map<std::string, int> runtime_daemons;
  // runtime -> interpreter; every runtime except exec has one. Also "composer", the tool that
  // installs a php function's composer.json.
  std::map<std::string, std::string> runtime_binaries = {
      {"node", "node"}, {"python", "python3"}, {"php", "php-cgi"}, {"lua", "lua5.4"},
      {"sh", "sh"},     {"go", "go"},         {"rust", "cargo"},    {"composer", "composer"}};
  // Enabled runtimes, first wins a route conflict. A known runtime not listed is disabled.
  // go and rust after exec: a folder with a built ./handler and its go.mod runs the built one.
  std::vector<std::string> runtimes = {"python", "node", "php", "lua", "sh", "exec", "go", "rust"};
  // Parent of the per-daemon unix sockets (the supervisor creates it 0700).
  std::string socket_base_dir;
  // Function name -> explicit addresses, routed and probed but never started by the gateway.
  std::map<std::string, std::vector<std::string>> runtime_sockets;
  // Settings of FastFN's that fastfn has no use for (runtime-binaries of runtimes it does not
  // run), each with what happens instead: logged once as warnings at start.
  std::vector<std::string> ignored;
  std::chrono::milliseconds health_interval{1000};
  // Default of worker_pool.min_warm: 0 starts every function's watchdogs on its first request and
  // parks them after idle_ttl without one; 1 (or more) keeps them running from the start.
  std::uint32_t min_warm = 1;
  std::chrono::milliseconds idle_ttl{300'000};  // Passenger's pool_idle_time, FastFN's idle_ttl
  // Where asynchronous calls are kept: "sqlite:PATH" (relative to the working dir, or to
  // fastfn.json when set there), or "off". "" is the default, sqlite:.fastfn/queue.db, which may
  // fail to open without stopping the gateway (its async calls are then off); a queue set
  // explicitly must open.
  std::string queue;
  // fastfn's runtime shims (shims/python/fastfn_event.py, shims/node/fastfn_event.js), which run
  // FastFN's handler(event) functions. Not a setting of the file: main finds it (FN_SHIMS_DIR,
  // else installed beside the binary, else the source tree). Empty: none was found.
  std::string shims_dir;
  // The fastfn.json that was read, "" when none was.
  std::string config_file;

  // runtime_daemons[runtime], or 1.
  int daemons_for(std::string_view runtime) const;
  // The interpreter for `runtime`, or nullopt (exec, unknown runtimes).
  std::optional<std::string> binary_for(std::string_view runtime) const;
  // Position of `runtime` in `runtimes`, or nullopt when it is disabled.
  std::optional<std::size_t> runtime_rank(std::string_view runtime) const;
};

// What main parsed from argv; a set field wins over the environment and the file.
struct GatewayFlags {
  std::optional<std::string> config_path;    // --config
  std::optional<std::string> listen;         // --listen
  std::optional<std::string> functions_dir;  // positional FUNCTIONS_DIR
};

using Environment = std::map<std::string, std::string>;
// Returns the file's content, or nullopt when it cannot be read.
using FileReader = std::function<std::optional<std::string>(const std::string& path)>;

// Builds the configuration. The file read is flags.config_path (unreadable = error), else
// env["FN_CONFIG"] (unreadable = error), else "fastfn.json" if read_file returns it. Relative
// functions-dir and socket-base-dir values inside a file are taken relative to that file's folder.
// Empty environment variables count as unset. `uid` names the fallback socket dir
// /tmp/fastfn-<uid> when XDG_RUNTIME_DIR is not set. Throws ConfigError.
GatewayConfig load_gateway_config(const GatewayFlags& flags, const Environment& env, unsigned uid,
                                  const FileReader& read_file);

// True for the address forms the gateway and watchdog accept: "unix:/abs/path",
// "tcp:HOST:PORT", "HOST:PORT" and ":PORT" (HOST a name, IPv4 or [IPv6]; PORT 1..65535).
bool is_valid_address(std::string_view address);

// For main: the process environment as a map, and a FileReader over the real file system.
Environment environment_from(char** envp);
std::optional<std::string> read_file_from_disk(const std::string& path);

}  // namespace gateway
