#include "gateway/discovery.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <iterator>
#include <set>
#include <system_error>
#include <utility>

#include "common/unique_fd.h"
#include "gateway/dependencies.h"
#include "gateway/file_routes.h"
#include "gateway/handler_contract.h"

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

// ENOENT and ENOTDIR say the thing is gone (a real removal, or a race with one); any other errno
// says nothing about what is there.
bool is_gone(int error) { return error == ENOENT || error == ENOTDIR; }

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
  Walker(const GatewayConfig& config, const TreeReader& reader, DiscoveryResult& result)
      : config_(config), reader_(reader), result_(result) {}

  // The failure that leaves the whole walk meaningless, if any (then result is incomplete).
  std::optional<ReadFailure> run();

 private:
  void read_root_config();
  void walk(const fs::path& dir, const std::vector<TreeReader::Entry>& entries, int depth,
            std::vector<fs::path>& ancestors);
  bool skipped(const fs::path& dir) const;
  void visit(const fs::path& dir, const std::vector<TreeReader::Entry>& entries);
  bool visit_file_routes(const fs::path& dir, const std::vector<TreeReader::Entry>& entries,
                         const FunctionConfig& fn, const std::string& config_text);
  void broken(const std::string& name, const fs::path& dir, const std::vector<Handler>& handlers,
              std::string config_text, std::string reason);
  std::vector<Handler> find_handlers(const fs::path& dir) const;
  std::optional<Handler> choose(const std::string& name, const FunctionConfig& fn,
                                std::vector<Handler> handlers, const fs::path& dir);
  bool enabled(const std::string& name, const std::string& runtime);
  std::optional<HandlerContract> contract_of(const std::string& name, const fs::path& dir,
                                            const Handler& handler, const FunctionConfig& fn);
  FunctionSpec make_spec(const std::string& name, const fs::path& dir, const Handler& handler,
                         const FunctionConfig& fn, const HandlerContract& contract) const;
  std::optional<std::string> read_optional(const std::string& name, const fs::path& dir,
                                           const fs::path& file);
  std::optional<DependencyState> dependencies_of(const FunctionSpec& spec);
  std::optional<Manifest> manifest_of(const FunctionSpec& spec);
  std::optional<std::string> build_sources(const FunctionSpec& spec, const std::string& first,
                                           const fs::path& folder, std::string_view extension,
                                           bool optional);
  std::string shown(const fs::path& rel) const;
  void finish();
  void problem(std::string line) { result_.problems.push_back(std::move(line)); }
  void unread(ReadFailure failure, const fs::path& rel, std::string name, bool self, bool below) {
    result_.unread.push_back({std::move(failure), shown(rel), std::move(name), self, below});
  }

  const GatewayConfig& config_;
  const TreeReader& reader_;
  DiscoveryResult& result_;
  std::optional<ReadFailure> fatal_;
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
  const auto text = reader_.read(file);
  if (!text) {
    // The assets config is the root's: without it the walk cannot say what is served.
    if (!is_gone(text.error().error)) fatal_ = text.error();
    return;
  }
  auto parsed = parse_root_config(*text, shown(kConfigFile));
  if (!parsed) return problem(parsed.error());
  if (!*parsed) return;
  assets_dir_ = (root_ / (*parsed)->dir).lexically_normal();
  result_.assets = **parsed;
  result_.assets->dir = assets_dir_->string();
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

