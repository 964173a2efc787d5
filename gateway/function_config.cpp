#include "gateway/function_config.h"

#include <rapidjson/document.h>

#include <algorithm>
#include <cctype>
#include <map>
#include <set>
#include <stdexcept>
#include <utility>

#include "common/units.h"
#include "gateway/config.h"
#include "gateway/json_fields.h"

namespace gateway {
namespace {

namespace fs = std::filesystem;
using json::FieldError;
using rapidjson::Value;

constexpr std::uint64_t kMaxMs = 86'400'000;  // a day: longer is a typo, not a setting
constexpr std::uint64_t kMaxBodyBytes = 1ULL << 40;
constexpr std::uint64_t kMaxInstances = 1024;
constexpr std::uint64_t kMaxRequests = 1'000'000'000;
constexpr std::uint64_t kMaxWorkers = 100'000;
constexpr std::uint64_t kMaxQueue = 1'000'000;

// Everything after the file name in the one-line error.
class Problem : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

[[noreturn]] void key_problem(std::string_view key, std::string_view message) {
  throw Problem("key \"" + std::string(key) + "\": " + std::string(message));
}

bool is_tchar(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_env_name(std::string_view name) {
  if (name.empty() || std::isdigit(static_cast<unsigned char>(name.front()))) return false;
  return std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

bool is_path_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) ||
         std::string_view("-._~!$&'()*+,;=:@").find(c) != std::string_view::npos;
}

std::string normalize_route(std::string route) {
  if (route.size() > 1 && route.back() == '/') route.pop_back();
  return route;
}

std::vector<std::string> read_routes(const Value& value) {
  constexpr std::string_view what = "a non-empty array of paths such as [\"/hello\"]";
  std::vector<std::string> routes = json::read_string_array(value, what);
  if (routes.empty()) json::fail(what, value);
  for (auto& route : routes) {
    route = normalize_route(std::move(route));
    if (!is_valid_route(route))
      json::fail_text("a path starting with \"/\" (URL characters only)", route);
  }
  return routes;
}

std::vector<std::string> read_methods(const Value& value) {
  constexpr std::string_view what = "an array of HTTP methods such as [\"GET\",\"POST\"]";
  std::vector<std::string> methods;
  for (std::string method : json::read_string_array(value, what)) {
    if (!std::all_of(method.begin(), method.end(), is_tchar)) json::fail(what, value);
    std::transform(method.begin(), method.end(), method.begin(), [](char c) {
      return static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    });
    if (std::find(methods.begin(), methods.end(), method) == methods.end())
      methods.push_back(method);
  }
  return methods;
}

std::vector<std::string> read_command(const Value& value, const fs::path& dir) {
  constexpr std::string_view what =
      "a non-empty array of non-empty strings (program and arguments)";
  std::vector<std::string> command = json::read_string_array(value, what);
  if (command.empty()) json::fail(what, value);
  const fs::path program(command.front());
  if (program.is_relative() && command.front().find('/') != std::string::npos) {
    command.front() = (dir / program).lexically_normal().string();
  }
  return command;
}

std::map<std::string, std::string> read_env(const Value& value) {
  if (!value.IsObject()) json::fail("an object of NAME -> string value", value);
  std::map<std::string, std::string> env;
  for (const auto& m : value.GetObject()) {
    const std::string name = m.name.GetString();
    if (!is_env_name(name)) json::fail_text("variable names matching [A-Za-z_][A-Za-z0-9_]*", name);
    env[name] = json::read_string(m.value, "string values (\"" + name + "\" is not one)");
  }
  return env;
}

std::string read_runtime(const Value& value) {
  constexpr std::string_view what =
      "one of \"python\", \"node\", \"php\", \"lua\", \"sh\", \"exec\", \"go\"";
  const std::string runtime = json::read_string(value, what);
  if (std::find(std::begin(kKnownRuntimes), std::end(kKnownRuntimes), runtime) ==
      std::end(kKnownRuntimes))
    json::fail(what, value);
  return runtime;
}

Format read_format(const Value& value) {
  constexpr std::string_view what = "\"cgi\", \"http\" or \"server\"";
  const std::string format = json::read_string(value, what);
  if (format == "cgi") return Format::kCgi;
  if (format == "http") return Format::kHttp;
  if (format == "server") return Format::kServer;
  json::fail(what, value);
}

// A Python or JavaScript identifier: the shim looks the name up in the handler's module.
std::string read_handler_name(const Value& value) {
  constexpr std::string_view what = "a function name such as \"handler\"";
  const std::string name = json::read_string(value, what);
  auto is_start = [](unsigned char c) { return std::isalpha(c) || c == '_' || c == '$'; };
  if (name.empty() || name.size() > 128 || !is_start(name.front()) ||
      !std::all_of(name.begin(), name.end(),
                   [&](unsigned char c) { return is_start(c) || std::isdigit(c); }))
    json::fail(what, value);
  return name;
}

int read_overflow_status(const Value& value) {
  if (!value.IsUint() || (value.GetUint() != 429 && value.GetUint() != 503))
    json::fail("429 or 503", value);
  return static_cast<int>(value.GetUint());
}

// Calls `read(key, value)` for each member of `object`, refusing unknown and repeated keys.
// `prefix` is prepended to key names in errors ("worker_pool.").
template <class Read>
void for_each_key(const Value& object, const std::set<std::string_view>& known,
                  std::string_view prefix, Read&& read) {
  std::set<std::string> seen;
  for (const auto& m : object.GetObject()) {
    const std::string key = m.name.GetString();
    const std::string shown = std::string(prefix) + key;
    if (!known.contains(key)) {
      std::string list;
      for (std::string_view k : known) list += (list.empty() ? "" : ", ") + std::string(k);
      throw Problem("unknown key \"" + shown + "\" (known keys: " + list + ")");
    }
    if (!seen.insert(key).second) key_problem(shown, "appears twice");
    try {
      read(key, m.value);
    } catch (const FieldError& e) {
      key_problem(shown, e.what());
    }
  }
}

WorkerPoolConfig read_worker_pool(const Value& value) {
  if (!value.IsObject()) json::fail("an object", value);
  WorkerPoolConfig pool;
  pool.enabled = true;
  static const std::set<std::string_view> kKeys = {
      "enabled",         "max_workers", "max_queue",       "queue_timeout_ms",
      "overflow_status", "min_warm",    "idle_ttl_seconds"};
  for_each_key(value, kKeys, "worker_pool.", [&](const std::string& key, const Value& v) {
    if (key == "enabled") pool.enabled = json::read_bool(v);
    if (key == "max_workers")
      pool.max_workers = static_cast<std::uint32_t>(json::read_uint(v, 0, kMaxWorkers));
    if (key == "max_queue")
      pool.max_queue = static_cast<std::uint32_t>(json::read_uint(v, 0, kMaxQueue));
    if (key == "queue_timeout_ms")
      pool.queue_timeout = std::chrono::milliseconds(json::read_uint(v, 0, kMaxMs));
    if (key == "overflow_status") pool.overflow_status = read_overflow_status(v);
    if (key == "min_warm") pool.min_warm = static_cast<std::uint32_t>(json::read_uint(v, 0, 64));
    if (key == "idle_ttl_seconds")
      pool.idle_ttl = std::chrono::seconds(json::read_uint(v, 1, kMaxMs / 1000));
  });
  return pool;
}

// A duration: Go's form as OpenFaaS writes it ("10s", "1m30s"), or a number of seconds.
std::chrono::milliseconds read_wait(const Value& value) {
  constexpr std::string_view what = "a duration such as \"10s\" or \"1m30s\", or seconds";
  std::optional<std::chrono::milliseconds> wait;
  if (value.IsString()) wait = common::parse_duration(value.GetString());
  else if (value.IsUint()) wait = common::parse_duration(std::to_string(value.GetUint()));
  if (!wait || *wait > std::chrono::milliseconds(kMaxMs)) json::fail(what, value);
  return *wait;
}

AsyncConfig read_async(const Value& value) {
  if (!value.IsObject()) json::fail("an object {\"max_concurrency\": 8, ...}", value);
  AsyncConfig async;
  static const std::set<std::string_view> kKeys = {
      "max_concurrency", "initial_retry_wait", "max_retry_wait", "max_retry_attempts",
      "max_callback_attempts"};
  for_each_key(value, kKeys, "async.", [&](const std::string& key, const Value& v) {
    auto count = [&](std::uint64_t min) {
      return static_cast<std::uint32_t>(json::read_uint(v, min, 10'000));
    };
    if (key == "max_concurrency") async.max_concurrency = count(1);
    if (key == "initial_retry_wait") async.initial_retry_wait = read_wait(v);
    if (key == "max_retry_wait") async.max_retry_wait = read_wait(v);
    if (key == "max_retry_attempts") async.max_retry_attempts = count(1);
    if (key == "max_callback_attempts") async.max_callback_attempts = count(1);
  });
  if (async.initial_retry_wait > async.max_retry_wait)
    key_problem("async.initial_retry_wait", "expected at most max_retry_wait");
  return async;
}

// The settings FastFN also spells nested ("invoke.methods" for "methods"): each may be given
// once, under either name.
class Spellings {
 public:
  void take(const std::string& setting, const std::string& shown) {
    auto [it, added] = given_.emplace(setting, shown);
    if (!added)
      key_problem(shown, "the same setting as \"" + it->second + "\"; give one of them");
  }

 private:
  std::map<std::string, std::string> given_;
};

void read_key(FunctionConfig& c, const std::string& key, const Value& v, const fs::path& dir,
              Spellings& spellings, const std::string& shown);

// FastFN's nested objects hold settings of the top level: each key is read as that setting.
void read_invoke(FunctionConfig& c, const Value& value, const fs::path& dir, Spellings& spellings) {
  if (!value.IsObject()) json::fail("an object {\"methods\": [...], \"routes\": [...]}", value);
  static const std::set<std::string_view> kKeys = {"methods", "routes", "handler"};
  for_each_key(value, kKeys, "invoke.", [&](const std::string& key, const Value& v) {
    read_key(c, key, v, dir, spellings, "invoke." + key);
  });
}

void read_response(FunctionConfig& c, const Value& value, const fs::path& dir,
                   Spellings& spellings) {
  if (!value.IsObject()) json::fail("an object {\"include_debug_headers\": true}", value);
  static const std::set<std::string_view> kKeys = {"include_debug_headers"};
  for_each_key(value, kKeys, "response.", [&](const std::string& key, const Value& v) {
    read_key(c, key, v, dir, spellings, "response." + key);
  });
}

// `shown` is the key as the file spells it ("invoke.methods" for the setting "methods").
void read_key(FunctionConfig& c, const std::string& key, const Value& v, const fs::path& dir,
              Spellings& spellings, const std::string& shown) {
  auto uint = [&](std::uint64_t min, std::uint64_t max) { return json::read_uint(v, min, max); };
  if (key == "methods" || key == "routes" || key == "include_debug_headers")
    spellings.take(key, shown);
  if (key == "invoke") read_invoke(c, v, dir, spellings);
  if (key == "response") read_response(c, v, dir, spellings);
  if (key == "runtime") c.runtime = read_runtime(v);
  if (key == "format") c.format = read_format(v);
  if (key == "command") c.command = read_command(v, dir);
  if (key == "routes") c.routes = read_routes(v);
  if (key == "methods") c.methods = read_methods(v);
  if (key == "timeout_ms") c.timeout_ms = uint(0, kMaxMs);
  if (key == "idle_timeout_ms") c.idle_timeout_ms = uint(0, kMaxMs);
  if (key == "max_body_bytes") c.max_body_bytes = uint(0, kMaxBodyBytes);
  if (key == "min_instances") c.min_instances = uint(0, kMaxInstances);
  if (key == "max_instances") c.max_instances = uint(1, kMaxInstances);
  if (key == "max_requests") c.max_requests = uint(0, kMaxRequests);
  if (key == "daemons") c.daemons = static_cast<int>(uint(1, 64));
  if (key == "max_concurrency") c.max_concurrency = uint(1, 100'000);
  if (key == "env") c.env = read_env(v);
  if (key == "cgi_headers") c.cgi_headers = json::read_bool(v);
  if (key == "worker_pool") c.worker_pool = read_worker_pool(v);
  if (key == "async") c.async = read_async(v);
  if (key == "include_debug_headers") c.include_debug_headers = json::read_bool(v);
  if (key == "handler") c.handler = read_handler_name(v);
}

const std::set<std::string_view> kFunctionKeys = {"runtime",
                                                  "format",
                                                  "command",
                                                  "routes",
                                                  "methods",
                                                  "timeout_ms",
                                                  "idle_timeout_ms",
                                                  "max_body_bytes",
                                                  "min_instances",
                                                  "max_instances",
                                                  "max_requests",
                                                  "daemons",
                                                  "max_concurrency",
                                                  "env",
                                                  "cgi_headers",
                                                  "worker_pool",
                                                  "async",
                                                  "include_debug_headers",
                                                  "invoke",
                                                  "response"};

void check_consistency(const FunctionConfig& c) {
  // A hot handler frames its answers as HTTP: CGI headers there are a mistake, not a setting.
  if (c.cgi_headers && c.format && c.format != Format::kCgi)
    key_problem("cgi_headers", "expected \"format\": \"cgi\" (CGI headers come from CGI "
                               "programs), got \"format\": \"" +
                                   std::string(format_name(*c.format)) + "\"");
  // The shim speaks the stdio protocol: the handler's function is called, never run as a program.
  if (c.handler && c.format && c.format != Format::kHttp)
    key_problem("invoke.handler", "expected no \"format\" (FastFN's handler(event) runs hot, "
                                  "as format http), got \"format\": \"" +
                                      std::string(format_name(*c.format)) + "\"");
  if (c.handler && !c.command.empty())
    key_problem("invoke.handler", "expected no \"command\" (the command replaces the handler "
                                  "file whose function it names)");
  if (c.min_instances && c.max_instances && *c.min_instances > *c.max_instances) {
    key_problem("min_instances", "expected at most max_instances (" +
                                     std::to_string(*c.max_instances) + "), got " +
                                     std::to_string(*c.min_instances));
  }
}

AssetsConfig read_assets(const Value& value) {
  constexpr std::string_view what = "a relative folder name such as \"public\" (no \"..\")";
  if (!value.IsObject()) json::fail("an object {\"dir\": \"public\"}", value);
  AssetsConfig assets;
  static const std::set<std::string_view> kKeys = {"dir", "directory", "run_worker_first",
                                                   "not_found_handling"};
  for_each_key(value, kKeys, "assets.", [&](const std::string& key, const Value& v) {
    if (key == "run_worker_first") assets.run_worker_first = json::read_bool(v);
    if (key == "not_found_handling") {
      constexpr std::string_view handling = "\"none\" or \"single-page-application\"";
      const std::string text = json::read_string(v, handling);
      if (text != "none" && text != "single-page-application") json::fail(handling, v);
      assets.single_page_application = text == "single-page-application";
    }
    if (key != "dir" && key != "directory") return;
    const fs::path dir(json::read_string(v, what));
    const bool escapes = std::find(dir.begin(), dir.end(), "..") != dir.end();
    if (dir.empty() || dir.is_absolute() || escapes || dir.lexically_normal() == ".")
      json::fail(what, v);
    fs::path normal = dir.lexically_normal();
    if (!normal.has_filename()) normal = normal.parent_path();  // "public/" is "public"
    assets.dir = normal.string();
  });
  if (assets.dir.empty()) key_problem("assets.dir", "expected a relative folder name, got nothing");
  return assets;
}

}  // namespace

std::string_view format_name(Format format) noexcept {
  switch (format) {
    case Format::kCgi: return "cgi";
    case Format::kHttp: return "http";
    case Format::kServer: return "server";
  }
  return "cgi";
}

tl::expected<FunctionConfig, std::string> parse_function_config(std::string_view text,
                                                                const std::string& display_path,
                                                                const fs::path& function_dir) {
  auto doc = json::parse_object(text);
  if (!doc) return tl::unexpected(display_path + ": " + doc.error());
  if (doc->HasMember("assets")) {
    return tl::unexpected(
        display_path + ": key \"assets\": only the functions dir's own fn.config.json may set it");
  }
  try {
    FunctionConfig config;
    Spellings spellings;
    for_each_key(*doc, kFunctionKeys, "", [&](const std::string& key, const Value& v) {
      read_key(config, key, v, function_dir, spellings, key);
    });
    check_consistency(config);
    return config;
  } catch (const Problem& p) {
    return tl::unexpected(display_path + ": " + p.what());
  }
}

tl::expected<std::optional<AssetsConfig>, std::string> parse_root_config(
    std::string_view text, const std::string& display_path) {
  auto doc = json::parse_object(text);
  if (!doc) return tl::unexpected(display_path + ": " + doc.error());
  for (const auto& m : std::as_const(*doc).GetObject()) {
    if (std::string_view(m.name.GetString()) == "assets") continue;
    return tl::unexpected(display_path + ": unknown key \"" + m.name.GetString() +
                          "\" (the functions dir's own fn.config.json holds only \"assets\"; "
                          "function settings go in the function's folder)");
  }
  try {
    std::optional<AssetsConfig> assets;
    for_each_key(*doc, {"assets"}, "",
                 [&](const std::string&, const Value& v) { assets = read_assets(v); });
    return assets;
  } catch (const Problem& p) {
    return tl::unexpected(display_path + ": " + p.what());
  }
}

bool is_valid_route(std::string_view route) {
  if (route.empty() || route.front() != '/') return false;
  if (route == "/") return true;
  std::string_view rest = route.substr(1);
  while (true) {
    const std::size_t slash = rest.find('/');
    const std::string_view segment = rest.substr(0, slash);
    if (segment.empty() || segment == "." || segment == "..") return false;
    if (!std::all_of(segment.begin(), segment.end(), is_path_char)) return false;
    if (slash == std::string_view::npos) return true;
    rest.remove_prefix(slash + 1);
  }
}

bool is_valid_function_name(std::string_view name) {
  return !name.empty() && is_valid_route("/" + std::string(name));
}

}  // namespace gateway
