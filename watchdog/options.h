// The command line and environment of fastfn-watchdog (DESIGN.md's table): every option has a flag
// and an environment variable, the flag wins, and COMMAND comes after the options or from `fprocess`;
// --flags-only turns the variables off (a gateway's watchdog: its environment is the handler's).
// Pure: the environment comes in as a map, as of-watchdog's config.New(env) takes it.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/address.h"
#include "common/logging.h"

namespace watchdog {

using std::chrono::milliseconds;

enum class Format { kCgi, kHttp, kServer };
const char* format_name(Format format) noexcept;  // "cgi", "http", "server"

struct Options {
  Format format = Format::kCgi;
  common::Address listen{common::Address::Kind::kTcp, "", "127.0.0.1", 8080};
  milliseconds exec_timeout{30'000};
  milliseconds read_timeout{10'000};
  milliseconds write_timeout{10'000};
  int max_inflight = 0;  // 0: no limit
  int max_connections = 10'000;  // open client connections; the fd limit caps it (HttpServer)
  std::uint64_t max_body = 10 * 1024 * 1024;
  int min_instances = 1;
  int max_instances = 1;  // the CPU count unless set
  int max_queue = 1024;
  milliseconds idle_timeout{30'000};
  std::uint64_t max_requests = 0;  // 0: never recycle
  // Format server: where each app process listens (PORT by default) and how many requests it
  // serves at once.
  std::optional<common::Address> upstream_url;
  bool listen_socket = false;
  milliseconds start_timeout{30'000};
  int max_concurrency = 1;
  bool cgi_headers = false;  // fastfn's: stdout begins with CGI headers (variable cgi_response)
  bool openfaas_variables = true;  // OpenFaaS's cgi_headers: request headers as Http_* variables
  std::string content_type = "text/plain; charset=utf-8";
  bool combine_output = false;
  std::string workdir = ".";
  milliseconds shutdown_timeout{10'000};
  // OpenFaaS's: after SIGTERM, how long health says 503 while connections are still served, so a
  // load balancer stops routing here before they are refused (0: refused at once).
  milliseconds healthcheck_interval{0};
  common::LogFormat log_format = common::LogFormat::kText;
  std::string log_level = "info";
  std::string name;  // the basename of COMMAND unless set
  // OpenFaaS's lock file ($TMPDIR/.lock, present while the watchdog serves, which its images'
  // HEALTHCHECK tests): written unless suppressed, and never under --flags-only (a gateway's).
  bool suppress_lock = false;
  // --flags-only: no option (and no fprocess) comes from the environment, which is left to the
  // handler. fastfn-gateway starts its watchdogs so, with the function's "env" in that environment.
  bool flags_only = false;
  std::vector<std::string> command;
};

// A bad command line or environment: what() is the one line the user sees; main exits 2.
class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

enum class Action { kRun, kHelp, kVersion };

struct ParsedOptions {
  Action action = Action::kRun;
  Options options;
  // OpenFaaS variables that were set and that fastfn does not take, each with what happens
  // instead: main logs them as warnings once logging is set up.
  std::vector<std::string> ignored;
};

using Environment = std::map<std::string, std::string>;

// Parses argv (without argv[0]) over `env`. Throws UsageError.
ParsedOptions parse_options(const std::vector<std::string>& args, const Environment& env,
                            int cpu_count);

// The log format `args` and `env` ask for, read without failing, for the one line of a UsageError
// from parse_options: --log-format, else (without --flags-only) the log_format variable.
common::LogFormat requested_log_format(const std::vector<std::string>& args,
                                       const Environment& env);

// The --help text.
std::string usage();

}  // namespace watchdog
