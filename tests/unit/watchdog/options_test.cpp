#include "watchdog/options.h"

#include <doctest/doctest.h>

#include <functional>
#include <string>
#include <vector>

using watchdog::Action;
using watchdog::Environment;
using watchdog::Format;
using watchdog::Options;
using watchdog::UsageError;
using namespace std::chrono_literals;

namespace {

using Args = std::vector<std::string>;

Options parse(const Args& args, const Environment& env = {}, int cpu_count = 4) {
  auto parsed = watchdog::parse_options(args, env, cpu_count);
  REQUIRE(parsed.action == Action::kRun);
  return parsed.options;
}

// The UsageError message for these arguments, "" when none is thrown.
std::string usage_error(const Args& args, const Environment& env = {}, int cpu_count = 4) {
  try {
    watchdog::parse_options(args, env, cpu_count);
  } catch (const UsageError& e) {
    return e.what();
  }
  return "";
}

bool one_line(const std::string& message) {
  return !message.empty() && message.find('\n') == std::string::npos;
}

}  // namespace

TEST_CASE("options: defaults follow DESIGN.md") {
  Options o = parse({"--", "wc", "-l"}, {}, 6);
  CHECK(o.format == Format::kCgi);
  CHECK(o.listen.kind == common::Address::Kind::kTcp);
  CHECK(o.listen.host == "127.0.0.1");
  CHECK(o.listen.port == 8080);
  CHECK(o.exec_timeout == 30s);
  CHECK(o.read_timeout == 10s);
  CHECK(o.write_timeout == 10s);
  CHECK(o.max_inflight == 0);
  CHECK(o.max_body == 10u * 1024 * 1024);
  CHECK(o.min_instances == 1);
  CHECK(o.max_instances == 6);
  CHECK(o.max_queue == 1024);
  CHECK(o.idle_timeout == 30s);
  CHECK(o.max_requests == 0);
  CHECK_FALSE(o.cgi_headers);
  CHECK(o.openfaas_variables);
  CHECK(o.content_type == "text/plain; charset=utf-8");
  CHECK_FALSE(o.combine_output);
  CHECK(o.workdir == ".");
  CHECK(o.shutdown_timeout == 10s);
  CHECK(o.healthcheck_interval == 0s);
  CHECK(o.log_format == common::LogFormat::kText);
  CHECK(o.name == "wc");
  CHECK(o.command == Args{"wc", "-l"});
}

TEST_CASE("options: max_instances defaults to the CPU count, at least 1") {
  CHECK(parse({"cat"}, {}, 1).max_instances == 1);
  CHECK(parse({"cat"}, {}, 64).max_instances == 64);
  CHECK(parse({"cat"}, {}, 0).max_instances == 1);
  CHECK(parse({"cat"}, {}, -1).max_instances == 1);
}

