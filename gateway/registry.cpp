#include "gateway/registry.h"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <functional>
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

// "api/users" -> "api_users"; anything but [A-Za-z0-9_-] becomes '_'.
std::string socket_name(const std::string& function) {
  std::string name;
  for (char c : function)
    name += (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_') ? c : '_';
  if (name.size() > 40) name = name.substr(0, 24) + "-" + std::to_string(std::hash<std::string>{}(function) % 1000000007);
  return name;
}

std::vector<std::string> with_env(std::vector<std::string> base,
                                  const std::map<std::string, std::string>& extra) {
  std::erase_if(base, [&extra](const std::string& entry) {
    return extra.count(entry.substr(0, entry.find('='))) > 0;
  });
  for (const auto& [name, value] : extra) base.push_back(name + "=" + value);
  return base;
}

}  // namespace

Registry::Registry(Supervisor& supervisor, std::string watchdog_binary,
                   std::vector<std::string> base_env)
    : supervisor_(supervisor),
      watchdog_binary_(std::move(watchdog_binary)),
      base_env_(std::move(base_env)),
      snapshot_(std::make_shared<const Snapshot>()) {
  base_env_.push_back("FASTFN_PARENT_PID=" + std::to_string(::getpid()));
}

std::string Registry::socket_path(const GatewayConfig& config, const FunctionSpec& spec, int index) {
  return config.socket_base_dir + "/" + std::to_string(::getpid()) + "-" + socket_name(spec.name) +
         "-" + std::to_string(generation_) + "-" + std::to_string(index) + ".sock";
}

std::vector<std::string> Registry::watchdog_argv(const FunctionSpec& spec,
                                                 const std::string& socket) const {
  std::vector<std::string> argv{watchdog_binary_, "--listen", "unix:" + socket, "--format",
                                std::string(format_name(spec.format)), "--name", spec.name,
                                "--workdir", spec.workdir.string()};
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
  argv.push_back("--");
  argv.insert(argv.end(), spec.command.begin(), spec.command.end());
  return argv;
}

std::shared_ptr<FunctionRuntime> Registry::launch(const GatewayConfig& config,
                                                  const FunctionSpec& spec) {
  std::vector<std::shared_ptr<Upstream>> upstreams;
  std::vector<DaemonSpec> daemons;
  if (!spec.external_sockets.empty()) {
    for (std::size_t i = 0; i < spec.external_sockets.size(); ++i) {
      auto address = common::parse_address(spec.external_sockets[i]);
      if (address)
        upstreams.push_back(std::make_shared<Upstream>(spec.name, static_cast<int>(i), *address, false));
    }
  } else {
    for (int i = 0; i < spec.daemons; ++i) {
      std::string path = socket_path(config, spec, i);
      common::Address address{common::Address::Kind::kUnix, path, "", 0};
      auto upstream = std::make_shared<Upstream>(spec.name, i, address, true);
      upstreams.push_back(upstream);
      daemons.push_back({watchdog_argv(spec, path), with_env(base_env_, spec.env), path, upstream});
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
  ++generation_;
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
  for (const auto& function : next->functions) specs.push_back(function->spec);
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
