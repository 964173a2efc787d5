// fastfn-gateway: the HTTP edge (DESIGN.md). main reads the configuration, opens the listener,
// starts the watchdogs of every discovered function, and owns the signal loop: SIGHUP reloads
// fastfn.json and rescans, SIGTERM and SIGINT drain and stop everything; the functions dir is
// watched so changes apply within about a second.
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <condition_variable>
#include <cstdio>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <optional>
#include <stop_token>
#include <thread>

#include "common/http_client.h"
#include "common/http_server.h"
#include "common/listener.h"
#include "common/logging.h"
#include "common/owned_children.h"
#include "common/units.h"
#include "common/signals.h"
#include "common/systemd_notify.h"
#include "gateway/async_calls.h"
#include "gateway/call_store.h"
#include "gateway/config.h"
#include "gateway/dependency_installer.h"
#include "gateway/dir_watcher.h"
#include "gateway/discovery.h"
#include "gateway/health_prober.h"
#include "gateway/inside_edge.h"
#include "gateway/nats_call_queue.h"
#include "gateway/registry.h"
#include "gateway/server.h"
#include "gateway/supervisor.h"

extern char** environ;

namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::chrono::seconds kDrainTimeout{10};
// The bytes of a call's result kept in the queue (and sent to its callback).
constexpr std::size_t kResultLimit = 1 << 20;
constexpr std::chrono::seconds kCallbackTimeout{10};

const char* kUsage = R"(usage: fastfn-gateway [--config fastfn.json] [--listen ADDR] [FUNCTIONS_DIR]

Serves every function found in FUNCTIONS_DIR over HTTP, running fastfn-watchdog daemons for them.
  --config FILE        fastfn.json to read (else FN_CONFIG, else ./fastfn.json when present)
  --listen ADDR        127.0.0.1:8080, :8080, tcp:HOST:PORT or unix:/path.sock (FN_LISTEN)
  --max-connections N  open client connections, more wait to be accepted (FN_MAX_CONNECTIONS;
                       10000, at most the fd limit less 64)
  --log-format FORMAT  text or json (FN_LOG_FORMAT)
  --log-level LEVEL    trace, debug, info, warn, error, off (FN_LOG_LEVEL)
  -h, --help           this text
  -V, --version        the version