TEST_CASE("options: every flag in both forms") {
  // Each flag, with `--flag value` and `--flag=value`; `check` looks at the field it sets.
  struct Case {
    std::string flag;
    std::string value;
    std::function<void(const Options&)> check;
  };
  std::vector<Case> cases = {
      {"--format", "http", [](const Options& o) { CHECK(o.format == Format::kHttp); }},
      {"--listen", "unix:/tmp/w.sock",
       [](const Options& o) {
         CHECK(o.listen.kind == common::Address::Kind::kUnix);
         CHECK(o.listen.path == "/tmp/w.sock");
       }},
      {"--exec-timeout", "250ms", [](const Options& o) { CHECK(o.exec_timeout == 250ms); }},
      {"--read-timeout", "2m", [](const Options& o) { CHECK(o.read_timeout == 120s); }},
      {"--write-timeout", "7", [](const Options& o) { CHECK(o.write_timeout == 7s); }},
      {"--max-inflight", "12", [](const Options& o) { CHECK(o.max_inflight == 12); }},
      {"--max-body", "64KiB", [](const Options& o) { CHECK(o.max_body == 65536u); }},
      {"--min-instances", "0", [](const Options& o) { CHECK(o.min_instances == 0); }},
      {"--max-instances", "3", [](const Options& o) { CHECK(o.max_instances == 3); }},
      {"--max-queue", "5", [](const Options& o) { CHECK(o.max_queue == 5); }},
      {"--idle-timeout", "1500ms", [](const Options& o) { CHECK(o.idle_timeout == 1500ms); }},
      {"--max-requests", "100", [](const Options& o) { CHECK(o.max_requests == 100u); }},
      {"--content-type", "application/json",
       [](const Options& o) { CHECK(o.content_type == "application/json"); }},
      {"--workdir", "/srv/fn", [](const Options& o) { CHECK(o.workdir == "/srv/fn"); }},
      {"--shutdown-timeout", "3s", [](const Options& o) { CHECK(o.shutdown_timeout == 3s); }},
      {"--log-format", "json",
       [](const Options& o) { CHECK(o.log_format == common::LogFormat::kJson); }},
      {"--log-level", "debug", [](const Options& o) { CHECK(o.log_level == "debug"); }},
      {"--name", "echo", [](const Options& o) { CHECK(o.name == "echo"); }},
      {"--port", "9000",
       [](const Options& o) {
         CHECK(o.listen.kind == common::Address::Kind::kTcp);
         CHECK(o.listen.host.empty());  // every interface, as OpenFaaS
         CHECK(o.listen.port == 9000);
       }},
      {"--mode", "serializing", [](const Options& o) { CHECK(o.format == Format::kCgi); }},
  };
  for (const auto& c : cases) {
    CAPTURE(c.flag);
    {
      INFO("--flag value");
      c.check(parse({c.flag, c.value, "--", "cat"}));
    }
    {
      INFO("--flag=value");
      c.check(parse({c.flag + "=" + c.value, "cat"}));
    }
  }
}

TEST_CASE("options: every environment variable") {
  struct Case {
    std::string env;
    std::string value;
    std::function<void(const Options&)> check;
  };
  std::vector<Case> cases = {
      {"format", "http", [](const Options& o) { CHECK(o.format == Format::kHttp); }},
      {"listen", ":9000",
       [](const Options& o) {
         CHECK(o.listen.host.empty());
         CHECK(o.listen.port == 9000);
       }},
      {"exec_timeout", "2s", [](const Options& o) { CHECK(o.exec_timeout == 2s); }},
      {"read_timeout", "3s", [](const Options& o) { CHECK(o.read_timeout == 3s); }},
      {"write_timeout", "4s", [](const Options& o) { CHECK(o.write_timeout == 4s); }},
      {"max_inflight", "8", [](const Options& o) { CHECK(o.max_inflight == 8); }},
      {"max_body", "1MiB", [](const Options& o) { CHECK(o.max_body == 1048576u); }},
      {"min_instances", "2", [](const Options& o) { CHECK(o.min_instances == 2); }},
      {"max_instances", "2", [](const Options& o) { CHECK(o.max_instances == 2); }},
      {"max_queue", "0", [](const Options& o) { CHECK(o.max_queue == 0); }},
      {"idle_timeout", "5m", [](const Options& o) { CHECK(o.idle_timeout == 300s); }},
      {"max_requests", "7", [](const Options& o) { CHECK(o.max_requests == 7u); }},
      {"cgi_response", "true", [](const Options& o) { CHECK(o.cgi_headers); }},
      {"cgi_headers", "false", [](const Options& o) { CHECK_FALSE(o.openfaas_variables); }},
      {"healthcheck_interval", "1m30s",
       [](const Options& o) { CHECK(o.healthcheck_interval == 90s); }},
      {"content_type", "text/html", [](const Options& o) { CHECK(o.content_type == "text/html"); }},
      {"combine_output", "1", [](const Options& o) { CHECK(o.combine_output); }},
      {"workdir", "/tmp", [](const Options& o) { CHECK(o.workdir == "/tmp"); }},
      {"shutdown_timeout", "1s", [](const Options& o) { CHECK(o.shutdown_timeout == 1s); }},
      {"log_format", "json",
       [](const Options& o) { CHECK(o.log_format == common::LogFormat::kJson); }},
      {"log_level", "warn", [](const Options& o) { CHECK(o.log_level == "warn"); }},
      {"function_name", "hello", [](const Options& o) { CHECK(o.name == "hello"); }},
      {"port", "9001", [](const Options& o) { CHECK(o.listen.port == 9001); }},
      {"mode", "streaming", [](const Options& o) { CHECK(o.format == Format::kCgi); }},
      {"suppress_lock", "true", [](const Options& o) { CHECK(o.suppress_lock); }},
  };
  for (const auto& c : cases) {
    CAPTURE(c.env);
    c.check(parse({"cat"}, {{c.env, c.value}}));
  }
}

