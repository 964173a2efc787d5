#include "gateway/discovery.h"

#include <algorithm>
#include <cstdio>
#include <iterator>
#include <set>
#include <utility>

namespace gateway {
namespace {

namespace fs = std::filesystem;

constexpr int kMaxDepth = 32;
constexpr std::string_view kConfigFile = "fn.config.json";
constexpr std::string_view kReserved[] = {"/_fn", "/_", "/console"};

// A handler file found in a folder, or a fn.config.json command (file empty unless the command
// is a program inside the folder).
struct Handler {
  std::string runtime;
  fs::path file;
};

std::optional<std::string> read_text(const fs::path& path) {
  return read_file_from_disk(path.string());
}

bool is_regular(const fs::path& path) {
  std::error_code ec;
  return fs::is_regular_file(path, ec);
}

bool is_executable(const fs::path& path) {
  std::error_code ec;
  const auto perms = fs::status(path, ec).permissions();
  constexpr auto kAnyExec = fs::perms::owner_exec | fs::perms::group_exec | fs::perms::others_exec;
  return !ec && (perms & kAnyExec) != fs::perms::none;
}

bool is_reserved(std::string_view route) {
  return std::any_of(std::begin(kReserved), std::end(kReserved), [&](std::string_view prefix) {
    return route.starts_with(prefix) &&
           (route.size() == prefix.size() || route[prefix.size()] == '/');
  });
}

// FNV-1a: stable across runs and builds, unlike std::hash.
void mix(std::uint64_t& hash, std::string_view bytes) {
  for (unsigned char c : bytes) hash = (hash ^ c) * 1099511628211ULL;
  hash = (hash ^ 0x1f) * 1099511628211ULL;  // field separator
}

std::string fingerprint(const FunctionSpec& spec, const std::string& config_text,
                        const fs::path& handler) {
  std::uint64_t hash = 14695981039346656037ULL;
  mix(hash, config_text);
  std::error_code ec;
  if (!handler.empty()) {
    mix(hash, std::to_string(fs::file_size(handler, ec)));
    mix(hash, std::to_string(fs::last_write_time(handler, ec).time_since_epoch().count()));
  }
  for (const auto& list : {spec.command, spec.external_sockets, spec.routes}) {
    for (const auto& item : list) mix(hash, item);
    mix(hash, "|");
  }
  mix(hash, spec.runtime);
  mix(hash, std::to_string(spec.daemons));
  mix(hash, std::to_string(spec.on_demand) + "/" + std::to_string(spec.idle_ttl.count()));
  char hex[17];
  std::snprintf(hex, sizeof hex, "%016llx", static_cast<unsigned long long>(hash));
  return hex;
}

class Walker {
 public:
  Walker(const GatewayConfig& config, DiscoveryResult& result) : config_(config), result_(result) {}

  void run();

 private:
  void read_root_config();
  void walk(const fs::path& dir, int depth, std::vector<fs::path>& ancestors);
  bool skipped(const fs::path& dir) const;
  void visit(const fs::path& dir);
  std::vector<Handler> find_handlers(const fs::path& dir) const;
  std::optional<Handler> choose(const std::string& name, const FunctionConfig& fn,
                                std::vector<Handler> handlers, const fs::path& dir);
  bool enabled(const std::string& name, const std::string& runtime);
  FunctionSpec make_spec(const std::string& name, const fs::path& dir, const Handler& handler,
                         const FunctionConfig& fn) const;
  std::string shown(const fs::path& rel) const;
  void finish();
  void problem(std::string line) { result_.problems.push_back(std::move(line)); }

