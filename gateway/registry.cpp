#include "gateway/registry.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <map>

#include "common/listener.h"
#include "common/logging.h"

namespace gateway {
namespace {

namespace fs = std::filesystem;

std::shared_ptr<spdlog::logger> log() {
  static const auto logger = common::logger("gateway.registry");
  return logger;
}

constexpr std::size_t kSunPathMax = 107;  // sizeof(sockaddr_un::sun_path) less its NUL
constexpr std::size_t kReadableMax = 40;

// "api/users" -> "api_users": only a hint for people listing the dir (it is not injective: the
// launch serial is what tells two functions' sockets apart).
std::string readable(const std::string& function) {
  std::string name;
  for (char c : function)
    name += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
  return name;
}

}  // namespace

std::string socket_path(const std::string& dir, long pid, const std::string& function,
                        std::uint64_t launch, int index) {
  const std::string head = dir + "/" + std::to_string(pid) + "-";
  const std::string tail = "-" + std::to_string(launch) + "-" + std::to_string(index) + ".sock";
  const std::size_t fixed = head.size() + tail.size();
  const std::size_t room = fixed < kSunPathMax ? std::min(kSunPathMax - fixed, kReadableMax) : 0;
  return head + readable(function).substr(0, room) + tail;
}

std::vector<std::string> watchdog_argv(const std::string& binary, const FunctionSpec& spec,
                                       const std::string& socket,
                                       const std::vector<std::string>& shared_flags) {
  // --flags-only first: the function's env is in the watchdog's environment for its handlers,
  // and must configure nothing of the watchdog itself.
  std::vector<std::string> argv{binary, "--flags-only"};
  argv.insert(argv.end(), shared_flags.begin(), shared_flags.end());
  argv.insert(argv.end(), {"--listen", "unix:" + socket, "--format",
                           std::string(format_name(spec.format)), "--name", spec.name, "--workdir",
                           spec.workdir.string()});
  auto option = [&argv](const char* flag, const std::optional<std::uint64_t>& value,
                        const char* unit) {
    if (value) argv.insert(argv.end(), {flag, std::to_string(*value) + unit});
  };
  option("--exec-timeout", spec.timeout_ms, "ms");
  option("--idle-timeout", spec.idle_timeout_ms, "ms");
  option("--max-body", spec.max_body_bytes, "");
  option("--min-instances", spec.min_instances, "");
  option("--max-instances", spec.max_instances, "");
  option("--max-requests", spec.max_requests, "");
  option("--max-concurrency", spec.max_concurrency, "");
  if (spec.cgi_headers) argv.push_back("--cgi-headers");
  argv.push_back("--");
  argv.insert(argv.end(), spec.command.begin(), spec.command.end());
  return argv;
}

std::vector<std::string> watchdog_env(std::vector<std::string> base, const FunctionSpec& spec,
                                      long parent_pid) {
  auto name_of = [](const std::string& entry) { return entry.substr(0, entry.find('=')); };
  std::erase_if(base, [&](const std::string& entry) {
    const std::string name = name_of(entry);
    return name == kParentPidVariable || spec.env.count(name) > 0;
  });
  for (const auto& [name, value] : spec.env)
    if (name != kParentPidVariable) base.push_back(name + "=" + value);
  // Last and not the function's to set: the watchdog follows this gateway by it.
  base.push_back(std::string(kParentPidVariable) + "=" + std::to_string(parent_pid));
  return base;
}

Registry::Registry(Supervisor& supervisor, std::string watchdog_binary,
                   std::vector<std::string> base_env, std::vector<std::string> watchdog_flags,
                   FunctionLogs* logs)
    : supervisor_(supervisor),
      watchdog_binary_(std::move(watchdog_binary)),
      base_env_(std::move(base_env)),
      watchdog_flags_(std::move(watchdog_flags)),
      logs_(logs),
      snapshot_(std::make_shared<const Snapshot>()) {}

std::shared_ptr<FunctionRuntime> Registry::launch(const GatewayConfig& config,
                                                  const FunctionSpec& spec) {
  std::vector<std::shared_ptr<Upstream>> upstreams;
  std::vector<DaemonSpec> daemons;
  if (!spec.broken.empty()) {
    // Listed and answering 503 with the reason; nothing to start until the folder is fixed.
    log()->warn("function not ready name={} error=\"{}\"", spec.name, spec.broken);
    return std::make_shared<FunctionRuntime>(spec, upstreams);
  }
  if (!spec.external_sockets.empty()) {
    for (std::size_t i = 0; i < spec.external_sockets.size(); ++i) {
      auto address = common::parse_address(spec.external_sockets[i]);
      if (address)
        upstreams.push_back(std::make_shared<Upstream>(spec.name, static_cast<int>(i), *address, false));
    }
  } else {
    const long pid = ::getpid();
    const std::uint64_t launch = ++launches_;  // never reused: no two daemons share a socket path
    const auto env = watchdog_env(base_env_, spec, pid);
    // By name: the log outlives this launch, so a relaunch (a changed function) writes on in it.
    const auto log = logs_ ? logs_->open(spec.name) : nullptr;
    for (int i = 0; i < spec.daemons; ++i) {
      std::string path = socket_path(config.socket_base_dir, pid, spec.name, launch, i);
      common::Address address{common::Address::Kind::kUnix, path, "", 0};
      auto upstream = std::make_shared<Upstream>(spec.name, i, address, true);
      upstreams.push_back(upstream);
      daemons.push_back({watchdog_argv(watchdog_binary_, spec, path, watchdog_flags_), env, spec.command,
                         spec.workdir.string(), path, upstream, log});
    }
  }
  const auto start = spec.on_demand ? Supervisor::Start::kParked : Supervisor::Start::kNow;
  for (auto& daemon : daemons) supervisor_.start(std::move(daemon), start);
  log()->info("function loaded name={} runtime={} format={} routes={} sockets={}{}", spec.name,
              spec.runtime, format_name(spec.format), fmt::join(spec.routes, ","), upstreams.size(),
              spec.on_demand ? " start=on_demand" : "");
  auto function = std::make_shared<FunctionRuntime>(spec, upstreams);
  if (spec.on_demand) {
    function->on_demand = std::make_unique<OnDemand>(
        spec.idle_ttl,
        [this, upstreams, name = spec.name] {
          log()->info("function starting on demand name={}", name);
          for (const auto& upstream : upstreams) supervisor_.unpark(upstream);
        },
        [this, upstreams, name = spec.name, ttl = spec.idle_ttl] {
          log()->info("function parked name={} idle_ms={}", name, ttl.count());
          for (const auto& upstream : upstreams) supervisor_.park(upstream);
        });
  }
  return function;
}

void Registry::park_idle() {
  const auto now = OnDemand::Clock::now();
  const auto snapshot = current();  // held: a range-for would drop a temporary before the loop
  for (const auto& function : snapshot->functions)
    if (function->on_demand) function->on_demand->park_if_idle(now);
}

void Registry::stop(const FunctionRuntime& function) {
  for (const auto& upstream : function.upstreams) {
    upstream->drop_idle();
    if (upstream->supervised()) supervisor_.stop(upstream);
  }
}

void Registry::apply(const GatewayConfig& config, const DiscoveryResult& discovered) {
  std::lock_guard lock(reload_mutex_);
  for (const auto& problem : discovered.problems) log()->warn("{}", problem);
  auto old = current();
  std::map<std::string, std::shared_ptr<FunctionRuntime>> kept;
  for (const auto& function : old->functions) kept[function->spec.name] = function;
  auto next = std::make_shared<Snapshot>();
  for (const auto& spec : discovered.functions) {
    auto it = kept.find(spec.name);
    if (it != kept.end() && it->second->spec.fingerprint == spec.fingerprint) {
      next->functions.push_back(it->second);
      kept.erase(it);
    } else {
      next->functions.push_back(launch(config, spec));
    }
  }
  std::vector<FunctionSpec> specs;
  std::vector<std::string> names;
  for (const auto& function : next->functions) {
    specs.push_back(function->spec);
    names.push_back(function->spec.name);
  }
  if (logs_) logs_->keep_only(names);
  next->routes = RouteTable(specs);
  next->assets = discovered.assets;
  snapshot_.store(std::move(next));
  // Stopped only now: requests already routed to them finish while the watchdogs drain.
  for (const auto& [name, function] : kept) {
    log()->info("function unloaded name={}", name);
    stop(*function);
  }
}

std::vector<std::shared_ptr<Upstream>> Registry::upstreams() const {
  std::vector<std::shared_ptr<Upstream>> all;
  const auto snapshot = current();
  for (const auto& function : snapshot->functions)
    all.insert(all.end(), function->upstreams.begin(), function->upstreams.end());
  return all;
}

void Registry::clear() {
  std::lock_guard lock(reload_mutex_);
  snapshot_.store(std::make_shared<const Snapshot>());
}

void remove_stale_sockets(const std::string& dir) {
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    if (!entry.is_socket(ec) || entry.path().extension() != ".sock") continue;
    if (!common::unix_socket_in_use(entry.path().string())) fs::remove(entry.path(), ec);
  }
}

}  // namespace gateway