TEST_CASE("options: OpenFaaS's port and mode give way to fastfn's listen and format") {
  auto both = parse({"cat"}, {{"port", "9001"}, {"listen", "127.0.0.1:9002"},
                              {"mode", "streaming"}, {"format", "http"}});
  CHECK(both.listen.host == "127.0.0.1");
  CHECK(both.listen.port == 9002);
  CHECK(both.format == Format::kHttp);
  CHECK(parse({"--listen", "127.0.0.1:9002", "cat"}, {{"port", "9001"}}).listen.port == 9002);
  CHECK_FALSE(parse({"cat"}).suppress_lock);
  std::string bad = usage_error({"cat"}, {{"mode", "afterburn"}});
  CHECK(one_line(bad));
  CHECK(bad.starts_with("mode: expected streaming, serializing (format cgi) or http"));
  CHECK(usage_error({"cat"}, {{"port", "0"}}).starts_with("port: expected"));
}

TEST_CASE("options: format server, and OpenFaaS's mode=http and upstream_url") {
  auto server = parse({"--format", "server", "--max-concurrency", "64", "--start-timeout", "5s",
                       "--listen-socket", "node", "app.js"});
  CHECK(server.format == Format::kServer);
  CHECK(server.max_concurrency == 64);
  CHECK(server.start_timeout == std::chrono::milliseconds(5000));
  CHECK(server.listen_socket);
  CHECK_FALSE(server.upstream_url);
  CHECK(parse({"app"}).max_concurrency == 1);
  // An of-watchdog Dockerfile's environment, unchanged.
  auto openfaas = parse({}, {{"mode", "http"}, {"fprocess", "python3 index.py"},
                             {"upstream_url", "http://127.0.0.1:5000"}, {"max_concurrency", "8"}});
  CHECK(openfaas.format == Format::kServer);
  REQUIRE(openfaas.upstream_url);
  CHECK(openfaas.upstream_url->host == "127.0.0.1");
  CHECK(openfaas.upstream_url->port == 5000);
  CHECK(openfaas.max_concurrency == 8);
  CHECK(openfaas.max_instances == 1);  // one address: one process
  CHECK(parse({"--upstream-url", "http://localhost:8081/", "app"})
            .upstream_url->host == "localhost");
  CHECK(parse({"--upstream-url", "unix:/run/app.sock", "app"}).upstream_url->path ==
        "/run/app.sock");
  CHECK(usage_error({"--upstream-url", "http://127.0.0.1", "app"}, {})
            .starts_with("--upstream-url: expected http://HOST:PORT"));
  CHECK(usage_error({"--format", "fpm", "app"}, {}).starts_with("--format: expected cgi, http or server"));
}

TEST_CASE("options: a flag wins over the environment") {
  Environment env = {{"format", "http"},   {"exec_timeout", "5s"}, {"max_body", "1KiB"},
                     {"cgi_response", "1"}, {"function_name", "e"}, {"listen", ":1"}};
  Options o = parse({"--format", "cgi", "--exec-timeout=9s", "--max-body", "2KiB",
                     "--cgi-headers=false", "--name", "f", "--listen", "unix:/tmp/f.sock", "cat"},
                    env);
  CHECK(o.format == Format::kCgi);
  CHECK(o.exec_timeout == 9s);
  CHECK(o.max_body == 2048u);
  CHECK_FALSE(o.cgi_headers);
  CHECK(o.name == "f");
  CHECK(o.listen.kind == common::Address::Kind::kUnix);
}

TEST_CASE("options: OpenFaaS's cgi_headers is not fastfn's --cgi-headers") {
  // An OpenFaaS config's cgi_headers=true (its default) leaves the output unparsed.
  Options openfaas = parse({"cat"}, {{"cgi_headers", "true"}});
  CHECK_FALSE(openfaas.cgi_headers);
  CHECK(openfaas.openfaas_variables);
  CHECK_FALSE(parse({"--openfaas-variables=false", "cat"}).openfaas_variables);
  CHECK(parse({"--cgi-headers", "cat"}, {{"cgi_headers", "false"}}).cgi_headers);
}

