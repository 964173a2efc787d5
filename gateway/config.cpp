#include "gateway/config.h"

#include <fmt/format.h>
#include <rapidjson/document.h>

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>
#include <utility>

#include "common/units.h"
#include "gateway/function_config.h"
#include "gateway/json_fields.h"

namespace gateway {
namespace {

namespace fs = std::filesystem;
using json::FieldError;
using rapidjson::Value;
using std::chrono::milliseconds;

constexpr std::string_view kAddressWhat =
    "an address unix:/abs/path, tcp:HOST:PORT, HOST:PORT or :PORT";
constexpr std::string_view kDaemonsWhat =
    "an object of runtime -> count (1..64) or a string \"python=3,node=2\"";
constexpr std::string_view kRuntimesWhat =
    "a list of distinct runtimes from python, node, php, lua, sh, exec, go (array or "
    "\"python,node\")";
constexpr std::string_view kBinariesWhat =
    "an object of runtime (python, node, php, lua, sh, go) -> non-empty program name";
constexpr std::string_view kSocketsWhat =
    "an object of function name -> address or array of addresses (unix:/abs/path, tcp:HOST:PORT)";
constexpr std::string_view kIntervalWhat =
    "milliseconds (10..3600000) or a duration from 10ms to 1h such as \"1s\" or \"250ms\"";
constexpr milliseconds kMinInterval{10};
constexpr milliseconds kMaxInterval{3'600'000};
constexpr std::string_view kMinWarmWhat = "a number of watchdogs from 0 to 64";
constexpr std::string_view kIdleTtlWhat =
    "seconds (1..86400) or a duration from 1s to 24h such as \"300s\" or \"5m\"";
constexpr milliseconds kMinIdleTtl{1000};
constexpr milliseconds kMaxIdleTtl{86'400'000};

// One source's settings; unset fields leave the lower layers' values alone.
struct Layer {
  std::optional<std::string> functions_dir, listen, socket_base_dir, queue;
  std::optional<std::vector<std::string>> runtimes;
  std::optional<milliseconds> health_interval, idle_ttl;
  std::optional<std::uint32_t> min_warm;
  std::map<std::string, int> daemons;
  std::map<std::string, std::string> binaries;
  std::map<std::string, std::vector<std::string>> sockets;
  // runtime-sockets keyed by runtime (FastFN's form): that many watchdogs per function, which wins
  // over runtime-daemons as FastFN's explicit sockets win over its generated ones.
  std::map<std::string, int> socket_daemons;
  std::vector<std::string> ignored;
};

// Runtimes of FastFN's that fastfn does not run: its own docs set their binaries in
// runtime-binaries, and runtime-sockets keyed by runtime is FastFN's form.
constexpr std::string_view kFastFnOnlyRuntimes[] = {"openresty", "deno", "bun"};

bool is_fastfn_only_runtime(std::string_view name) {
  return std::find(std::begin(kFastFnOnlyRuntimes), std::end(kFastFnOnlyRuntimes), name) !=
         std::end(kFastFnOnlyRuntimes);
}

// Runs `read`, turning its FieldError into a ConfigError that names `source` (and `key`).
template <class Read>
auto from(std::string_view source, std::string_view key, Read&& read) {
  try {
    return read();
  } catch (const FieldError& e) {
    std::string where(source);
    if (!key.empty()) where += ": key \"" + std::string(key) + "\"";
    throw ConfigError(where + ": " + e.what());
  }
}

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

std::vector<std::string_view> split_list(std::string_view text) {
  std::vector<std::string_view> parts;
  while (!text.empty()) {
    const std::size_t comma = text.find(',');
    const std::string_view part = trim(text.substr(0, comma));
    if (!part.empty()) parts.push_back(part);
    if (comma == std::string_view::npos) break;
    text.remove_prefix(comma + 1);
  }
  return parts;
}

bool is_known_runtime(std::string_view name) {
  return std::find(std::begin(kKnownRuntimes), std::end(kKnownRuntimes), name) !=
         std::end(kKnownRuntimes);
}

// A number of watchdogs, `min` to kMaxDaemons, written as plain digits.
std::optional<int> parse_count(std::string_view digits, int min) {
  auto n = common::parse_whole(digits, min, kMaxDaemons);
  if (!n) return std::nullopt;
  return static_cast<int>(*n);
}

// "sqlite:PATH", "nats://HOST[:PORT]" or "off".
std::string check_queue(std::string queue) {
  if (queue == "off" || (queue.starts_with("sqlite:") && queue.size() > 7) ||
      (queue.starts_with("nats://") && queue.size() > 7))
    return queue;
  throw FieldError("expected sqlite:PATH (such as sqlite:/var/lib/fastfn/queue.db), "
                   "nats://HOST:PORT or off, got " +
                   json::quoted(queue));
}

std::string check_address(std::string address) {
  if (!is_valid_address(address)) json::fail_text(kAddressWhat, address);
  return address;
}

std::string check_dir(const Value& value) {
  std::string dir = json::read_string(value, "a non-empty folder path");
  if (dir.empty()) json::fail("a non-empty folder path", value);
  return dir;
}

std::map<std::string, int> daemons_from_text(std::string_view text) {
  std::map<std::string, int> out;
  for (std::string_view item : split_list(text)) {
    const std::size_t eq = item.find('=');
    const std::string_view name = trim(item.substr(0, eq));
    const auto count =
        eq == std::string_view::npos ? std::nullopt : parse_count(trim(item.substr(eq + 1)), 1);
    if (!is_known_runtime(name) || !count) json::fail_text(kDaemonsWhat, text);
    out[std::string(name)] = *count;
  }
  return out;
}

std::map<std::string, int> daemons_from_json(const Value& value) {
  if (value.IsString()) return daemons_from_text(value.GetString());
  if (!value.IsObject()) json::fail(kDaemonsWhat, value);
  std::map<std::string, int> out;
  for (const auto& m : value.GetObject()) {
    const std::string name = m.name.GetString();
    const bool count_ok = m.value.IsUint64() && m.value.GetUint64() >= 1 &&
                          m.value.GetUint64() <= static_cast<std::uint64_t>(kMaxDaemons);
    if (!is_known_runtime(name) || !count_ok) json::fail(kDaemonsWhat, value);
    out[name] = static_cast<int>(m.value.GetUint64());
  }
  return out;
}

std::vector<std::string> runtimes_from_list(const std::vector<std::string>& names,
                                            std::string_view shown) {
  if (names.empty()) json::fail_text(kRuntimesWhat, shown);
  for (auto it = names.begin(); it != names.end(); ++it) {
    if (!is_known_runtime(*it) || std::find(names.begin(), it, *it) != it) {
      json::fail_text(kRuntimesWhat, shown);
    }
  }
  return names;
}

std::vector<std::string> runtimes_from_text(std::string_view text) {
  std::vector<std::string> names;
  for (std::string_view part : split_list(text)) names.emplace_back(part);
  return runtimes_from_list(names, text);
}

std::vector<std::string> runtimes_from_json(const Value& value) {
  if (value.IsString()) return runtimes_from_text(value.GetString());
  return runtimes_from_list(json::read_string_array(value, kRuntimesWhat), json::excerpt(value));
}

std::map<std::string, std::string> binaries_from_json(const Value& value,
                                                      std::vector<std::string>& ignored) {
  if (!value.IsObject()) json::fail(kBinariesWhat, value);
  std::map<std::string, std::string> out;
  for (const auto& m : value.GetObject()) {
    // FastFN names the tool (FN_CARGO_BIN); fastfn's key is the runtime's.
    const std::string name = m.name.GetString() == std::string_view("cargo") ? "rust"
                                                                              : m.name.GetString();
    if (is_fastfn_only_runtime(name)) {
      ignored.push_back("runtime-binaries." + name + " is not taken: fastfn has no " + name +
                        " runtime (fastfn-gateway is the edge itself; an exec function with a "
                        "\"command\" runs any program)");
      continue;
    }
    if ((!is_known_runtime(name) && name != "composer") || name == "exec")
      json::fail(kBinariesWhat, value);
    if (!m.value.IsString() || m.value.GetStringLength() == 0) json::fail(kBinariesWhat, value);
    out[name] = m.value.GetString();
  }
  return out;
}

std::vector<std::string> addresses_from_json(const Value& value) {
  std::vector<std::string> list;
  if (value.IsString()) {
    list.emplace_back(value.GetString());
  } else {
    list = json::read_string_array(value, kSocketsWhat);
    if (list.empty()) json::fail(kSocketsWhat, value);
  }
  for (auto& address : list) check_address(address);
  return list;
}

void sockets_from_json(const Value& value, Layer& layer) {
  if (!value.IsObject()) json::fail(kSocketsWhat, value);
  layer.sockets.clear();
  layer.socket_daemons.clear();
  for (const auto& m : value.GetObject()) {
    const std::string name = m.name.GetString();
    if (!is_valid_function_name(name)) {
      json::fail_text("function names such as \"hello\" or \"api/users\"", name);
    }
    const auto addresses = addresses_from_json(m.value);
    // FastFN keys it by runtime: the sockets its daemon of that runtime listens on, one daemon
    // serving all of the runtime's functions. fastfn's watchdogs each serve one function, on
    // sockets of the gateway's, so the count is what carries over (read as fastfn's form, the key
    // would be a remote function at /python).
    if (is_fastfn_only_runtime(name)) {
      layer.ignored.push_back("runtime-sockets." + name + " is not taken: fastfn has no " + name +
                              " runtime");
    } else if (is_known_runtime(name)) {
      const int count = static_cast<int>(std::min<std::size_t>(addresses.size(), kMaxDaemons));
      layer.socket_daemons[name] = count;
      layer.ignored.push_back(fmt::format(
          "runtime-sockets.{0} is FastFN's form (the sockets of its {0} daemons): fastfn runs {1} "
          "watchdog{2} per {0} function instead, on sockets of its own, as runtime-daemons "
          "{0}={1} would",
          name, count, count == 1 ? "" : "s"));
    } else {
      layer.sockets[name] = addresses;
    }
  }
}

milliseconds interval_from_text(std::string_view text) {
  const auto interval = common::parse_duration(trim(text));
  if (!interval || *interval < kMinInterval || *interval > kMaxInterval) {
    json::fail_text(kIntervalWhat, text);
  }
  return *interval;
}

milliseconds interval_from_json(const Value& value) {
  if (value.IsString()) return interval_from_text(value.GetString());
  if (!value.IsUint64()) json::fail(kIntervalWhat, value);
  const milliseconds interval(static_cast<milliseconds::rep>(
      std::min<std::uint64_t>(value.GetUint64(), kMaxInterval.count() + 1)));
  if (interval < kMinInterval || interval > kMaxInterval) json::fail(kIntervalWhat, value);
  return interval;
}

std::uint32_t min_warm_from_text(std::string_view text) {
  const auto count = parse_count(trim(text), 0);
  if (!count) json::fail_text(kMinWarmWhat, text);
  return static_cast<std::uint32_t>(*count);
}

std::uint32_t min_warm_from_json(const Value& value) {
  if (!value.IsUint() || value.GetUint() > kMaxDaemons) json::fail(kMinWarmWhat, value);
  return value.GetUint();
}

milliseconds idle_ttl_from_text(std::string_view text) {
  const auto ttl = common::parse_duration(trim(text));
  if (!ttl || *ttl < kMinIdleTtl || *ttl > kMaxIdleTtl) json::fail_text(kIdleTtlWhat, text);
  return *ttl;
}

milliseconds idle_ttl_from_json(const Value& value) {
  if (value.IsString()) return idle_ttl_from_text(value.GetString());
  if (!value.IsUint64() || value.GetUint64() < 1 || value.GetUint64() > 86'400)
    json::fail(kIdleTtlWhat, value);
  return std::chrono::seconds(value.GetUint64());
}

// A JSON object given as an environment variable's text.
rapidjson::Document env_json(const std::string& text) {
  auto doc = json::parse_object(text);
  if (!doc) throw FieldError(doc.error());
  return std::move(*doc);
}

using FileKeyReader = void (*)(Layer&, const Value&);

const std::map<std::string_view, FileKeyReader>& file_keys() {
  static const std::map<std::string_view, FileKeyReader> keys = {
      {"functions-dir", [](Layer& l, const Value& v) { l.functions_dir = check_dir(v); }},
      {"listen", [](Layer& l, const Value& v) { l.listen = check_address(json::read_string(v)); }},
      {"runtime-daemons", [](Layer& l, const Value& v) { l.daemons = daemons_from_json(v); }},
      {"runtime-binaries",
       [](Layer& l, const Value& v) { l.binaries = binaries_from_json(v, l.ignored); }},
      {"runtimes", [](Layer& l, const Value& v) { l.runtimes = runtimes_from_json(v); }},
      {"socket-base-dir", [](Layer& l, const Value& v) { l.socket_base_dir = check_dir(v); }},
      {"runtime-sockets", [](Layer& l, const Value& v) { sockets_from_json(v, l); }},
      {"health-interval",
       [](Layer& l, const Value& v) { l.health_interval = interval_from_json(v); }},
      {"min-warm", [](Layer& l, const Value& v) { l.min_warm = min_warm_from_json(v); }},
      {"idle-ttl", [](Layer& l, const Value& v) { l.idle_ttl = idle_ttl_from_json(v); }},
      {"queue", [](Layer& l, const Value& v) { l.queue = check_queue(json::read_string(v)); }},
  };
  return keys;
}

std::string known_file_keys() {
  std::string names;
  for (const auto& [name, reader] : file_keys())
    names += (names.empty() ? "" : ", ") + std::string(name);
  return names;
}

// Relative folders in a file are relative to the file, so `--config proj/fastfn.json` finds
// proj/functions whatever the current directory is.
void resolve_against_file(std::optional<std::string>& dir, const std::string& file) {
  const fs::path parent = fs::path(file).parent_path();
  if (dir && !parent.empty() && fs::path(*dir).is_relative()) dir = (parent / *dir).string();
}

Layer layer_from_file(const std::string& path, const std::string& text) {
  auto doc = json::parse_object(text);
  if (!doc) throw ConfigError(path + ": " + doc.error());
  Layer layer;
  for (const auto& m : std::as_const(*doc).GetObject()) {
    const std::string key = m.name.GetString();
    const auto reader = file_keys().find(key);
    if (reader == file_keys().end()) {
      throw ConfigError(path + ": unknown key \"" + key + "\" (known keys: " + known_file_keys() +
                        ")");
    }
    from(path, key, [&] { reader->second(layer, m.value); });
  }
  resolve_against_file(layer.functions_dir, path);
  resolve_against_file(layer.socket_base_dir, path);
  if (layer.queue && layer.queue->starts_with("sqlite:")) {
    std::optional<std::string> file = layer.queue->substr(7);
    resolve_against_file(file, path);
    layer.queue = "sqlite:" + *file;
  }
  return layer;
}

std::optional<std::string> lookup(const Environment& env, const std::string& name) {
  const auto it = env.find(name);
  if (it == env.end() || it->second.empty()) return std::nullopt;
  return it->second;
}

using EnvReader = void (*)(Layer&, const std::string&);

const std::pair<const char*, EnvReader> kEnvVars[] = {
    {"FN_FUNCTIONS_ROOT", [](Layer& l, const std::string& v) { l.functions_dir = v; }},
    {"FN_SOCKET_BASE_DIR", [](Layer& l, const std::string& v) { l.socket_base_dir = v; }},
    {"FN_LISTEN", [](Layer& l, const std::string& v) { l.listen = check_address(v); }},
    {"FN_RUNTIMES", [](Layer& l, const std::string& v) { l.runtimes = runtimes_from_text(v); }},
    {"FN_RUNTIME_DAEMONS",
     [](Layer& l, const std::string& v) {
       // Both forms FastFN users write: JSON text or "python=3,node=2".
       l.daemons = trim(v).starts_with('{') ? daemons_from_json(env_json(v)) : daemons_from_text(v);
     }},
    {"FN_RUNTIME_SOCKETS",
     [](Layer& l, const std::string& v) { sockets_from_json(env_json(v), l); }},
    {"FN_HEALTH_INTERVAL",
     [](Layer& l, const std::string& v) { l.health_interval = interval_from_text(v); }},
    {"FN_MIN_WARM", [](Layer& l, const std::string& v) { l.min_warm = min_warm_from_text(v); }},
    {"FN_IDLE_TTL", [](Layer& l, const std::string& v) { l.idle_ttl = idle_ttl_from_text(v); }},
    {"FN_QUEUE", [](Layer& l, const std::string& v) { l.queue = check_queue(v); }},
    {"FN_PYTHON_BIN", [](Layer& l, const std::string& v) { l.binaries["python"] = v; }},
    {"FN_NODE_BIN", [](Layer& l, const std::string& v) { l.binaries["node"] = v; }},
    {"FN_PHP_BIN", [](Layer& l, const std::string& v) { l.binaries["php"] = v; }},
    {"FN_LUA_BIN", [](Layer& l, const std::string& v) { l.binaries["lua"] = v; }},
    {"FN_GO_BIN", [](Layer& l, const std::string& v) { l.binaries["go"] = v; }},
    {"FN_CARGO_BIN", [](Layer& l, const std::string& v) { l.binaries["rust"] = v; }},
    {"FN_COMPOSER_BIN", [](Layer& l, const std::string& v) { l.binaries["composer"] = v; }},
    {"FN_SH_BIN", [](Layer& l, const std::string& v) { l.binaries["sh"] = v; }},
};

Layer layer_from_env(const Environment& env) {
  Layer layer;
  for (const auto& var : kEnvVars) {
    if (auto value = lookup(env, var.first))
      from(var.first, "", [&] { var.second(layer, *value); });
  }
  return layer;
}

Layer layer_from_flags(const GatewayFlags& flags) {
  Layer layer;
  if (flags.listen)
    layer.listen = from("--listen", "", [&] { return check_address(*flags.listen); });
  if (flags.functions_dir && flags.functions_dir->empty()) {
    throw ConfigError("FUNCTIONS_DIR: expected a folder path, got \"\"");
  }
  layer.functions_dir = flags.functions_dir;
  return layer;
}

void apply(GatewayConfig& config, Layer layer) {
  if (layer.functions_dir) config.functions_dir = std::move(*layer.functions_dir);
  if (layer.listen) config.listen = std::move(*layer.listen);
  if (layer.socket_base_dir) config.socket_base_dir = std::move(*layer.socket_base_dir);
  if (layer.queue) config.queue = std::move(*layer.queue);
  if (layer.runtimes) config.runtimes = std::move(*layer.runtimes);
  if (layer.health_interval) config.health_interval = *layer.health_interval;
  if (layer.min_warm) config.min_warm = *layer.min_warm;
  if (layer.idle_ttl) config.idle_ttl = *layer.idle_ttl;
  for (auto& [k, v] : layer.daemons) config.runtime_daemons[k] = v;
  for (auto& [k, v] : layer.socket_daemons) config.runtime_daemons[k] = v;
  for (auto& [k, v] : layer.binaries) config.runtime_binaries[k] = std::move(v);
  for (auto& [k, v] : layer.sockets) config.runtime_sockets[k] = std::move(v);
  for (auto& line : layer.ignored) config.ignored.push_back(std::move(line));
}

// Picks the fastfn.json to read; returns {path, content} or nullopt when there is none.
std::optional<std::pair<std::string, std::string>> find_config_file(const GatewayFlags& flags,
                                                                    const Environment& env,
                                                                    const FileReader& read_file) {
  std::string source = "--config";
  std::optional<std::string> path = flags.config_path;
  if (!path) {
    source = "FN_CONFIG";
    path = lookup(env, "FN_CONFIG");
  }
  if (!path) {
    auto text = read_file("fastfn.json");
    if (!text) return std::nullopt;
    return std::pair{std::string("fastfn.json"), std::move(*text)};
  }
  auto text = read_file(*path);
  if (!text) throw ConfigError(source + ": cannot read file " + json::quoted(*path));
  return std::pair{*path, std::move(*text)};
}

std::string default_socket_dir(const Environment& env, unsigned uid) {
  if (auto xdg = lookup(env, "XDG_RUNTIME_DIR")) return (fs::path(*xdg) / "fastfn").string();
  return "/tmp/fastfn-" + std::to_string(uid);
}

bool is_valid_port(std::string_view port) {
  return port.size() <= 5 && common::parse_whole(port, 1, 65535).has_value();
}

bool is_valid_host(std::string_view host) {
  const bool bracketed = host.size() > 2 && host.front() == '[' && host.back() == ']';
  if (bracketed) {
    return std::all_of(host.begin() + 1, host.end() - 1, [](char c) {
      return std::isxdigit(static_cast<unsigned char>(c)) || c == ':' || c == '.';
    });
  }
  return std::all_of(host.begin(), host.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == '_';
  });
}

}  // namespace

int GatewayConfig::daemons_for(std::string_view runtime) const {
  const auto it = runtime_daemons.find(std::string(runtime));
  return it == runtime_daemons.end() ? 1 : it->second;
}

std::optional<std::string> GatewayConfig::binary_for(std::string_view runtime) const {
  const auto it = runtime_binaries.find(std::string(runtime));
  if (it == runtime_binaries.end()) return std::nullopt;
  return it->second;
}

std::optional<std::size_t> GatewayConfig::runtime_rank(std::string_view runtime) const {
  const auto it = std::find(runtimes.begin(), runtimes.end(), runtime);
  if (it == runtimes.end()) return std::nullopt;
  return static_cast<std::size_t>(it - runtimes.begin());
}

GatewayConfig load_gateway_config(const GatewayFlags& flags, const Environment& env, unsigned uid,
                                  const FileReader& read_file) {
  GatewayConfig config;
  config.socket_base_dir = default_socket_dir(env, uid);
  if (auto file = find_config_file(flags, env, read_file)) {
    config.config_file = file->first;
    apply(config, layer_from_file(file->first, file->second));
  }
  apply(config, layer_from_env(env));
  apply(config, layer_from_flags(flags));
  return config;
}

bool is_valid_address(std::string_view address) {
  if (address.starts_with("unix:")) {
    const std::string_view path = address.substr(5);
    // sun_path holds 108 bytes including the terminating NUL.
    return path.size() > 1 && path.front() == '/' && path.size() < 108 &&
           path.find('\0') == std::string_view::npos;
  }
  if (address.starts_with("tcp:")) address.remove_prefix(4);
  const std::size_t colon = address.rfind(':');
  if (colon == std::string_view::npos) return false;
  return is_valid_port(address.substr(colon + 1)) && is_valid_host(address.substr(0, colon));
}

Environment environment_from(char** envp) {
  Environment env;
  for (char** p = envp; p != nullptr && *p != nullptr; ++p) {
    const std::string_view entry(*p);
    const std::size_t eq = entry.find('=');
    if (eq != std::string_view::npos) env.emplace(entry.substr(0, eq), entry.substr(eq + 1));
  }
  return env;
}

std::optional<std::string> read_file_from_disk(const std::string& path) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) return std::nullopt;
  std::ifstream in(path, std::ios::binary);
  if (!in) return std::nullopt;
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) return std::nullopt;
  return content.str();
}

}  // namespace gateway
