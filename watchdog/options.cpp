#include "watchdog/options.h"

#include <algorithm>
#include <array>
#include <functional>
#include <optional>
#include <sstream>
#include <string_view>
#include <utility>

#include "common/units.h"

namespace watchdog {
namespace {

// One option: its flag, its environment variable, whether it takes a value, and how to apply it.
struct OptionSpec {
  const char* flag;
  const char* env;
  bool takes_value;
  std::function<void(Options&, const std::string& value, const std::string& source)> apply;
};

[[noreturn]] void bad_value(const std::string& source, const std::string& value,
                            const std::string& expected) {
  throw UsageError(source + ": expected " + expected + ", got \"" + value + "\"");
}

milliseconds duration(const std::string& value, const std::string& source) {
  auto parsed = common::parse_duration(value);
  if (!parsed) bad_value(source, value, "a duration such as 250ms, 10s, 2m or 30");
  return *parsed;
}

std::uint64_t size(const std::string& value, const std::string& source) {
  auto parsed = common::parse_size(value);
  if (!parsed) bad_value(source, value, "a size such as 512, 64KiB or 10MiB");
  return *parsed;
}

int count(const std::string& value, const std::string& source, int min, int max) {
  auto parsed = common::parse_whole(value, min, max);
  if (!parsed)
    bad_value(source, value, "a whole number from " + std::to_string(min) + " to " + std::to_string(max));
  return static_cast<int>(*parsed);
}

// OpenFaaS's upstream_url, http://HOST:PORT (a path after it is ignored, as requests keep theirs),
// or one of fastfn's addresses (unix:/path.sock).
common::Address upstream_address(const std::string& value, const std::string& source) {
  std::string_view text = value;
  if (text.starts_with("http://")) {
    text.remove_prefix(7);
    text = text.substr(0, text.find('/'));
  }
  auto address = common::parse_address(text);
  if (!address || (address->kind == common::Address::Kind::kTcp && address->port == 0))
    bad_value(source, value, "http://HOST:PORT or unix:/path.sock");
  if (address->kind == common::Address::Kind::kTcp && address->host.empty()) address->host = "127.0.0.1";
  return *address;
}

bool boolean(const std::string& value, const std::string& source) {
  if (value == "" || value == "1" || value == "true" || value == "yes" || value == "on") return true;
  if (value == "0" || value == "false" || value == "no" || value == "off") return false;
  bad_value(source, value, "true or false");
}

const std::vector<OptionSpec>& specs() {
  static const std::vector<OptionSpec> all = {
      // OpenFaaS's names first, so that fastfn's own (format, listen) win when both are set.
      {"--mode", "mode", true, [](Options& o, const std::string& v, const std::string& s) {
         if (v == "streaming" || v == "serializing") o.format = Format::kCgi;
         else if (v == "http") o.format = Format::kServer;
         else bad_value(s, v, "streaming, serializing (format cgi) or http (format server)");
       }},
      {"--port", "port", true, [](Options& o, const std::string& v, const std::string& s) {
         // On every interface, as OpenFaaS's watchdog listens.
         o.listen = common::Address{common::Address::Kind::kTcp, "", "",
                                    static_cast<std::uint16_t>(count(v, s, 1, 65535))};
       }},
      {"--format", "format", true, [](Options& o, const std::string& v, const std::string& s) {
         if (v == "cgi") o.format = Format::kCgi;
         else if (v == "http") o.format = Format::kHttp;
         else if (v == "server") o.format = Format::kServer;
         else bad_value(s, v, "cgi, http or server");
       }},
      {"--listen", "listen", true, [](Options& o, const std::string& v, const std::string& s) {
         std::string error;
         auto address = common::parse_address(v, &error);
         if (!address) bad_value(s, v, "unix:/path.sock, tcp:HOST:PORT, HOST:PORT or :PORT (" + error + ")");
         o.listen = *address;
       }},
      {"--upstream-url", "upstream_url", true, [](Options& o, const std::string& v, const std::string& s) {
         o.upstream_url = upstream_address(v, s);
       }},
      {"--listen-socket", "listen_socket", false, [](Options& o, const std::string& v, const std::string& s) { o.listen_socket = boolean(v, s); }},
      {"--start-timeout", "start_timeout", true, [](Options& o, const std::string& v, const std::string& s) { o.start_timeout = duration(v, s); }},
      {"--max-concurrency", "max_concurrency", true, [](Options& o, const std::string& v, const std::string& s) { o.max_concurrency = count(v, s, 1, 100'000); }},
      {"--exec-timeout", "exec_timeout", true, [](Options& o, const std::string& v, const std::string& s) { o.exec_timeout = duration(v, s); }},
      {"--read-timeout", "read_timeout", true, [](Options& o, const std::string& v, const std::string& s) { o.read_timeout = duration(v, s); }},
      {"--write-timeout", "write_timeout", true, [](Options& o, const std::string& v, const std::string& s) { o.write_timeout = duration(v, s); }},
      {"--max-inflight", "max_inflight", true, [](Options& o, const std::string& v, const std::string& s) { o.max_inflight = count(v, s, 0, 1'000'000); }},
      {"--max-connections", "max_connections", true, [](Options& o, const std::string& v, const std::string& s) { o.max_connections = count(v, s, 1, 1'000'000); }},
      {"--max-body", "max_body", true, [](Options& o, const std::string& v, const std::string& s) { o.max_body = size(v, s); }},
      {"--min-instances", "min_instances", true, [](Options& o, const std::string& v, const std::string& s) { o.min_instances = count(v, s, 0, 1024); }},
      {"--max-instances", "max_instances", true, [](Options& o, const std::string& v, const std::string& s) { o.max_instances = count(v, s, 1, 1024); }},
      {"--max-queue", "max_queue", true, [](Options& o, const std::string& v, const std::string& s) { o.max_queue = count(v, s, 0, 1'000'000); }},
      {"--idle-timeout", "idle_timeout", true, [](Options& o, const std::string& v, const std::string& s) { o.idle_timeout = duration(v, s); }},
      {"--max-requests", "max_requests", true, [](Options& o, const std::string& v, const std::string& s) { o.max_requests = static_cast<std::uint64_t>(count(v, s, 0, 2'000'000'000)); }},
      {"--cgi-headers", "cgi_response", false, [](Options& o, const std::string& v, const std::string& s) { o.cgi_headers = boolean(v, s); }},
      {"--openfaas-variables", "cgi_headers", false, [](Options& o, const std::string& v, const std::string& s) { o.openfaas_variables = boolean(v, s); }},
      {"--content-type", "content_type", true, [](Options& o, const std::string& v, const std::string&) { o.content_type = v; }},
      {"--combine-output", "combine_output", false, [](Options& o, const std::string& v, const std::string& s) { o.combine_output = boolean(v, s); }},
      {"--workdir", "workdir", true, [](Options& o, const std::string& v, const std::string&) { o.workdir = v; }},
      {"--shutdown-timeout", "shutdown_timeout", true, [](Options& o, const std::string& v, const std::string& s) { o.shutdown_timeout = duration(v, s); }},
      {"--healthcheck-interval", "healthcheck_interval", true, [](Options& o, const std::string& v, const std::string& s) { o.healthcheck_interval = duration(v, s); }},
      {"--log-format", "log_format", true, [](Options& o, const std::string& v, const std::string& s) {
         if (!common::parse_log_format(v, &o.log_format)) bad_value(s, v, "text or json");
       }},
      {"--log-level", "log_level", true, [](Options& o, const std::string& v, const std::string& s) {
         if (!common::is_log_level(v)) bad_value(s, v, std::string(common::kLogLevels));
         o.log_level = v;
       }},
      {"--suppress-lock", "suppress_lock", false, [](Options& o, const std::string& v, const std::string& s) { o.suppress_lock = boolean(v, s); }},
      {"--name", "function_name", true, [](Options& o, const std::string& v, const std::string&) { o.name = v; }},
      // No variable of its own: it says the environment holds no option at all.
      {"--flags-only", nullptr, false, [](Options& o, const std::string& v, const std::string& s) { o.flags_only = boolean(v, s); }},
  };
  return all;
}

const OptionSpec* find_flag(const std::string& flag) {
  for (const auto& spec : specs())
    if (flag == spec.flag) return &spec;
  return nullptr;
}

std::vector<std::string> split_on_spaces(const std::string& text) {
  std::vector<std::string> words;
  std::istringstream in(text);
  for (std::string word; in >> word;) words.push_back(word);
  return words;
}

std::string basename(const std::string& path) {
  auto slash = path.rfind('/');
  return slash == std::string::npos ? path : path.substr(slash + 1);
}

// OpenFaaS's other spellings of a variable fastfn reads under the first name.
constexpr std::array<std::pair<const char*, const char*>, 3> kOpenFaasAliases = {{
    {"fprocess", "function_process"},
    {"upstream_url", "http_upstream_url"},
    {"combine_output", "combined_output"},
}};

// OpenFaaS variables fastfn does not take, and what a function that sets them gets instead.
constexpr std::array<std::pair<const char*, const char*>, 10> kOpenFaasIgnored = {{
    {"http_buffer_req_body", "chunked request bodies always reach an app whole, with Content-Length"},
    {"buffer_http", "chunked request bodies always reach an app whole, with Content-Length"},
    {"prefix_logs", "the function's lines are logged with a time, a level and the function's name"},
    {"log_buffer_size", "lines of any length are logged (cut at 16 KiB)"},
    {"log_call_id", "the access line carries request_id (X-Fn-Request-Id)"},
    {"write_debug", "bodies are never logged"},
    {"read_debug", "bodies are never logged"},
    {"marshal_request", "the body reaches stdin as it came"},
    {"ready_path", "/_/ready reports the watchdog's own readiness (processes up, capacity left)"},
    {"static_path", "mode=static is not served; use the gateway's assets"},
}};

// A copy of the environment with OpenFaaS's aliases read under fastfn's names (the name fastfn
// documents wins when both are set), and the ignored variables noted.
Environment with_openfaas_names(const Environment& env, std::vector<std::string>& ignored) {
  Environment merged = env;
  for (const auto& [name, alias] : kOpenFaasAliases) {
    auto it = env.find(alias);
    if (it != env.end()) merged.emplace(name, it->second);
  }
  for (const auto& [name, instead] : kOpenFaasIgnored)
    if (env.contains(name)) ignored.push_back(std::string(name) + " is not taken: " + instead);
  // Ignoring it would serve without the authentication the function's author counted on.
  if (auto jwt = env.find("jwt_auth"); jwt != env.end() && boolean(jwt->second, "jwt_auth"))
    throw UsageError("jwt_auth: OpenFaaS for Enterprises' JWT check is not in fastfn; put the "
                     "check in front of the watchdog, or set jwt_auth=false");
  return merged;
}

// A flag found on the command line, applied after the environment so that it wins.
struct GivenFlag {
  const OptionSpec* spec;
  std::string value;
  std::string flag;
};

// Reads the flags without applying them; returns the index of the first COMMAND word
// (args.size() when none).
std::size_t read_flags(const std::vector<std::string>& args, ParsedOptions& parsed,
                       std::vector<GivenFlag>& given) {
  std::size_t i = 0;
  for (; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--") return i + 1;
    if (arg == "-h" || arg == "--help") parsed.action = Action::kHelp;
    else if (arg == "-V" || arg == "--version") parsed.action = Action::kVersion;
    else if (!arg.starts_with("-") || arg == "-") return i;
    else {
      auto eq = arg.find('=');
      std::string flag = arg.substr(0, eq);
      const OptionSpec* spec = find_flag(flag);
      if (!spec) throw UsageError("unknown option " + flag + " (see --help)");
      std::optional<std::string> value;
      if (eq != std::string::npos) value = arg.substr(eq + 1);
      else if (spec->takes_value) {
        if (++i >= args.size()) throw UsageError(flag + ": missing value (see --help)");
        value = args[i];
      }
      given.push_back({spec, value.value_or(""), flag});
    }
  }
  return i;
}

// True when the last --flags-only given is on.
bool flags_only(const std::vector<GivenFlag>& given) {
  bool on = false;
  for (const auto& flag : given)
    if (std::string_view(flag.spec->flag) == "--flags-only") on = boolean(flag.value, flag.flag);
  return on;
}

void validate(Options& options, const Environment& env) {
  if (options.command.empty()) {
    auto fprocess = env.find("fprocess");
    if (fprocess != env.end()) options.command = split_on_spaces(fprocess->second);
  }
  if (options.command.empty())
    throw UsageError("missing COMMAND: give it after the options (fastfn-watchdog -- wc -l) or in fprocess");
  if (options.name.empty()) options.name = basename(options.command[0]);
  // One address, one process: an app that listens where it likes cannot be started twice.
  if (options.format == Format::kServer && options.upstream_url)
    options.min_instances = options.max_instances = 1;
  if (options.min_instances > options.max_instances)
    throw UsageError("--min-instances (" + std::to_string(options.min_instances) +
                     ") is above --max-instances (" + std::to_string(options.max_instances) + ")");
}

}  // namespace

const char* format_name(Format format) noexcept {
  switch (format) {
    case Format::kCgi: return "cgi";
    case Format::kHttp: return "http";
    case Format::kServer: return "server";
  }
  return "cgi";
}

ParsedOptions parse_options(const std::vector<std::string>& args, const Environment& env,
                            int cpu_count) {
  ParsedOptions parsed;
  parsed.options.max_instances = cpu_count > 0 ? cpu_count : 1;
  std::vector<GivenFlag> given;
  std::size_t first = read_flags(args, parsed, given);
  if (parsed.action != Action::kRun) return parsed;  // --help and --version ignore a bad environment
  // With --flags-only (how fastfn-gateway starts its watchdogs) the environment is the handler's:
  // a function's "env" must reach its handler without configuring the watchdog.
  const Environment source =
      flags_only(given) ? Environment{} : with_openfaas_names(env, parsed.ignored);
  // The environment is read only for what no flag sets, so a flag also overrides an invalid value.
  for (const auto& spec : specs()) {
    bool flagged = std::any_of(given.begin(), given.end(), [&](const GivenFlag& g) { return g.spec == &spec; });
    auto it = spec.env ? source.find(spec.env) : source.end();
    if (!flagged && it != source.end()) spec.apply(parsed.options, it->second, spec.env);
  }
  for (const auto& flag : given) flag.spec->apply(parsed.options, flag.value, flag.flag);
  parsed.options.command.assign(args.begin() + static_cast<std::ptrdiff_t>(first), args.end());
  validate(parsed.options, source);
  return parsed;
}

common::LogFormat requested_log_format(const std::vector<std::string>& args,
                                       const Environment& env) {
  std::optional<std::string> flag;
  bool environment = true;
  for (std::size_t i = 0; i < args.size(); ++i) {
    const std::string& arg = args[i];
    if (arg == "--" || arg == "-" || !arg.starts_with("-")) break;  // COMMAND's words from here
    auto eq = arg.find('=');
    std::string name = arg.substr(0, eq);
    const OptionSpec* spec = find_flag(name);
    std::optional<std::string> value;
    if (eq != std::string::npos) value = arg.substr(eq + 1);
    else if (spec && spec->takes_value && i + 1 < args.size()) value = args[++i];
    if (name == "--log-format") flag = value;
    if (name == "--flags-only") environment = value && (*value == "0" || *value == "false");
  }
  auto variable = env.find("log_format");
  std::string asked = flag ? *flag : environment && variable != env.end() ? variable->second : "";
  return asked == "json" ? common::LogFormat::kJson : common::LogFormat::kText;
}

std::string usage() {
  return R"(usage: fastfn-watchdog [OPTIONS] [--] COMMAND [ARG...]

Serves one function over HTTP. Every option also reads the environment variable in brackets;
a flag wins over the variable. Without COMMAND, the fprocess variable gives it.

  --format cgi|http|server   [format]           cgi: a process per request; http: hot handlers over
                                                stdio; server: apps that listen on a port (cgi)
  --listen ADDR              [listen]           unix:/path.sock, tcp:HOST:PORT, HOST:PORT, :PORT
                                                (127.0.0.1:8080)
  --port N                   [port]             listen on :N, every interface, as OpenFaaS does
  --mode MODE                [mode]             OpenFaaS's: streaming or serializing (format cgi),
                                                http (format server)
  --exec-timeout DUR         [exec_timeout]     per request, then the process group is killed (30s; 0: none)
  --read-timeout DUR         [read_timeout]     client socket read timeout (10s)
  --write-timeout DUR        [write_timeout]    client socket write timeout (10s)
  --max-inflight N           [max_inflight]     requests beyond N in flight get 429 (0: none)
  --max-connections N        [max_connections]  open client connections; more wait to be
                                                accepted (10000, at most the fd limit less 64)
  --max-body SIZE            [max_body]         larger request bodies get 413 (10MiB)
  --min-instances N          [min_instances]    http, server: processes kept warm (1)
  --max-instances N          [max_instances]    http, server: most processes at once (CPU count)
  --max-queue N              [max_queue]        http, server: requests waiting for a process (1024)
  --idle-timeout DUR         [idle_timeout]     http, server: stop a process idle this long (30s)
  --max-requests N           [max_requests]     http, server: recycle a process after N requests
                                                (0: never)
  --max-concurrency N        [max_concurrency]  server: requests one process serves at once (1)
  --start-timeout DUR        [start_timeout]    server: for an app to accept connections (30s)
  --listen-socket            [listen_socket]    server: the app listens on a unix socket
                                                ($SOCKET, FN_LISTENER) instead of $PORT
  --upstream-url URL         [upstream_url]     server: the app listens there by itself
                                                (http://HOST:PORT, unix:/path; one process)
  --cgi-headers              [cgi_response]     cgi: stdout begins with CGI headers
  --openfaas-variables=BOOL  [cgi_headers]      cgi: request headers also as OpenFaaS's Http_*
                                                variables (on)
  --content-type TYPE        [content_type]     cgi: when the output declares none
                                                (text/plain; charset=utf-8)
  --combine-output           [combine_output]   cgi: append stderr to the response body
  --workdir DIR              [workdir]          working directory of the handler (.)
  --shutdown-timeout DUR     [shutdown_timeout] drain in-flight requests this long on SIGTERM (10s)
  --healthcheck-interval DUR [healthcheck_interval] on SIGTERM, health is 503 this long before new
                                                connections are refused (0)
  --log-format text|json     [log_format]       log lines on stderr (text)
  --log-level LEVEL          [log_level]        trace, debug, info, warn, error, off (info)
  --suppress-lock            [suppress_lock]    write no $TMPDIR/.lock (OpenFaaS's health file)
  --name NAME                [function_name]    used in logs, metrics and headers (COMMAND's name)
  --flags-only                                  read no option (nor fprocess) from the environment,
                                                which is then only the handler's (fastfn-gateway)
  -h, --help                                    this text
  -V, --version                                 the version

Durations: 250ms, 10s, 2m, 1m30s or plain seconds. Sizes: 512, 64KiB, 10MiB.
Endpoints: GET /_/health, /_/ready, /_/metrics. Every other path is the function's.
)";
}

}  // namespace watchdog