  const GatewayConfig& config_;
  DiscoveryResult& result_;
  fs::path root_;
  std::optional<fs::path> assets_dir_;
  // Fingerprint inputs not kept in FunctionSpec, by function name.
  std::map<std::string, std::pair<std::string, fs::path>> sources_;
};

// Paths as the user wrote them ("functions/hello/fn.config.json"), not absolute ones.
std::string Walker::shown(const fs::path& rel) const {
  return (fs::path(config_.functions_dir) / rel).lexically_normal().generic_string();
}

void Walker::read_root_config() {
  const fs::path file = root_ / kConfigFile;
  if (!is_regular(file)) return;
  const auto text = read_text(file);
  if (!text) return problem("cannot read " + shown(kConfigFile));
  auto parsed = parse_root_config(*text, shown(kConfigFile));
  if (!parsed) return problem(parsed.error());
  if (!*parsed) return;
  assets_dir_ = (root_ / (*parsed)->dir).lexically_normal();
  result_.assets = AssetsConfig{assets_dir_->string(), (*parsed)->run_worker_first};
  std::error_code ec;
  if (!fs::is_directory(*assets_dir_, ec)) {
    problem("assets dir " + shown((*parsed)->dir) + " does not exist yet; assets answer 404");
  }
}

bool Walker::skipped(const fs::path& dir) const {
  const std::string name = dir.filename().string();
  return name.starts_with('.') || name.starts_with('_') || name == "node_modules" ||
         (assets_dir_ && dir.lexically_normal() == *assets_dir_);
}

void Walker::walk(const fs::path& dir, int depth, std::vector<fs::path>& ancestors) {
  std::error_code ec;
  std::vector<fs::path> subdirs;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code type_ec;
    if (it->is_directory(type_ec) && !skipped(it->path())) subdirs.push_back(it->path());
  }
  if (ec)
    problem("cannot read folder " + shown(dir.lexically_relative(root_)) + ": " + ec.message());
  std::sort(subdirs.begin(), subdirs.end());
  for (const fs::path& sub : subdirs) {
    const fs::path real = fs::canonical(sub, ec);
    if (ec) continue;
    const std::string rel = sub.lexically_relative(root_).generic_string();
    if (std::find(ancestors.begin(), ancestors.end(), real) != ancestors.end() ||
        depth >= kMaxDepth) {
      problem("folder " + shown(rel) + ": symlink loop or nesting deeper than 32, not walked");
      continue;
    }
    visit(sub);
    ancestors.push_back(real);
    walk(sub, depth + 1, ancestors);
    ancestors.pop_back();
  }
}

std::vector<Handler> Walker::find_handlers(const fs::path& dir) const {
  std::vector<Handler> found;
  if (is_regular(dir / "handler.py")) found.push_back({"python", "handler.py"});
  if (is_regular(dir / "handler.js")) {
    found.push_back({"node", "handler.js"});
  } else if (is_regular(dir / "handler.mjs")) {
    found.push_back({"node", "handler.mjs"});
  }
  if (is_regular(dir / "handler.sh")) found.push_back({"sh", "handler.sh"});
  if (is_regular(dir / "handler") && is_executable(dir / "handler"))
    found.push_back({"exec", "handler"});
  return found;
}

bool Walker::enabled(const std::string& name, const std::string& runtime) {
  if (config_.runtime_rank(runtime)) return true;
  problem("function \"" + name + "\": runtime " + runtime +
          " is disabled (not in FN_RUNTIMES), skipped");
  return false;
}

std::optional<Handler> Walker::choose(const std::string& name, const FunctionConfig& fn,
                                      std::vector<Handler> handlers, const fs::path& dir) {
  if (!fn.command.empty()) {
    const fs::path program(fn.command.front());
    const bool inside = program.is_absolute() && program.string().starts_with(dir.string() + "/");
    Handler chosen{fn.runtime.value_or("exec"), inside ? program.lexically_relative(dir) : ""};
    return enabled(name, chosen.runtime) ? std::optional(chosen) : std::nullopt;
  }
  if (fn.runtime) {
    std::erase_if(handlers, [&](const Handler& h) { return h.runtime != *fn.runtime; });
    if (handlers.empty()) {
      problem(shown(fs::path(name) / kConfigFile) + ": key \"runtime\": \"" + *fn.runtime +
              "\" but the folder has no handler for it, skipped");
      return std::nullopt;
    }
  }
  std::erase_if(handlers, [&](const Handler& h) { return !enabled(name, h.runtime); });
  if (handlers.empty()) return std::nullopt;
  std::stable_sort(handlers.begin(), handlers.end(), [&](const Handler& a, const Handler& b) {
    return *config_.runtime_rank(a.runtime) < *config_.runtime_rank(b.runtime);
  });
  const std::string route = fn.routes ? fn.routes->front() : "/" + name;
  for (auto it = handlers.begin() + 1; it != handlers.end(); ++it) {
    problem("route " + route + ": " + handlers.front().runtime + " function \"" + name +
            "\" wins over " + it->runtime + " (FN_RUNTIMES order)");
  }
  return handlers.front();
}

FunctionSpec Walker::make_spec(const std::string& name, const fs::path& dir, const Handler& handler,
                               const FunctionConfig& fn) const {
  FunctionSpec spec;
  spec.name = name;
  spec.dir = spec.workdir = dir;
  spec.routes = fn.routes.value_or(std::vector<std::string>{"/" + name});
  spec.runtime = handler.runtime;
  spec.format = fn.format.value_or(Format::kCgi);
  if (!fn.command.empty()) {
    spec.command = fn.command;
  } else if (handler.runtime == "exec") {
    spec.command = {"./handler"};
  } else {
    spec.command = {config_.binary_for(handler.runtime).value_or(handler.runtime),
                    handler.file.string()};
  }
  spec.methods = fn.methods;
  spec.timeout_ms = fn.timeout_ms;
  spec.idle_timeout_ms = fn.idle_timeout_ms;
  spec.max_body_bytes = fn.max_body_bytes;
  spec.min_instances = fn.min_instances;
  spec.max_instances = fn.max_instances;
  spec.max_requests = fn.max_requests;
  spec.daemons = fn.daemons.value_or(config_.daemons_for(handler.runtime));
  spec.env = fn.env;
  spec.cgi_headers = fn.cgi_headers;
  spec.worker_pool = fn.worker_pool.value_or(WorkerPoolConfig{});
  spec.on_demand = spec.worker_pool.min_warm.value_or(config_.min_warm) == 0;
  spec.idle_ttl = spec.worker_pool.idle_ttl ? *spec.worker_pool.idle_ttl : config_.idle_ttl;
  spec.include_debug_headers = fn.include_debug_headers;
  return spec;
}

void Walker::visit(const fs::path& dir) {
  const std::string name = dir.lexically_relative(root_).generic_string();
  const fs::path config_path = dir / kConfigFile;
  const bool has_config = is_regular(config_path);
  std::vector<Handler> handlers = find_handlers(dir);
  if (handlers.empty() && !has_config) {
    if (is_regular(dir / "handler"))
      problem(shown(fs::path(name) / "handler") + ": not executable, ignored");
    return;
  }
  if (!is_valid_function_name(name)) {
    return problem("folder " + shown(name) + ": name not usable in a URL path, skipped");
  }
  const auto config_text = has_config ? read_text(config_path) : std::string();
  if (!config_text)
    return problem("cannot read " + shown(fs::path(name) / kConfigFile) + ", skipped");
  FunctionConfig fn;
  if (has_config) {
    auto parsed = parse_function_config(*config_text, shown(fs::path(name) / kConfigFile), dir);
    if (!parsed) return problem(parsed.error() + " (function skipped)");
    fn = std::move(*parsed);
  }
  if (handlers.empty() && fn.command.empty()) {
    return problem(shown(fs::path(name) / kConfigFile) +
                   ": no handler file and no \"command\", not a function");
  }
  const auto handler = choose(name, fn, std::move(handlers), dir);
  if (!handler) return;
  result_.functions.push_back(make_spec(name, dir, *handler, fn));
  sources_[name] = {*config_text, handler->file.empty() ? fs::path() : dir / handler->file};
}

void Walker::run() {
  std::error_code ec;
  root_ = fs::absolute(config_.functions_dir, ec).lexically_normal();
  if (!root_.has_filename()) root_ = root_.parent_path();
  if (!fs::is_directory(root_, ec)) {
    problem("functions dir " + config_.functions_dir +
            " is not a folder; no functions found there");
  } else {
    read_root_config();
    for (const char* file : {"handler.py", "handler.js", "handler.mjs", "handler.sh", "handler"}) {
      if (is_regular(root_ / file)) {
        problem(shown(file) + ": the functions dir itself is not a function; use a subfolder");
      }
    }
    std::vector<fs::path> ancestors{fs::canonical(root_, ec)};
    walk(root_, 1, ancestors);
  }
  finish();
}

void attach_sockets(const GatewayConfig& config, std::vector<FunctionSpec>& functions) {
  for (const auto& entry : config.runtime_sockets) {
    const std::string& name = entry.first;
    const std::vector<std::string>& addresses = entry.second;
    auto it = std::find_if(functions.begin(), functions.end(),
                           [&](const FunctionSpec& f) { return f.name == name; });
    if (it == functions.end()) {
      FunctionSpec remote;
      remote.name = name;
      remote.routes = {"/" + name};
      remote.runtime = "remote";
      remote.remote = true;
      it = functions.insert(functions.end(), std::move(remote));
    }
    it->external_sockets = addresses;
    it->daemons = static_cast<int>(addresses.size());
    it->on_demand = false;  // nothing of ours to start
  }
}

void drop_reserved(std::vector<FunctionSpec>& functions, std::vector<std::string>& problems) {
  for (FunctionSpec& f : functions) {
    std::erase_if(f.routes, [&](const std::string& route) {
      if (!is_reserved(route)) return false;
      problems.push_back("function \"" + f.name + "\": route " + route +
                         " is reserved (/_fn, /_/, /console), refused");
      return true;
    });
  }
}

// Conflict order: remote functions (explicit sockets) first, then the runtimes order, then name.
std::size_t rank(const GatewayConfig& config, const FunctionSpec& f) {
  return f.remote ? 0 : 1 + config.runtime_rank(f.runtime).value_or(config.runtimes.size());
}

std::string loser_line(const std::string& route, const FunctionSpec& winner,
                       const FunctionSpec& loser) {
  const char* why = winner.remote                     ? "explicit runtime-sockets"
                    : winner.runtime == loser.runtime ? "same runtime: first by name"
                                                      : "FN_RUNTIMES order";
  return "route " + route + ": " + winner.runtime + " function \"" + winner.name + "\" wins over " +
         loser.runtime + " function \"" + loser.name + "\" (" + why + ")";
}

void resolve_conflicts(const GatewayConfig& config, std::vector<FunctionSpec>& functions,
                       std::vector<std::string>& problems) {
  std::map<std::string, std::vector<std::size_t>> claims;
  for (std::size_t i = 0; i < functions.size(); ++i) {
    for (const auto& route : functions[i].routes) claims[route].push_back(i);
  }
  for (auto& [route, owners] : claims) {
    if (owners.size() < 2) continue;
    std::stable_sort(owners.begin(), owners.end(), [&](std::size_t a, std::size_t b) {
      return rank(config, functions[a]) < rank(config, functions[b]);
    });
    for (auto it = owners.begin() + 1; it != owners.end(); ++it) {
      problems.push_back(loser_line(route, functions[owners.front()], functions[*it]));
      std::erase(functions[*it].routes, route);
    }
  }
}

// Remote sockets, reserved routes, fingerprints, route conflicts, in that order: fingerprints
// describe the function itself, not which routes other functions took from it.
void Walker::finish() {
  auto& functions = result_.functions;
  auto& problems = result_.problems;
  attach_sockets(config_, functions);
  std::sort(functions.begin(), functions.end(),
            [](const FunctionSpec& a, const FunctionSpec& b) { return a.name < b.name; });
  drop_reserved(functions, problems);
  for (FunctionSpec& f : functions) {
    const auto& [text, handler] = sources_[f.name];
    f.fingerprint = fingerprint(f, text, handler);
  }
  resolve_conflicts(config_, functions, problems);
  std::erase_if(functions, [&](const FunctionSpec& f) {
    if (!f.routes.empty()) return false;
    problems.push_back("function \"" + f.name + "\": no route left, skipped");
    return true;
  });
}

}  // namespace

DiscoveryResult discover(const GatewayConfig& config) {
  DiscoveryResult result;
  Walker(config, result).run();
  return result;
}

}  // namespace gateway