TEST_CASE("options: OpenFaaS's other names, and what fastfn does not take") {
  CHECK(parse({}, {{"function_process", "wc -l"}}).command == Args{"wc", "-l"});
  CHECK(parse({}, {{"function_process", "wc -l"}, {"fprocess", "cat"}}).command == Args{"cat"});
  Options upstream = parse({"app"}, {{"mode", "http"}, {"http_upstream_url", "http://127.0.0.1:5000"}});
  REQUIRE(upstream.upstream_url);
  CHECK(upstream.upstream_url->port == 5000);
  CHECK(parse({"cat"}, {{"combined_output", "true"}}).combine_output);
  auto parsed = watchdog::parse_options({"cat"}, {{"ready_path", "/ready"}, {"prefix_logs", "false"}}, 1);
  REQUIRE(parsed.ignored.size() == 2);
  CHECK(parsed.ignored[0].starts_with("prefix_logs is not taken: "));
  CHECK(parsed.ignored[1].starts_with("ready_path is not taken: "));
  CHECK(watchdog::parse_options({"cat"}, {}, 1).ignored.empty());
  CHECK(watchdog::parse_options({"--flags-only", "cat"}, {{"ready_path", "/r"}}, 1).ignored.empty());
  // Serving without the check its author counted on would open the function to anyone.
  CHECK(usage_error({"cat"}, {{"jwt_auth", "true"}}).starts_with("jwt_auth: "));
  CHECK(usage_error({"cat"}, {{"jwt_auth", "false"}}).empty());
}

TEST_CASE("options: a flag overrides an invalid environment variable") {
  // The flag wins, so the variable it replaces is never used and must not stop the program.
  std::string error = usage_error({"--max-body", "2KiB", "cat"}, {{"max_body", "lots"}});
  REQUIRE_MESSAGE(error.empty(), error);
  CHECK(parse({"--max-body", "2KiB", "cat"}, {{"max_body", "lots"}}).max_body == 2048u);
}

TEST_CASE("options: the last of a repeated flag wins") {
  CHECK(parse({"--format", "http", "--format", "cgi", "cat"}).format == Format::kCgi);
}

TEST_CASE("options: boolean flags") {
  SUBCASE("bare flag turns on") {
    Options o = parse({"--cgi-headers", "--combine-output", "--suppress-lock", "cat"});
    CHECK(o.cgi_headers);
    CHECK(o.combine_output);
    CHECK(o.suppress_lock);
  }
  SUBCASE("a bare boolean flag does not take the next word") {
    Options o = parse({"--cgi-headers", "false"});
    CHECK(o.cgi_headers);
    CHECK(o.command == Args{"false"});
  }
  SUBCASE("=value forms") {
    for (std::string on : {"1", "true", "yes", "on"}) {
      CAPTURE(on);
      CHECK(parse({"--cgi-headers=" + on, "cat"}).cgi_headers);
    }
    for (std::string off : {"0", "false", "no", "off"}) {
      CAPTURE(off);
      CHECK_FALSE(
          parse({"--combine-output=" + off, "cat"}, {{"combine_output", "1"}}).combine_output);
    }
  }
  SUBCASE("environment off") {
    CHECK_FALSE(parse({"cat"}, {{"cgi_response", "false"}}).cgi_headers);
    CHECK_FALSE(parse({"cat"}, {{"cgi_headers", "false"}}).openfaas_variables);
    CHECK_FALSE(parse({"cat"}, {{"combine_output", "0"}}).combine_output);
  }
  SUBCASE("a bad boolean") {
    std::string error = usage_error({"--cgi-headers=maybe", "cat"});
    CHECK(one_line(error));
    CHECK(error.find("--cgi-headers") != std::string::npos);
    CHECK(error.find("maybe") != std::string::npos);
    CHECK(one_line(usage_error({"cat"}, {{"combine_output", "sometimes"}})));
  }
}

