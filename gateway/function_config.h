// One function's fn.config.json (snake_case keys, as FastFN's), parsed and validated. A function
// folder may hold this file to choose its runtime and format, wrap any CLI with "command", claim
// other routes, restrict methods, and set limits, environment and gateway admission (worker_pool).
// The root of the functions dir may hold one too, for "assets" only. Parsing is pure (text in,
// struct or one error line out); a broken file makes discovery skip that function, never the
// gateway.
#pragma once

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <vector>

namespace gateway {

enum class Format { kCgi, kHttp, kServer };

// "cgi", "http" or "server", as fastfn-watchdog's --format takes it.
std::string_view format_name(Format format) noexcept;

// Gateway admission per function (FastFN's worker_pool). Absent from fn.config.json = disabled.
struct WorkerPoolConfig {
  bool enabled = false;
  std::uint32_t max_workers = 0;  // requests in flight; 0 = unlimited
  std::uint32_t max_queue = 0;    // requests waiting beyond max_workers; 0 = none wait
  std::chrono::milliseconds queue_timeout{
      0};                     // 0 = no limit of its own (the timeout still applies)
  int overflow_status = 429;  // 429 or 503
  // Watchdogs kept running while the function is idle: 0 starts them on the first request and
  // parks them after idle_ttl without one; more keeps them all running. Unset = the gateway's
  // min-warm.
  std::optional<std::uint32_t> min_warm;
  std::optional<std::chrono::seconds> idle_ttl;  // idle_ttl_seconds; unset = the gateway's idle-ttl
};

// Asynchronous calls of the function (POST /async-function/NAME), "async" in fn.config.json;
// the retry settings are OpenFaaS Pro's queue-worker's.
struct AsyncConfig {
  std::uint32_t max_concurrency = 8;  // calls of the function run at once from the queue
  // A call answered 429, 502, 503 or 504 is run again after initial_retry_wait, doubling up to
  // max_retry_wait, at most max_retry_attempts runs in all.
  std::chrono::milliseconds initial_retry_wait{10'000};
  std::chrono::milliseconds max_retry_wait{120'000};
  std::uint32_t max_retry_attempts = 10;
  std::uint32_t max_callback_attempts = 5;  // deliveries of X-Callback-Url, with the same backoff
};

// Static files served by the gateway; only the root fn.config.json may set this.
struct AssetsConfig {
  std::string dir;  // relative in the file; discovery makes it absolute
  bool run_worker_first = false;
  // not_found_handling "single-page-application": a GET or HEAD that no file and no function
  // serves gets the root index.html (200), as a client-side router expects.
  bool single_page_application = false;
};

struct FunctionConfig {
  std::optional<std::string> runtime;  // python | node | sh | exec
  std::optional<Format> format;
  // argv; empty = none. A relative first element with a '/' is made absolute against the
  // function's folder; a bare name ("python3") is left for PATH.
  std::vector<std::string> command;
  std::optional<std::vector<std::string>> routes;  // normalized: no trailing '/' except "/"
  std::vector<std::string> methods;                // uppercase, no duplicates; empty = all
  std::optional<std::uint64_t> timeout_ms, idle_timeout_ms, max_body_bytes;
  std::optional<std::uint64_t> min_instances, max_instances, max_requests;
  std::optional<int> daemons;  // 1..64
  // format server: requests one app process serves at once (FastFN's name; the watchdog's
  // --max-concurrency).
  std::optional<std::uint64_t> max_concurrency;
  // The handler's environment, added to the gateway's (never read as watchdog options).
  std::map<std::string, std::string> env;
  // format cgi: the program's output begins with RFC 3875 headers (the watchdog's --cgi-headers),
  // as php-cgi, gitweb, CGI.pm or Go's net/http/cgi print them.
  bool cgi_headers = false;
  std::optional<WorkerPoolConfig> worker_pool;
  AsyncConfig async;
  bool include_debug_headers = false;
  // invoke.handler, FastFN's: the function of a python or node handler file that answers each
  // request, run through fastfn's event shim (the event contract) whatever the source looks like.
  std::optional<std::string> handler;
};

// Parses the fn.config.json of the function in `function_dir` (absolute). `display_path` names
// the file in the error, which is one line: `<display_path>: key "<key>": expected ..., got ...`.
tl::expected<FunctionConfig, std::string> parse_function_config(
    std::string_view text, const std::string& display_path,
    const std::filesystem::path& function_dir);

// Parses the functions dir's own fn.config.json, where only "assets" is allowed. Returns nullopt
// when it sets no assets.
tl::expected<std::optional<AssetsConfig>, std::string> parse_root_config(
    std::string_view text, const std::string& display_path);

// A route as fn.config.json and discovery produce it: starts with '/', segments of URL path
// characters (no '%', '?', '#', spaces), no empty, "." or ".." segment, no trailing '/' except "/".
bool is_valid_route(std::string_view route);

// A name usable as a function name and as the route "/" + name ("hello", "api/users").
bool is_valid_function_name(std::string_view name);

}  // namespace gateway
