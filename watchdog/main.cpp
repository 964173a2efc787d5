// fastfn-watchdog: serves one function over HTTP (DESIGN.md). main parses the options, opens the
// listener, picks the runner for the format, and owns the signal loop: SIGHUP recycles, SIGTERM and
// SIGINT drain and exit 0.
#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <memory>
#include <thread>

#include "common/http_server.h"
#include "common/listener.h"
#include "common/logging.h"
#include "common/owned_children.h"
#include "common/signals.h"
#include "watchdog/cgi_runner.h"
#include "watchdog/hot_pool.h"
#include "watchdog/lock_file.h"
#include "watchdog/options.h"
#include "watchdog/server.h"

extern char** environ;

namespace {

using Clock = std::chrono::steady_clock;

std::vector<std::string> environment_list() {
  std::vector<std::string> list;
  for (char** entry = environ; *entry; ++entry) list.emplace_back(*entry);
  return list;
}

watchdog::Environment environment_map(const std::vector<std::string>& list) {
  watchdog::Environment map;
  for (const auto& entry : list) {
    auto eq = entry.find('=');
    if (eq != std::string::npos) map.emplace(entry.substr(0, eq), entry.substr(eq + 1));
  }
  return map;
}

std::unique_ptr<watchdog::Runner> make_runner(const watchdog::Options& options,
                                              std::vector<std::string> env) {
  if (options.format != watchdog::Format::kCgi)
    return std::make_unique<watchdog::HotPool>(options, std::move(env));
  return std::make_unique<watchdog::CgiRunner>(options, std::move(env));
}

// Waits for SIGTERM/SIGINT, recycling on each SIGHUP.
void wait_for_stop(watchdog::Runner& runner) {
  static const auto log = common::logger("watchdog");
  int sig = common::wait_for_stop([&runner] {
    log->info("recycling processes signal=SIGHUP");
    runner.recycle();
  });
  log->info("stopping signal={}", strsignal(sig));
}

// Waits for the requests in flight, and for heads already arriving (served with Connection: close).
void drain(const watchdog::Server& server, const common::HttpServer& http,
           std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while ((server.in_flight() > 0 || http.open_requests() > 0) && Clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
}

int run(const watchdog::Options& options, std::vector<std::string> env) {
  static const auto log = common::logger("watchdog");
  Poco::Net::ServerSocket socket = common::open_listener(options.listen);
  auto socket_file = common::socket_file_id(options.listen);
  // What a program orphans (setsid, double fork) comes to us, to be ended with its request or its
  // hot handler (each is spawned as the subreaper of its own tree).
  common::become_subreaper();
  common::OrphanReaper reaper;  // as a container's PID 1, orphaned grandchildren are ours to reap
  auto runner = make_runner(options, std::move(env));
  watchdog::Server server(options, *runner);
  common::ServerSettings settings;
  settings.read_timeout = options.read_timeout;
  // Room for the X-Forwarded-* and X-Fn-* headers a gateway adds to a client's 100.
  settings.max_headers += 8;
  settings.write_timeout = options.write_timeout;
  settings.max_connections = options.max_connections;
  common::HttpServer http(socket, settings, [&server](auto& request, auto& response) {
    server.handle(request, response);
  });
  // Before the first answer, so that whoever sees the watchdog healthy sees the file too.
  auto lock = options.suppress_lock || options.flags_only ? watchdog::LockFile()
                                                          : watchdog::LockFile::create();
  http.start();
  log->info("listening address={} format={} function={} max_connections={} command={}",
            options.listen.to_string(), watchdog::format_name(options.format),
            options.name, http.max_connections(), fmt::join(options.command, " "));
  wait_for_stop(*runner);
  lock.remove();
  server.begin_drain();  // health says "shutting down" before the first connection is refused
  if (options.healthcheck_interval.count() > 0) {
    // OpenFaaS's grace for a load balancer that routes by health: it sees 503 and stops routing
    // here while connections are still served.
    log->info("health turned 503, serving until healthcheck_interval={}ms passes",
              options.healthcheck_interval.count());
    std::this_thread::sleep_for(options.healthcheck_interval);
  }
  http.stop_accepting();  // new connections are refused at once, not left hanging in the backlog
  http.begin_drain();
  drain(server, http, options.shutdown_timeout);
  if (server.in_flight() > 0)
    log->warn("shutdown timeout reached, stopping requests in_flight={}", server.in_flight());
  runner->stop_all();
  http.abort_connections();  // joins the request threads: every Child is reaped by now
  common::end_orphans();     // and anything still left below us goes with us
  common::remove_listener(options.listen, socket_file);  // refused until now, then gone
  log->info("stopped");
  return 0;
}

// Started by fastfn-gateway: stop (and drain) when the gateway dies, even by SIGKILL, instead of
// serving a socket nobody routes to. The pid check closes the race with a parent that already died.
void follow_parent(const watchdog::Environment& env) {
  auto it = env.find("FASTFN_PARENT_PID");
  if (it == env.end() || it->second != std::to_string(::getppid())) return;
  ::prctl(PR_SET_PDEATHSIG, SIGTERM);
  if (it->second != std::to_string(::getppid())) ::raise(SIGTERM);
}

}  // namespace

int main(int argc, char** argv) {
  common::block_control_signals();  // before any thread starts
  auto env = environment_list();
  watchdog::ParsedOptions parsed;
  try {
    parsed = watchdog::parse_options({argv + 1, argv + argc}, environment_map(env),
                                     static_cast<int>(std::thread::hardware_concurrency()));
  } catch (const watchdog::UsageError& e) {
    auto format = watchdog::requested_log_format({argv + 1, argv + argc}, environment_map(env));
    common::print_fatal(format, "fastfn-watchdog", e.what());
    return 2;
  }
  if (parsed.action == watchdog::Action::kHelp) {
    std::cout << watchdog::usage();
    return 0;
  }
  if (parsed.action == watchdog::Action::kVersion) {
    std::cout << "fastfn-watchdog " << FASTFN_VERSION << "\n";
    return 0;
  }
  follow_parent(environment_map(env));
  common::setup_logging(parsed.options.log_format, parsed.options.log_level);
  for (const auto& ignored : parsed.ignored) common::logger("watchdog")->warn("{}", ignored);
  try {
    return run(parsed.options, std::move(env));
  } catch (const common::ListenError& e) {
    common::print_fatal(parsed.options.log_format, "fastfn-watchdog", e.what());
    return 2;
  } catch (const std::exception& e) {
    spdlog::critical("fatal error=\"{}\"", e.what());
    return 1;
  }
}