TEST_CASE("options: COMMAND starts at -- or at the first non-option word") {
  SUBCASE("after --") {
    Options o = parse({"--format", "http", "--", "python3", "handler.py", "--format", "x"});
    CHECK(o.command == Args{"python3", "handler.py", "--format", "x"});
    CHECK(o.format == Format::kHttp);
  }
  SUBCASE("-- then a word that looks like an option") {
    CHECK(parse({"--", "--weird-program"}).command == Args{"--weird-program"});
  }
  SUBCASE("first non-option word") {
    Options o = parse({"--max-body", "1KiB", "grep", "-v", "--help", "x"});
    CHECK(o.command == Args{"grep", "-v", "--help", "x"});
    CHECK(o.max_body == 1024u);
  }
  SUBCASE("only the first -- is ours") {
    CHECK(parse({"--", "sh", "--", "x"}).command == Args{"sh", "--", "x"});
  }
  SUBCASE("a lone - is a word") { CHECK(parse({"-"}).command == Args{"-"}); }
}

TEST_CASE("options: the name is the basename of COMMAND") {
  CHECK(parse({"/usr/bin/sha256sum"}).name == "sha256sum");
  CHECK(parse({"./handler"}).name == "handler");
  CHECK(parse({"python3", "handler.py"}).name == "python3");
  CHECK(parse({"--name", "", "wc"}).name == "wc");
}

TEST_CASE("options: fprocess gives COMMAND, split on spaces") {
  SUBCASE("split") {
    Options o = parse({}, {{"fprocess", "python3  handler.py --flag"}});
    CHECK(o.command == Args{"python3", "handler.py", "--flag"});
    CHECK(o.name == "python3");
  }
  SUBCASE("no shell: quotes and $ are literal") {
    Options o = parse({}, {{"fprocess", "echo \"a b\" $HOME"}});
    CHECK(o.command == Args{"echo", "\"a", "b\"", "$HOME"});
  }
  SUBCASE("after options") {
    Options o = parse({"--format", "http"}, {{"fprocess", "cat"}});
    CHECK(o.command == Args{"cat"});
    CHECK(o.format == Format::kHttp);
  }
  SUBCASE("after a bare --") { CHECK(parse({"--"}, {{"fprocess", "cat"}}).command == Args{"cat"}); }
  SUBCASE("a COMMAND on the command line wins") {
    CHECK(parse({"wc", "-c"}, {{"fprocess", "cat"}}).command == Args{"wc", "-c"});
  }
}

TEST_CASE("options: a missing COMMAND is a usage error") {
  for (const auto& env :
       {Environment{}, Environment{{"fprocess", ""}}, Environment{{"fprocess", "   "}}}) {
    for (const auto& args : {Args{}, Args{"--"}, Args{"--format", "http"}}) {
      std::string error = usage_error(args, env);
      CHECK(one_line(error));
      CHECK(error.find("COMMAND") != std::string::npos);
    }
  }
}

TEST_CASE("options: unknown options are a usage error") {
  for (std::string flag : {"--bogus", "-x", "--format-x", "--Format", "--bogus=1"}) {
    CAPTURE(flag);
    std::string error = usage_error({flag, "cat"});
    CHECK(one_line(error));
    CHECK(error.find("unknown option") != std::string::npos);
    CHECK(error.find(flag.substr(0, flag.find('='))) != std::string::npos);
  }
}

TEST_CASE("options: a missing value is a usage error") {
  for (std::string flag :
       {"--format", "--listen", "--exec-timeout", "--max-body", "--max-instances", "--content-type",
        "--workdir", "--name", "--log-format"}) {
    CAPTURE(flag);
    std::string error = usage_error({flag});
    CHECK(one_line(error));
    CHECK(error.find(flag) != std::string::npos);
    CHECK(error.find("missing value") != std::string::npos);
  }
}