// `entries` are dir's. Each subfolder is listed before it is visited: one that cannot be listed
// (out of fds, EACCES) cannot say which handler files it holds either, so it is an Unread for
// the function it may be and the functions below it, which keep their last state.
void Walker::walk(const fs::path& dir, const std::vector<TreeReader::Entry>& entries, int depth,
                  std::vector<fs::path>& ancestors) {
  std::vector<fs::path> subdirs;
  for (const TreeReader::Entry& entry : entries) {
    fs::path path = dir / entry.name;
    if (entry.is_dir && !skipped(path)) subdirs.push_back(std::move(path));
  }
  std::sort(subdirs.begin(), subdirs.end());
  for (const fs::path& sub : subdirs) {
    const std::string rel = sub.lexically_relative(root_).generic_string();
    std::error_code ec;
    const fs::path real = fs::canonical(sub, ec);
    if (ec) {
      if (!is_gone(ec.value())) unread(ReadFailure{sub, ec.value()}, rel, rel, true, true);
      continue;
    }
    if (std::find(ancestors.begin(), ancestors.end(), real) != ancestors.end() ||
        depth >= kMaxDepth) {
      problem("folder " + shown(rel) + ": symlink loop or nesting deeper than 32, not walked");
      continue;
    }
    const auto listed = reader_.list(sub);
    if (!listed) {
      if (!is_gone(listed.error().error)) unread(listed.error(), rel, rel, true, true);
      continue;
    }
    visit(sub, *listed);
    ancestors.push_back(real);
    walk(sub, *listed, depth + 1, ancestors);
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
  if (is_regular(dir / "handler.php")) found.push_back({"php", "handler.php"});
  if (is_regular(dir / "handler.lua")) found.push_back({"lua", "handler.lua"});
  if (is_regular(dir / "handler.sh")) found.push_back({"sh", "handler.sh"});
  if (is_regular(dir / "handler") && is_executable(dir / "handler"))
    found.push_back({"exec", "handler"});
  if (is_regular(dir / "go.mod")) {
    found.push_back({"go", "go.mod"});
  } else if (is_regular(dir / "handler.go")) {
    found.push_back({"go", "handler.go"});
  }
  if (is_regular(dir / "Cargo.toml")) found.push_back({"rust", "Cargo.toml"});
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
  if (fn.runtime)  // visit() made sure one is left
    std::erase_if(handlers, [&](const Handler& h) { return h.runtime != *fn.runtime; });
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

// How the chosen handler is run: invoke.handler names the event contract, a format keeps what it
// says, and otherwise the handler's source tells (handler_contract.h). nullopt: the source could
// not be read, and the walk recorded why.
std::optional<HandlerContract> Walker::contract_of(const std::string& name, const fs::path& dir,
                                                   const Handler& handler,
                                                   const FunctionConfig& fn) {
  if (fn.handler) return HandlerContract{HandlerContract::Kind::kEvent, *fn.handler};
  const bool scripted = handler.runtime == "python" || handler.runtime == "node";
  if (fn.format || !fn.command.empty() || !scripted) return HandlerContract{};
  const auto source = reader_.read(dir / handler.file);
  if (source) return detect_contract(handler.runtime, *source);
  if (is_gone(source.error().error)) {
    problem("cannot read " + shown(fs::path(name) / handler.file) + ", skipped");
  } else {
    unread(source.error(), fs::path(name) / handler.file, name, true, false);
  }
  return std::nullopt;
}

FunctionSpec Walker::make_spec(const std::string& name, const fs::path& dir, const Handler& handler,
                               const FunctionConfig& fn, const HandlerContract& contract) const {
  using Kind = HandlerContract::Kind;
  FunctionSpec spec;
  spec.name = name;
  spec.dir = spec.workdir = dir;
  spec.routes = fn.routes.value_or(std::vector<std::string>{"/" + name});
  spec.runtime = handler.runtime;
  // A Go or Rust program is a server as such programs are written (listening on PORT), unless it
  // says.
  const bool compiled = handler.runtime == "go" || handler.runtime == "rust";
  const Format detected = compiled                           ? Format::kServer
                          : contract.kind == Kind::kCgi ? Format::kCgi
                                                        : Format::kHttp;
  spec.format = fn.format.value_or(detected);
  const std::string binary = config_.binary_for(handler.runtime).value_or(handler.runtime);
  if (!fn.command.empty()) {
    spec.command = fn.command;
  } else if (handler.runtime == "exec") {
    spec.command = {"./handler"};
  } else if (handler.runtime == "go") {
    spec.command = {go_program(dir).string()};
  } else if (contract.kind == Kind::kEvent) {
    const char* shim =
        handler.runtime == "python" ? "python/fastfn_event.py" : "node/fastfn_event.js";
    spec.command = {binary, (fs::path(config_.shims_dir) / shim).string(), handler.file.string(),
                    contract.function};
    spec.event_contract = true;
  } else {
    spec.command = {binary, handler.file.string()};
  }
  spec.methods = fn.methods;
  spec.timeout_ms = fn.timeout_ms;
  spec.idle_timeout_ms = fn.idle_timeout_ms;
  spec.max_body_bytes = fn.max_body_bytes;
  spec.min_instances = fn.min_instances;
  spec.max_instances = fn.max_instances;
  spec.max_concurrency = fn.max_concurrency;
  spec.max_requests = fn.max_requests;
  spec.daemons = fn.daemons.value_or(config_.daemons_for(handler.runtime));
  spec.env = fn.env;
  if (spec.event_contract) spec.env.emplace("FN_FUNCTION_NAME", name);  // the event's context
  spec.cgi_headers = fn.cgi_headers;
  if (handler.runtime == "php" && fn.command.empty()) {
    // php-cgi prints CGI headers, runs the script SCRIPT_FILENAME names, and refuses to run
    // without REDIRECT_STATUS (cgi.force_redirect, PHP's guard against being called directly).
    spec.cgi_headers = spec.format == Format::kCgi;
    spec.env.emplace("SCRIPT_FILENAME", (dir / handler.file).string());
    spec.env.emplace("REDIRECT_STATUS", "200");
  }
  spec.worker_pool = fn.worker_pool.value_or(WorkerPoolConfig{});
  spec.async = fn.async;
  spec.on_demand = spec.worker_pool.min_warm.value_or(config_.min_warm) == 0;
  spec.idle_ttl = spec.worker_pool.idle_ttl ? *spec.worker_pool.idle_ttl : config_.idle_ttl;
  spec.include_debug_headers = fn.include_debug_headers;
  return spec;
}

// A handler file no runtime runs ("handler.rb"), when the folder has no other: its name says the
// folder is meant as a function.
std::optional<std::string> foreign_handler(const std::vector<TreeReader::Entry>& entries) {
  std::vector<std::string> names;
  for (const auto& entry : entries)
    if (!entry.is_dir && entry.name.starts_with("handler.")) names.push_back(entry.name);
  if (names.empty()) return std::nullopt;
  return *std::min_element(names.begin(), names.end());
}

void Walker::broken(const std::string& name, const fs::path& dir,
                    const std::vector<Handler>& handlers, std::string config_text,
                    std::string reason) {
  problem(reason + " (function not ready until fixed)");
  FunctionSpec spec;
  spec.name = name;
  spec.dir = spec.workdir = dir;
  spec.routes = {"/" + name};
  spec.runtime = handlers.empty() ? "none" : handlers.front().runtime;
  spec.broken = std::move(reason);
  result_.functions.push_back(std::move(spec));
  sources_[name] = {std::move(config_text),
                    handlers.empty() ? fs::path() : dir / handlers.front().file};
}

void Walker::visit(const fs::path& dir, const std::vector<TreeReader::Entry>& entries) {
  const std::string name = dir.lexically_relative(root_).generic_string();
  const fs::path config_path = dir / kConfigFile;
  const bool has_config = is_regular(config_path);
  std::vector<Handler> handlers = find_handlers(dir);
  if (handlers.empty() && !has_config) {
    if (visit_file_routes(dir, entries, FunctionConfig{}, "")) return;
    if (is_regular(dir / "handler"))
      problem(shown(fs::path(name) / "handler") + ": not executable, ignored");
    else if (auto file = foreign_handler(entries); file && is_valid_function_name(name))
      broken(name, dir, handlers, "",
             shown(fs::path(name) / *file) +
                 ": no runtime runs it (handler.py, handler.js or .mjs, handler.php, "
                 "handler.lua, handler.sh, handler.go or go.mod, Cargo.toml, or an executable "
                 "handler; or a \"command\" in fn.config.json)");
    return;
  }
  if (!is_valid_function_name(name)) {
    return problem("folder " + shown(name) + ": name not usable in a URL path, skipped");
  }
  std::string config_text;
  if (has_config) {
    auto text = reader_.read(config_path);
    if (!text && !is_gone(text.error().error))
      return unread(text.error(), fs::path(name) / kConfigFile, name, true, false);
    if (!text) return problem("cannot read " + shown(fs::path(name) / kConfigFile) + ", skipped");
    config_text = std::move(*text);
  }
  FunctionConfig fn;
  if (has_config) {
    auto parsed = parse_function_config(config_text, shown(fs::path(name) / kConfigFile), dir);
    if (!parsed) return broken(name, dir, handlers, std::move(config_text), parsed.error());
    fn = std::move(*parsed);
  }
  if (handlers.empty() && fn.command.empty()) {
    if (visit_file_routes(dir, entries, fn, config_text)) return;
    return broken(name, dir, handlers, std::move(config_text),
                  shown(fs::path(name) / kConfigFile) + ": no handler file and no \"command\"");
  }
  if (fn.command.empty() && fn.runtime &&
      std::none_of(handlers.begin(), handlers.end(),
                   [&](const Handler& h) { return h.runtime == *fn.runtime; })) {
    return broken(name, dir, handlers, std::move(config_text),
                  shown(fs::path(name) / kConfigFile) + ": key \"runtime\": \"" + *fn.runtime +
                      "\" but the folder has no handler for it");
  }
  const auto handler = choose(name, fn, std::move(handlers), dir);
  if (!handler) return;
  if (fn.handler && handler->runtime != "python" && handler->runtime != "node") {
    return broken(name, dir, {*handler}, std::move(config_text),
                  shown(fs::path(name) / kConfigFile) +
                      ": key \"invoke.handler\": expected a python or node handler file to name "
                      "a function of, got a " + handler->runtime + " handler");
  }
  const auto contract = contract_of(name, dir, *handler, fn);
  if (!contract) return;
  if (contract->kind == HandlerContract::Kind::kEvent && config_.shims_dir.empty()) {
    return broken(name, dir, {*handler}, std::move(config_text),
                  shown(fs::path(name) / handler->file) +
                      ": a FastFN handler(event) needs fastfn's shims, which are not installed "
                      "(set FN_SHIMS_DIR to fastfn's shims/ folder)");
  }
  FunctionSpec spec = make_spec(name, dir, *handler, fn, *contract);
  if (handler->runtime == "rust" && fn.command.empty()) {
    const auto manifest = reader_.read(dir / "Cargo.toml");
    if (!manifest) {
      if (!is_gone(manifest.error().error))
        return unread(manifest.error(), fs::path(name) / "Cargo.toml", name, true, false);
      return problem("cannot read " + shown(fs::path(name) / "Cargo.toml") + ", skipped");
    }
    const std::string binary = cargo_binary_name(*manifest);
    if (binary.empty())
      return broken(name, dir, {*handler}, std::move(config_text),
                    shown(fs::path(name) / "Cargo.toml") +
                        ": no [package] name (nor a [[bin]] name) says which program it builds");
    spec.command = {rust_program(dir, binary).string()};
  }
  std::string installed;  // a fingerprint input: an install that ends restarts the function
  if (fn.command.empty() && !manifest_for(handler->runtime).empty()) {
    auto state = dependencies_of(spec);
    if (!state) return;
    installed = state->fingerprint;
    if (state->kind == DependencyState::Kind::kReady) {
      for (auto& [key, value] : state->env) {
        auto [it, added] = spec.env.emplace(key, value);
        if (!added) it->second = value + ":" + it->second;  // the function's own after ours
      }
    } else {
      spec.broken = state->reason;
      spec.installing = state->kind == DependencyState::Kind::kInstalling;
      if (state->install) result_.installs.push_back(std::move(*state->install));
    }
  }
  result_.functions.push_back(std::move(spec));
  sources_[name] = {config_text + "\n" + installed,
                    handler->file.empty() ? fs::path() : dir / handler->file};
}

// A folder without a handler whose files are FastFN's file routes: each one that defines a
// handler(event) is a function, with the folder's fn.config.json (if any) for its settings and its
// file's name for its route and method. Whether the folder had any file named as a route.
bool Walker::visit_file_routes(const fs::path& dir, const std::vector<TreeReader::Entry>& entries,
                               const FunctionConfig& fn, const std::string& config_text) {
  const fs::path rel = dir.lexically_relative(root_);
  std::string folder_route;
  for (const auto& part : rel) folder_route += "/" + route_segment(part.string());
  bool any = false;
  std::vector<TreeReader::Entry> files(entries);
  std::sort(files.begin(), files.end(),
            [](const auto& a, const auto& b) { return a.name < b.name; });
  for (const TreeReader::Entry& entry : files) {
    if (entry.is_dir) continue;
    const fs::path file_rel = rel / entry.name;
    auto route = file_route(folder_route, entry.name);
    if (!route) {
      problem(shown(file_rel) + ": not a file route: " + route.error());
      continue;
    }
    if (!*route) continue;
    any = true;
    const std::string name = folder_route.substr(1) + "/" + (*route)->stem;
    const Handler handler{(*route)->runtime, entry.name};
    if (!is_valid_function_name(name)) {
      problem(shown(file_rel) + ": name not usable in a URL path, skipped");
      continue;
    }
    if (!enabled(name, handler.runtime)) continue;
    const auto source = reader_.read(dir / entry.name);
    if (!source) {
      if (!is_gone(source.error().error)) unread(source.error(), file_rel, name, true, false);
      continue;
    }
    const HandlerContract contract = detect_contract(handler.runtime, *source);
    if (contract.kind != HandlerContract::Kind::kEvent) {
      // A helper module beside the routes is not one; a file named as a route should be.
      if ((*route)->explicit_name)
        problem(shown(file_rel) + ": named as a file route but defines no handler(event), "
                "not served");
      continue;
    }
    FunctionSpec spec = make_spec(name, dir, handler, fn, contract);
    spec.routes = {(*route)->route};
    if (!(*route)->methods.empty()) spec.methods = (*route)->methods;
    spec.file_route = true;
    if (config_.shims_dir.empty())
      spec.broken = shown(file_rel) + ": a FastFN handler(event) needs fastfn's shims, which are "
                    "not installed (set FN_SHIMS_DIR to fastfn's shims/ folder)";
    result_.functions.push_back(std::move(spec));
    sources_[name] = {config_text, dir / entry.name};
  }
  return any;
}

// The file's content; "" when it does not exist. nullopt when it could not be read (recorded).
std::optional<std::string> Walker::read_optional(const std::string& name, const fs::path& dir,
                                                 const fs::path& file) {
  if (!is_regular(dir / file)) return std::string();
  auto text = reader_.read(dir / file);
  if (text) return std::move(*text);
  if (is_gone(text.error().error)) return std::string();
  unread(text.error(), fs::path(name) / file, name, true, false);
  return std::nullopt;
}

std::optional<DependencyState> Walker::dependencies_of(const FunctionSpec& spec) {
  const auto manifest = manifest_of(spec);
  if (!manifest) return std::nullopt;
  if (manifest->name.empty()) return DependencyState{};  // none
  const fs::path state(kStateDir);
  const auto ok = read_optional(spec.name, spec.dir, state / "deps.ok");
  const auto failed = read_optional(spec.name, spec.dir, state / "deps.failed");
  if (!ok || !failed) return std::nullopt;
  const std::string tool = spec.runtime == "node" ? std::string("npm")
                           : spec.runtime == "php"
                               ? config_.binary_for("composer").value_or("composer")
                               : config_.binary_for(spec.runtime).value_or(spec.runtime);
  return dependency_state(spec.name, spec.dir, spec.runtime, *manifest, *ok, *failed, tool);
}

// What a build is keyed by: `first`, then the files of `folder` (of the function's folder) ending
// in `extension`, sorted, each as "path\0content\0". A `folder` that is gone holds none when
// `optional`. nullopt: something could not be read (recorded).
std::optional<std::string> Walker::build_sources(const FunctionSpec& spec, const std::string& first,
                                                 const fs::path& folder,
                                                 std::string_view extension, bool optional) {
  std::vector<std::string> files{first};
  const auto entries = reader_.list(spec.dir / folder);
  if (entries) {
    for (const auto& entry : *entries)
      if (!entry.is_dir && entry.name.ends_with(extension))
        files.push_back((folder / entry.name).generic_string());
  } else if (!optional || !is_gone(entries.error().error)) {
    unread(entries.error(), folder.empty() ? fs::path(spec.name) : fs::path(spec.name) / folder,
           spec.name, true, false);
    return std::nullopt;
  }
  std::sort(files.begin() + 1, files.end());
  std::string sources;
  for (const auto& file : files) {
    const auto text = read_optional(spec.name, spec.dir, file);
    if (!text) return std::nullopt;
    sources += file + '\0' + *text + '\0';
  }
  return sources;
}

// The manifest the function's install is made of; an empty name when it has none.
std::optional<Manifest> Walker::manifest_of(const FunctionSpec& spec) {
  Manifest manifest;
  if (spec.runtime == "go") {
    // The program is built from every .go file of the folder and its module files.
    manifest.name = is_regular(spec.dir / "go.mod") ? "go.mod" : "handler.go";
    const auto sources = build_sources(spec, "go.mod", "", ".go", false);
    const auto sum = sources ? read_optional(spec.name, spec.dir, "go.sum") : std::nullopt;
    if (!sum) return std::nullopt;
    manifest.text = *sources;
    manifest.lock = *sum;
    return manifest;
  }
  if (spec.runtime == "rust") {
    // The program is built from Cargo.toml and the .rs files of src/. Cargo.lock is left out:
    // cargo writes it at the first build, which would change the key and build again.
    manifest.name = "Cargo.toml";
    const auto sources = build_sources(spec, "Cargo.toml", "src", ".rs", true);
    if (!sources) return std::nullopt;
    manifest.text = *sources;
    return manifest;
  }
  const fs::path file(manifest_for(spec.runtime));
  if (file.empty() || !is_regular(spec.dir / file)) return manifest;
  manifest.name = file.string();
  const auto text = read_optional(spec.name, spec.dir, file);
  const auto lock = spec.runtime == "node"
                        ? read_optional(spec.name, spec.dir, "package-lock.json")
                        : std::optional<std::string>("");
  if (!text || !lock) return std::nullopt;
  manifest.text = *text;
  manifest.lock = *lock;
  return manifest;
}

std::optional<ReadFailure> Walker::run() {
  std::error_code ec;
  root_ = fs::absolute(config_.functions_dir, ec).lexically_normal();
  if (!root_.has_filename()) root_ = root_.parent_path();
  struct stat st;
  if (::stat(root_.c_str(), &st) != 0 && !is_gone(errno)) return ReadFailure{root_, errno};
  if (!fs::is_directory(root_, ec)) {
    problem("functions dir " + config_.functions_dir +
            " is not a folder; no functions found there");
  } else {
    read_root_config();
    if (fatal_) return fatal_;
    for (const char* file : {"handler.py", "handler.js", "handler.mjs", "handler.php",
                             "handler.lua", "handler.sh", "handler", "handler.go"}) {
      if (is_regular(root_ / file)) {
        problem(shown(file) + ": the functions dir itself is not a function; use a subfolder");
      }
    }
    const auto entries = reader_.list(root_);
    if (!entries && !is_gone(entries.error().error)) return entries.error();
    std::vector<fs::path> ancestors{fs::canonical(root_, ec)};
    if (entries) walk(root_, *entries, 1, ancestors);  // else it was removed just now
  }
  finish();
  return std::nullopt;
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
  if (!f.broken.empty()) return SIZE_MAX;  // a route is never taken from one that runs
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
  // Two functions share a route only for different methods (orders/get.py, orders/post.py).
  auto overlap = [&](std::size_t a, std::size_t b) {
    const auto &ma = functions[a].methods, &mb = functions[b].methods;
    return ma.empty() || mb.empty() ||
           std::any_of(ma.begin(), ma.end(), [&](const std::string& m) {
             return std::find(mb.begin(), mb.end(), m) != mb.end();
           });
  };
  for (auto& [route, owners] : claims) {
    if (owners.size() < 2) continue;
    std::stable_sort(owners.begin(), owners.end(), [&](std::size_t a, std::size_t b) {
      return rank(config, functions[a]) < rank(config, functions[b]);
    });
    std::vector<std::size_t> kept;
    for (std::size_t owner : owners) {
      auto winner = std::find_if(kept.begin(), kept.end(),
                                 [&](std::size_t k) { return overlap(k, owner); });
      if (winner == kept.end()) {
        kept.push_back(owner);
        continue;
      }
      problems.push_back(loser_line(route, functions[*winner], functions[owner]));
      std::erase(functions[owner].routes, route);
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

ReadResult<DiscoveryResult> scan(const GatewayConfig& config, const TreeReader& reader) {
  DiscoveryResult result;
  if (auto failure = Walker(config, reader, result).run()) return tl::unexpected(*failure);
  return result;
}

// --- the disk, and the memory of reloads

namespace {

class DiskReader final : public TreeReader {
 public:
  ReadResult<std::vector<Entry>> list(const fs::path& dir) const override {
    std::error_code ec;
    std::vector<Entry> entries;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      std::error_code type_ec;
      entries.push_back({it->path().filename().string(), it->is_directory(type_ec)});
    }
    if (ec) return tl::unexpected(ReadFailure{dir, ec.value()});
    return entries;
  }

  ReadResult<std::string> read(const fs::path& file) const override {
    const common::UniqueFd fd(::open(file.c_str(), O_RDONLY | O_CLOEXEC));
    if (!fd) return tl::unexpected(ReadFailure{file, errno});
    std::string content;
    char buffer[16 * 1024];
    for (;;) {
      const ssize_t n = ::read(fd.get(), buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n < 0) return tl::unexpected(ReadFailure{file, errno});
      if (n == 0) return content;
      content.append(buffer, static_cast<std::size_t>(n));
    }
  }
};

bool covers(const Unread& unread, const std::string& name) {
  return (unread.self && name == unread.name) ||
         (unread.below && (unread.name.empty() || name.starts_with(unread.name + "/")));
}

// Puts back the last spec of every function that `now` could not read. A route that a function
// read in this scan has taken in the meantime wins: two functions never share a route.
void hold_unread(const std::vector<FunctionSpec>& last, DiscoveryResult& now) {
  std::set<std::string> names, routes;
  for (const FunctionSpec& f : now.functions) {
    names.insert(f.name);
    routes.insert(f.routes.begin(), f.routes.end());
  }
  for (const FunctionSpec& f : last) {
    if (f.remote || names.contains(f.name)) continue;
    if (std::none_of(now.unread.begin(), now.unread.end(),
                     [&](const Unread& u) { return covers(u, f.name); }))
      continue;
    const auto taken = std::find_if(f.routes.begin(), f.routes.end(),
                                    [&](const std::string& r) { return routes.contains(r); });
    if (taken != f.routes.end()) {
      now.problems.push_back("function \"" + f.name + "\": could not be read and its route " +
                             *taken + " is now another function's, unloaded");
      continue;
    }
    routes.insert(f.routes.begin(), f.routes.end());
    now.functions.push_back(f);
  }
  std::sort(now.functions.begin(), now.functions.end(),
            [](const FunctionSpec& a, const FunctionSpec& b) { return a.name < b.name; });
}

}  // namespace

bool ReadFailure::transient() const {
  return error == EMFILE || error == ENFILE || error == ENOMEM || error == ENOBUFS ||
         error == EAGAIN || error == EINTR;
}

std::string ReadFailure::reason() const {
  return std::error_code(error, std::system_category()).message();
}

const TreeReader& disk_reader() {
  static const DiskReader reader;
  return reader;
}

Discovery::Discovery(const TreeReader& reader) : reader_(reader) {}

DiscoveryResult Discovery::discover(const GatewayConfig& config) {
  // Held through the walk: a reload that read an older tree must not store its result after a
  // newer one (reloads are serialised by the caller anyway).
  std::lock_guard lock(mutex_);
  auto scanned = scan(config, reader_);
  std::set<std::string> failing;
  DiscoveryResult result;
  if (!scanned) {
    const ReadFailure& failure = scanned.error();
    if (last_) result = *last_;
    failing.insert(failure.path.string());
    if (!failing_.contains(failure.path.string())) {
      result.problems.push_back("cannot read the functions dir " + config.functions_dir + " (" +
                                failure.path.string() + ": " + failure.reason() +
                                "); nothing changes until it can be read, " +
                                std::to_string(result.functions.size()) + " functions kept");
    }
    retry_wanted_ = failure.transient();
  } else {
    result = std::move(*scanned);
    if (last_) hold_unread(last_->functions, result);
    retry_wanted_ = false;
    for (const Unread& unread : result.unread) {
      retry_wanted_ = retry_wanted_ || unread.failure.transient();
      if (!failing.insert(unread.shown).second || failing_.contains(unread.shown)) continue;
      const std::string what = unread.below
                                   ? "the functions in it keep their last loaded state"
                                   : "function \"" + unread.name + "\" keeps its last loaded state";
      result.problems.push_back("cannot read " + unread.shown + ": " + unread.failure.reason() +
                                "; " + what + " until it can be read");
    }
  }
  failing_ = std::move(failing);
  last_ = DiscoveryResult{result.functions, {}, result.assets, {}, {}};
  return result;
}

bool Discovery::retry_wanted() const {
  std::lock_guard lock(mutex_);
  return retry_wanted_;
}

Discovery& process_discovery() {
  static Discovery discovery(disk_reader());
  return discovery;
}

DiscoveryResult discover(const GatewayConfig& config) {
  return process_discovery().discover(config);
}

}  // namespace gateway