Environment: FN_FUNCTIONS_ROOT, FN_RUNTIME_DAEMONS, FN_RUNTIME_SOCKETS, FN_SOCKET_BASE_DIR,
FN_RUNTIMES, FN_PYTHON_BIN, FN_NODE_BIN, FN_PHP_BIN, FN_LUA_BIN, FN_SH_BIN, FN_GO_BIN, FN_CARGO_BIN,
FN_COMPOSER_BIN,
FN_HEALTH_INTERVAL, FN_QUEUE (sqlite:PATH, nats://HOST:PORT or off: where asynchronous calls are
kept),
FN_WATCHDOG_BIN, FN_MIN_WARM (0: start functions on their first request), FN_IDLE_TTL (park them
after this idle),
FN_CONSOLE_DIR, FN_SHIMS_DIR, FN_STATUS_REMOTE=1 (/_fn/* for non-loopback clients too),
FN_CONSOLE_REMOTE=1 (the console and reload too), FN_STATUS_TOKEN (a bearer token that opens them),
FN_STATUS_HOSTS (host names they answer to besides addresses, localhost and this machine's name).
Endpoints: /_fn/health, /_fn/functions, /_fn/metrics, /_fn/calls/ID, /_fn/logs/NAME (?follow=1),
POST /_fn/reload and /console/ (a live page), for loopback clients only by default (/_fn/health answers everyone, with
its status only). POST /async-function/NAME queues a call (202 with X-Call-Id).
Signals: HUP reloads, TERM/INT stop.
)";

struct CommandLine {
  gateway::GatewayFlags flags;
  std::string log_format = "text";
  std::string log_format_source = "--log-format";
  std::string log_level = "info";
  std::string log_level_source = "--log-level";
  int max_connections = common::ServerSettings{}.max_connections;
  bool help = false;
  bool version = false;
};

class UsageError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

int connection_count(const std::string& value, const std::string& source) {
  constexpr int kMax = 1'000'000;
  auto parsed = common::parse_whole(value, 1, kMax);
  if (!parsed)
    throw UsageError(source + ": expected a whole number from 1 to " + std::to_string(kMax) +
                     ", got \"" + value + "\"");
  return static_cast<int>(*parsed);
}

CommandLine parse_command_line(int argc, char** argv, const gateway::Environment& env) {
  CommandLine line;
  if (auto it = env.find("FN_LOG_FORMAT"); it != env.end()) {
    line.log_format = it->second;
    line.log_format_source = "FN_LOG_FORMAT";
  }
  if (auto it = env.find("FN_LOG_LEVEL"); it != env.end()) {
    line.log_level = it->second;
    line.log_level_source = "FN_LOG_LEVEL";
  }
  std::optional<std::string> max_connections;  // checked once: a flag overrides a bad variable
  std::string max_connections_source = "FN_MAX_CONNECTIONS";
  if (auto it = env.find("FN_MAX_CONNECTIONS"); it != env.end()) max_connections = it->second;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    auto value = [&](const char* flag) {
      if (i + 1 >= argc) throw UsageError(std::string(flag) + ": missing value (see --help)");
      return std::string(argv[++i]);
    };
    if (arg == "-h" || arg == "--help") line.help = true;
    else if (arg == "-V" || arg == "--version") line.version = true;
    else if (arg == "--config") line.flags.config_path = value("--config");
    else if (arg == "--listen") line.flags.listen = value("--listen");
    else if (arg == "--log-format") {
      line.log_format = value("--log-format");
      line.log_format_source = "--log-format";
    }
    else if (arg == "--log-level") {
      line.log_level = value("--log-level");
      line.log_level_source = "--log-level";
    }
    else if (arg == "--max-connections") {
      max_connections = value("--max-connections");
      max_connections_source = "--max-connections";
    }
    else if (arg.starts_with("-")) throw UsageError("unknown option " + arg + " (see --help)");
    else if (line.flags.functions_dir) throw UsageError("more than one FUNCTIONS_DIR: " + arg);
    else line.flags.functions_dir = arg;
  }
  if (max_connections) line.max_connections = connection_count(*max_connections, max_connections_source);
  return line;
}

std::string find_watchdog(const gateway::Environment& env) {
  if (auto it = env.find("FN_WATCHDOG_BIN"); it != env.end()) return it->second;
  fs::path self = fs::read_symlink("/proc/self/exe");
  // Installed side by side, or in the build tree (build/gateway/ next to build/watchdog/).
  for (fs::path candidate : {self.parent_path() / "fastfn-watchdog",
                             self.parent_path().parent_path() / "watchdog" / "fastfn-watchdog"})
    if (::access(candidate.c_str(), X_OK) == 0) return candidate.string();
  throw UsageError("cannot find fastfn-watchdog next to " + self.string() + "; set FN_WATCHDOG_BIN");
}

// The console's files: FN_CONSOLE_DIR, else installed beside the binary (<prefix>/share/fastfn/
// console), else the source tree this binary was built from. Empty when none exists.
std::string find_console(const gateway::Environment& env) {
  if (auto it = env.find("FN_CONSOLE_DIR"); it != env.end()) return it->second;
  fs::path self = fs::read_symlink("/proc/self/exe");
  for (fs::path candidate : {self.parent_path().parent_path() / "share" / "fastfn" / "console",
                             fs::path(FASTFN_SOURCE_DIR) / "console"})
    if (fs::exists(candidate / "index.html")) return candidate.string();
  return "";
}

// Who may read /_fn/* and /console/: FN_STATUS_REMOTE, FN_CONSOLE_REMOTE, FN_STATUS_TOKEN and
// FN_STATUS_HOSTS, with this machine's own name among the hosts.
gateway::StatusAccess status_access_from(const gateway::Environment& env) {
  auto value = [&env](const char* name) {
    auto it = env.find(name);
    return it == env.end() ? std::string() : it->second;
  };
  gateway::StatusAccess access;
  access.remote_admin = value("FN_CONSOLE_REMOTE") == "1";
  access.remote_reads = access.remote_admin || value("FN_STATUS_REMOTE") == "1";
  access.token = value("FN_STATUS_TOKEN");
  access.hosts = gateway::parse_status_hosts(value("FN_STATUS_HOSTS"));
  char name[256] = {};
  if (::gethostname(name, sizeof name - 1) == 0 && name[0] != '\0')
    access.hosts.push_back(gateway::host_of(name));
  return access;
}

// The runtime shims: FN_SHIMS_DIR, else installed beside the binary (<prefix>/share/fastfn/shims),
// else the source tree this binary was built from. Empty when none exists.
std::string find_shims(const gateway::Environment& env) {
  if (auto it = env.find("FN_SHIMS_DIR"); it != env.end()) return it->second;
  fs::path self = fs::read_symlink("/proc/self/exe");
  for (fs::path candidate : {self.parent_path().parent_path() / "share" / "fastfn" / "shims",
                             fs::path(FASTFN_SOURCE_DIR) / "shims"})
    if (fs::exists(candidate / "python" / "fastfn_event.py")) return candidate.string();
  return "";
}

// The configuration, with what main finds on the machine.
gateway::GatewayConfig load_config(const gateway::GatewayFlags& flags,
                                   const gateway::Environment& env) {
  auto config = gateway::load_gateway_config(flags, env, ::getuid(), gateway::read_file_from_disk);
  config.shims_dir = find_shims(env);
  return config;
}

std::vector<std::string> environment_list() {
  std::vector<std::string> list;
  for (char** entry = environ; *entry; ++entry) list.emplace_back(*entry);
  return common::without_service_manager_variables(std::move(list));  // systemd's are ours alone
}

// Reloads (SIGHUP, a change in the functions dir) serialise here.
class Reloader {
 public:
  Reloader(const CommandLine& line, gateway::Environment env, gateway::Registry& registry)
      : line_(line), env_(std::move(env)), registry_(registry) {}

  gateway::GatewayConfig load() const {
    return load_config(line_.flags, env_);
  }
  void apply(gateway::GatewayConfig config) {
    std::lock_guard lock(mutex_);
    config_ = std::move(config);
    apply_scan();
  }
  void rescan() {
    std::lock_guard lock(mutex_);
    apply_scan();
  }
  // Set before the first apply(): where the functions whose dependencies are missing go.
  void set_installer(gateway::DependencyInstaller& installer) { installer_ = &installer; }
  gateway::GatewayConfig config() const {
    std::lock_guard lock(mutex_);
    return config_;
  }

 private:
  const CommandLine& line_;
  gateway::Environment env_;
  gateway::Registry& registry_;
  void apply_scan() {  // REQUIRES: mutex_ held
    auto result = gateway::discover(config_);
    if (installer_) installer_->request(result.installs);
    registry_.apply(config_, std::move(result));
  }

  mutable std::mutex mutex_;
  gateway::GatewayConfig config_;
  gateway::DependencyInstaller* installer_ = nullptr;
};

void announce(const gateway::Registry& registry, const common::Address& listen,
              int max_connections) {
  static const auto log = common::logger("gateway");
  std::string base = listen.kind == common::Address::Kind::kTcp
                         ? "http://" + (listen.host.empty() ? std::string("127.0.0.1") : listen.host) +
                               ":" + std::to_string(listen.port)
                         : listen.to_string();
  log->info("listening address={} health={}/_fn/health max_connections={}", listen.to_string(), base,
            max_connections);
  const auto snapshot = registry.current();
  for (const auto& function : snapshot->functions)
    for (const auto& route : function->spec.routes)
      log->info("serving function={} runtime={} format={} url={}{}", function->spec.name,
                function->spec.runtime, gateway::format_name(function->spec.format), base,
                route == "/" ? "/" : route);
}

// What SIGHUP and POST /_fn/reload do: the configuration read again, the functions rescanned.
// One that does not load is refused and the running one kept; returns why ("" when reloaded).
std::string reload(Reloader& reloader, gateway::HealthProber& prober, std::string_view cause) {
  static const auto log = common::logger("gateway");
  try {
    auto config = reloader.load();
    prober.set_interval(config.health_interval);
    reloader.apply(std::move(config));
    prober.poke();
    log->info("reloaded {}", cause);
    return {};
  } catch (const gateway::ConfigError& e) {
    log->error("reload refused, keeping the running configuration {} error=\"{}\"", cause,
               e.what());
    return e.what();
  }
}

// The function called `name` now; nullptr for none (a queued call may outlive its function).
std::shared_ptr<gateway::FunctionRuntime> function_named(const gateway::Registry& registry,
                                                         const std::string& name) {
  auto snapshot = registry.current();
  for (const auto& runtime : snapshot->functions)
    if (runtime->spec.name == name) return runtime;
  return nullptr;
}

// The queue of asynchronous calls, or nullptr when it is off. The default one may fail to open
// (a read-only working dir) with a warning; one the configuration names must open.
std::unique_ptr<gateway::CallQueue> open_queue(const std::string& queue,
                                               const gateway::Registry& registry) {
  static const auto log = common::logger("gateway.queue");
  if (queue == "off") return nullptr;
  if (queue.starts_with("nats://")) {
    auto timeout_of = [&registry](const std::string& function) {
      auto runtime = function_named(registry, function);
      return runtime ? runtime->timeout() : common::kNoTimeout;
    };
    auto nats = gateway::NatsCallQueue::open(queue, kResultLimit, timeout_of);
    if (!nats)
      throw gateway::ConfigError("queue: cannot use " + queue + ": " + nats.error().context);
    log->info("queue url={}", queue);
    return std::move(*nats);
  }
  const bool chosen = !queue.empty();
  fs::path path = chosen ? queue.substr(std::string_view("sqlite:").size()) : ".fastfn/queue.db";
  std::error_code ignored;
  if (!path.parent_path().empty() && !fs::exists(path.parent_path(), ignored)) {
    fs::create_directories(path.parent_path(), ignored);
    ::chmod(path.parent_path().c_str(), 0700);  // calls carry their clients' headers and bodies
  }
  auto store = gateway::CallStore::open(path.string(), kResultLimit);
  if (!store) {
    if (chosen)
      throw gateway::ConfigError("queue: cannot open \"" + path.string() +
                                 "\": " + store.error().context);
    log->warn("asynchronous calls are off: cannot open the queue path={} error=\"{}\"",
              path.string(), store.error().context);
    return nullptr;
  }
  log->info("queue path={}", path.string());
  return std::move(*store);
}

common::Result<common::HttpReply> deliver_callback(const std::string& url,
                                                   const protocol::Headers& headers,
                                                   const std::string& body) {
  auto parsed = common::parse_http_url(url);
  if (!parsed) return common::fail(common::Error::Code::kBadRequest, "not an http:// URL");
  return common::send_request(*parsed, "POST", headers, body, kCallbackTimeout, 64 * 1024);
}

std::optional<gateway::AsyncConfig> async_settings(const gateway::Registry& registry,
                                                   const std::string& function) {
  auto runtime = function_named(registry, function);
  if (!runtime) return std::nullopt;
  return runtime->spec.async;
}

// Waits for SIGTERM/SIGINT, reloading on each SIGHUP.
void wait_for_stop(Reloader& reloader, gateway::HealthProber& prober) {
  static const auto log = common::logger("gateway");
  int sig = common::wait_for_stop([&] { reload(reloader, prober, "signal=SIGHUP"); });
  log->info("stopping signal={}", strsignal(sig));
}

int run(const CommandLine& line, const gateway::Environment& env) {
  auto config = load_config(line.flags, env);
  for (const auto& ignored : config.ignored) common::logger("gateway")->warn("{}", ignored);
  std::string error;
  auto listen = common::parse_address(config.listen, &error);
  if (!listen) throw gateway::ConfigError("listen: expected an address, got \"" + config.listen + "\"");
  auto listener = common::open_or_adopt_listener(*listen);  // or the socket systemd passed
  common::require_private_dir(config.socket_base_dir);
  gateway::remove_stale_sockets(config.socket_base_dir);
  std::string watchdog = find_watchdog(env);

  // As a container's PID 1, orphans (a killed watchdog's handlers) are reparented to the gateway
  // and must be reaped; before the supervisor, so that its watchdogs are recorded as its own.
  common::OrphanReaper reaper;
  gateway::FunctionLogs logs;  // what the watchdogs wrote, for /_fn/logs
  gateway::Supervisor supervisor;
  // The watchdogs log on the same stderr: in the same format, at the same level.
  gateway::Registry registry(supervisor, watchdog, environment_list(),
                             {"--log-format", line.log_format, "--log-level", line.log_level},
                             &logs);
  Reloader reloader(line, env, registry);
  // An install that ended changes what the next scan finds (dependencies.h).
  gateway::DependencyInstaller installer(environment_list(), [&reloader] { reloader.rescan(); });
  reloader.set_installer(installer);
  reloader.apply(config);
  gateway::HealthProber prober([&registry] { return registry.upstreams(); },
                               config.health_interval);
  std::jthread idle_parker([&registry](std::stop_token stop) {
    std::mutex mutex;
    std::condition_variable_any tick;
    std::unique_lock lock(mutex);
    while (!tick.wait_for(lock, stop, std::chrono::seconds(1), [] { return false; }) &&
           !stop.stop_requested())
      registry.park_idle();
  });
  auto store = open_queue(config.queue, registry);
  gateway::Server server(registry);
  server.set_console(find_console(env));
  server.set_status_access(status_access_from(env));
  server.set_logs(logs);
  server.set_reload([&] { return reload(reloader, prober, "request=\"POST /_fn/reload\""); });
  common::ServerSettings settings;
  settings.max_connections = line.max_connections;
  common::HttpServer http(listener.socket, settings,
                          [&server](auto& request, auto& response) { server.handle(request, response); });
  // Queued calls run through the edge's handler on the queue's threads: admission, routing and
  // failover as for any client.
  gateway::InsideEdge inside(
      [&server](auto& request, auto& response) { server.handle(request, response); },
      kResultLimit);
  std::optional<gateway::AsyncCalls> calls;
  if (store) {
    gateway::AsyncCalls::Hooks hooks{
        [&inside](const auto& call) { return inside.run(call); }, deliver_callback,
        [&registry](const auto& name) { return async_settings(registry, name); },
        gateway::unix_now_ms};
    calls.emplace(*store, std::move(hooks));
    server.set_queue(*store, *calls);
  }
  http.start();
  if (calls) calls->start();
  announce(registry, listener.address, http.max_connections());
  gateway::DirWatcher watcher(config.functions_dir, [&reloader, &prober] {
    reloader.rescan();
    prober.poke();
  });
  watcher.start();
  common::notify_ready(http, "serving " + listener.address.to_string());

  wait_for_stop(reloader, prober);
  common::notify_stopping("draining");
  watcher.stop();
  installer.stop();  // no install ends in a rescan once stopping
  if (calls) calls->stop_claiming();  // what is queued stays queued for the next start
  server.begin_drain();  // health says "shutting down" before the first connection is refused
  http.stop_accepting();  // new connections are refused at once, not left hanging in the backlog
  http.begin_drain();
  // The requests in flight, and heads already arriving (served with Connection: close).
  for (auto deadline = Clock::now() + kDrainTimeout;
       (server.in_flight() > 0 || http.open_requests() > 0) && Clock::now() < deadline;)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  http.abort_connections();
  inside.abort_runs();
  if (calls) calls->stop();  // the runs cut by the abort stay running in the queue: run again
  idle_parker.request_stop();
  idle_parker.join();
  supervisor.stop_all();
  common::remove_listener(listener.address, listener.file);  // refused until now, then gone
  common::logger("gateway")->info("stopped");
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  common::block_control_signals();  // before any thread starts
  auto env = gateway::environment_from(environ);
  // A fatal error is one line in the format asked for, even when the command line does not parse.
  const auto fatal_format = common::requested_log_format(
      {argv + 1, argv + argc}, env.contains("FN_LOG_FORMAT") ? env.at("FN_LOG_FORMAT") : "");
  CommandLine line;
  try {
    line = parse_command_line(argc, argv, env);
    common::LogFormat format;
    if (!common::parse_log_format(line.log_format, &format))
      throw UsageError(line.log_format_source + ": expected text or json, got \"" +
                       line.log_format + "\"");
    if (!common::is_log_level(line.log_level))
      throw UsageError(line.log_level_source + ": expected " + std::string(common::kLogLevels) +
                       ", got \"" + line.log_level + "\"");
    if (line.help) {
      std::cout << kUsage;
      return 0;
    }
    if (line.version) {
      std::cout << "fastfn-gateway " << FASTFN_VERSION << "\n";
      return 0;
    }
    common::setup_logging(format, line.log_level);
    return run(line, env);
  } catch (const UsageError& e) {
    common::print_fatal(fatal_format, "fastfn-gateway", e.what());
    return 2;
  } catch (const gateway::ConfigError& e) {
    common::print_fatal(fatal_format, "fastfn-gateway", e.what());
    return 2;
  } catch (const common::ListenError& e) {
    common::print_fatal(fatal_format, "fastfn-gateway", e.what());
    return 2;
  } catch (const std::exception& e) {
    common::print_fatal(fatal_format, "fastfn-gateway", std::string("fatal: ") + e.what());
    return 1;
  }
}