TEST_CASE("options: bad values are a usage error naming the flag or variable") {
  struct Case {
    Args args;
    Environment env;
    std::string names;
  };
  std::vector<Case> cases = {
      {{"--format", "fork", "cat"}, {}, "--format"},
      {{"--listen", "nowhere", "cat"}, {}, "--listen"},
      {{"--listen", "unix:", "cat"}, {}, "--listen"},
      {{"--listen=:70000", "cat"}, {}, "--listen"},
      {{"--exec-timeout", "soon", "cat"}, {}, "--exec-timeout"},
      {{"--exec-timeout=", "cat"}, {}, "--exec-timeout"},
      {{"--read-timeout", "-1s", "cat"}, {}, "--read-timeout"},
      {{"--write-timeout", "10 s", "cat"}, {}, "--write-timeout"},
      {{"--idle-timeout", "1d", "cat"}, {}, "--idle-timeout"},
      {{"--shutdown-timeout", "x", "cat"}, {}, "--shutdown-timeout"},
      {{"--max-body", "10 MiB", "cat"}, {}, "--max-body"},
      {{"--max-body", "1.5MiB", "cat"}, {}, "--max-body"},
      {{"--max-inflight", "-1", "cat"}, {}, "--max-inflight"},
      {{"--max-inflight", "many", "cat"}, {}, "--max-inflight"},
      {{"--max-instances", "0", "cat"}, {}, "--max-instances"},
      {{"--max-instances", "2.5", "cat"}, {}, "--max-instances"},
      {{"--min-instances", "-1", "cat"}, {}, "--min-instances"},
      {{"--max-queue", "1e3", "cat"}, {}, "--max-queue"},
      {{"--max-requests", "99999999999", "cat"}, {}, "--max-requests"},
      {{"--log-format", "xml", "cat"}, {}, "--log-format"},
      {{"--log-level", "loud", "cat"}, {}, "--log-level"},
      {{"cat"}, {{"format", "fork"}}, "format"},
      {{"cat"}, {{"exec_timeout", "soon"}}, "exec_timeout"},
      {{"cat"}, {{"max_body", "huge"}}, "max_body"},
      {{"cat"}, {{"max_instances", "0"}}, "max_instances"},
      {{"cat"}, {{"listen", "nowhere"}}, "listen"},
  };
  for (const auto& c : cases) {
    CAPTURE(c.names);
    std::string error = usage_error(c.args, c.env);
    CHECK(one_line(error));
    CHECK(error.rfind(c.names + ":", 0) == 0);
  }
}

TEST_CASE("options: a NaN duration is a usage error") {
  for (std::string value : {"nan", "nanms"}) {
    CAPTURE(value);
    std::string error = usage_error({"--exec-timeout", value, "cat"});
    CHECK_MESSAGE(
        one_line(error),
        "accepted, exec_timeout = "
            << (error.empty() ? parse({"--exec-timeout", value, "cat"}).exec_timeout.count() : 0)
            << "ms");
  }
}

TEST_CASE("options: min-instances above max-instances is a usage error") {
  SUBCASE("both given") {
    std::string error = usage_error({"--min-instances", "3", "--max-instances", "2", "cat"});
    CHECK(one_line(error));
    CHECK(error.find("--min-instances") != std::string::npos);
    CHECK(error.find("--max-instances") != std::string::npos);
  }
  SUBCASE("above the CPU count default") {
    CHECK(one_line(usage_error({"--min-instances", "5", "cat"}, {}, 4)));
  }
  SUBCASE("from the environment") {
    CHECK(one_line(usage_error({"cat"}, {{"min_instances", "3"}, {"max_instances", "2"}})));
  }
  SUBCASE("equal is fine") {
    Options o = parse({"--min-instances", "2", "--max-instances", "2", "cat"});
    CHECK(o.min_instances == 2);
    CHECK(o.max_instances == 2);
  }
}

TEST_CASE("options: --help and --version") {
  SUBCASE("--help") {
    CHECK(watchdog::parse_options({"--help"}, {}, 1).action == Action::kHelp);
    CHECK(watchdog::parse_options({"-h"}, {}, 1).action == Action::kHelp);
  }
  SUBCASE("--version") {
    CHECK(watchdog::parse_options({"--version"}, {}, 1).action == Action::kVersion);
    CHECK(watchdog::parse_options({"-V"}, {}, 1).action == Action::kVersion);
  }
  SUBCASE("need no COMMAND and ignore one") {
    CHECK(watchdog::parse_options({"--format", "http", "--help", "cat"}, {}, 1).action ==
          Action::kHelp);
  }
  SUBCASE("after COMMAND they are the command's") {
    auto parsed = watchdog::parse_options({"grep", "--help"}, {}, 1);
    CHECK(parsed.action == Action::kRun);
    CHECK(parsed.options.command == Args{"grep", "--help"});
  }
  SUBCASE("the help text lists every flag") {
    std::string text = watchdog::usage();
    for (std::string flag :
         {"--format",           "--listen",       "--exec-timeout",   "--read-timeout",
          "--write-timeout",    "--max-inflight", "--max-body",       "--min-instances",
          "--max-instances",    "--max-queue",    "--idle-timeout",   "--max-requests",
          "--cgi-headers",      "--content-type", "--combine-output", "--workdir",
          "--shutdown-timeout", "--log-format",   "--name",           "--help",
          "--version"}) {
      CAPTURE(flag);
      CHECK(text.find(flag) != std::string::npos);
    }
  }
}

TEST_CASE("options: --help and --version work whatever the environment holds") {
  // As every CLI's: a broken variable must not hide the help or the version.
  Environment broken = {{"max_body", "lots"}, {"min_instances", "9"}, {"max_instances", "1"}};
  std::string help_error = usage_error({"--help"}, broken);
  CHECK_MESSAGE(help_error.empty(), help_error);
  std::string version_error = usage_error({"--version"}, broken);
  CHECK_MESSAGE(version_error.empty(), version_error);
}

TEST_CASE("options: --flags-only reads no option from the environment") {
  // How fastfn-gateway starts a watchdog: the environment carries the function's "env" for its
  // handlers, and a variable that happens to share an option's name must configure nothing.
  Environment env = {{"max_body", "1"},         {"log_format", "json"}, {"format", "http"},
                     {"cgi_response", "1"},     {"content_type", "x/y"}, {"max_inflight", "1"},
                     {"combine_output", "yes"}, {"fprocess", "env"},     {"exec_timeout", "bad"}};
  Options o = parse({"--flags-only", "--max-instances", "2", "--", "cat"}, env);
  CHECK(o.flags_only);
  CHECK(o.max_body == 10u * 1024 * 1024);
  CHECK(o.log_format == common::LogFormat::kText);
  CHECK(o.format == Format::kCgi);
  CHECK_FALSE(o.cgi_headers);
  CHECK(o.content_type == "text/plain; charset=utf-8");
  CHECK(o.max_inflight == 0);
  CHECK_FALSE(o.combine_output);
  CHECK(o.exec_timeout == 30s);
  CHECK(o.max_instances == 2);
  CHECK(o.command == Args{"cat"});
  SUBCASE("flags still apply") {
    CHECK(parse({"--cgi-headers", "--flags-only", "cat"}, env).cgi_headers);
  }
  SUBCASE("fprocess is not read either") {
    CHECK(one_line(usage_error({"--flags-only"}, {{"fprocess", "cat"}})));
  }
  SUBCASE("without it the environment is read as before") {
    CHECK(parse({"cat"}, {{"max_body", "1"}}).max_body == 1u);
    CHECK(parse({"--flags-only=false", "cat"}, {{"max_body", "1"}}).max_body == 1u);
  }
  SUBCASE("the help text names it") {
    CHECK(watchdog::usage().find("--flags-only") != std::string::npos);
  }
}

TEST_CASE("options: requested_log_format reads a command line that does not parse") {
  using common::LogFormat;
  auto asked = [](const Args& args, const Environment& env = {}) {
    return watchdog::requested_log_format(args, env);
  };
  CHECK(asked({"--bogus", "--log-format", "json"}) == LogFormat::kJson);
  CHECK(asked({"--max-body", "lots", "--log-format=json", "cat"}) == LogFormat::kJson);
  CHECK(asked({"--bogus"}, {{"log_format", "json"}}) == LogFormat::kJson);
  CHECK(asked({"--log-format", "text"}, {{"log_format", "json"}}) == LogFormat::kText);
  CHECK(asked({"--log-format", "xml"}, {{"log_format", "json"}}) == LogFormat::kText);
  SUBCASE("a flag's value is not a flag") {
    CHECK(asked({"--name", "--log-format", "cat"}) == LogFormat::kText);
  }
  SUBCASE("COMMAND's words are not read") {
    CHECK(asked({"cat", "--log-format", "json"}) == LogFormat::kText);
    CHECK(asked({"--", "cat", "--log-format", "json"}) == LogFormat::kText);
  }
  SUBCASE("--flags-only leaves the environment to the handler") {
    CHECK(asked({"--flags-only", "--bogus"}, {{"log_format", "json"}}) == LogFormat::kText);
    CHECK(asked({"--flags-only=false", "--bogus"}, {{"log_format", "json"}}) == LogFormat::kJson);
  }
}
