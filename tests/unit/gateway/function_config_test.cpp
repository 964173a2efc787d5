#include "gateway/function_config.h"

#include <doctest/doctest.h>

#include <string>

namespace {

using gateway::Format;
using gateway::FunctionConfig;

constexpr const char* kFile = "functions/hello/fn.config.json";
const std::filesystem::path kDir = "/srv/functions/hello";

FunctionConfig parse_ok(const std::string& json) {
  auto parsed = gateway::parse_function_config(json, kFile, kDir);
  if (!parsed) FAIL(parsed.error());
  return *parsed;
}

std::string error_of(const std::string& json) {
  auto parsed = gateway::parse_function_config(json, kFile, kDir);
  REQUIRE_FALSE(parsed.has_value());
  return parsed.error();
}

// Asserts the error names the file and `key`.
void check_key_error(const std::string& json, const std::string& key) {
  const std::string error = error_of(json);
  CAPTURE(json);
  CAPTURE(error);
  CHECK(error.starts_with(std::string(kFile) + ": key \"" + key + "\": expected "));
}

}  // namespace

TEST_CASE("function_config: an empty object gives the defaults") {
  const FunctionConfig c = parse_ok("{}");
  CHECK_FALSE(c.runtime.has_value());
  CHECK_FALSE(c.format.has_value());
  CHECK(c.command.empty());
  CHECK_FALSE(c.routes.has_value());
  CHECK(c.methods.empty());
  CHECK_FALSE(c.timeout_ms.has_value());
  CHECK_FALSE(c.daemons.has_value());
  CHECK(c.env.empty());
  CHECK_FALSE(c.worker_pool.has_value());
  CHECK_FALSE(c.include_debug_headers);
}

TEST_CASE("function_config: every key read") {
  const FunctionConfig c = parse_ok(R"({
    "runtime": "python", "format": "http", "command": ["python3", "-u", "app.py"],
    "routes": ["/hello", "/hi/"], "methods": ["get", "Post", "GET"],
    "timeout_ms": 2500, "idle_timeout_ms": 30000, "max_body_bytes": 1048576,
    "min_instances": 0, "max_instances": 4, "max_requests": 1000, "daemons": 2,
    "env": {"GREETING": "hi", "_X1": ""},
    "worker_pool": {"max_workers": 8, "max_queue": 16, "queue_timeout_ms": 500,
                    "overflow_status": 503},
    "include_debug_headers": true})");
  CHECK(c.runtime == "python");
  CHECK(c.format == Format::kHttp);
  CHECK(c.command == std::vector<std::string>{"python3", "-u", "app.py"});
  CHECK(c.routes == std::vector<std::string>{"/hello", "/hi"});
  CHECK(c.methods == std::vector<std::string>{"GET", "POST"});
  CHECK(c.timeout_ms == 2500u);
  CHECK(c.idle_timeout_ms == 30000u);
  CHECK(c.max_body_bytes == 1048576u);
  CHECK(c.min_instances == 0u);
  CHECK(c.max_instances == 4u);
  CHECK(c.max_requests == 1000u);
  CHECK(c.daemons == 2);
  CHECK(c.env == std::map<std::string, std::string>{{"GREETING", "hi"}, {"_X1", ""}});
  REQUIRE(c.worker_pool.has_value());
  CHECK(c.worker_pool->enabled);
  CHECK(c.worker_pool->max_workers == 8u);
  CHECK(c.worker_pool->max_queue == 16u);
  CHECK(c.worker_pool->queue_timeout == std::chrono::milliseconds(500));
  CHECK(c.worker_pool->overflow_status == 503);
  CHECK(c.include_debug_headers);
  CHECK(gateway::format_name(*c.format) == "http");
  CHECK(gateway::format_name(Format::kCgi) == "cgi");
}

TEST_CASE("function_config: command paths") {
  SUBCASE("a bare program name is left for PATH") {
    CHECK(parse_ok(R"({"command": ["wc", "-c"]})").command.front() == "wc");
  }
  SUBCASE("a relative path is resolved against the function folder") {
    CHECK(parse_ok(R"({"command": ["./bin/run", "x/y"]})").command ==
          std::vector<std::string>{"/srv/functions/hello/bin/run", "x/y"});
    CHECK(parse_ok(R"({"command": ["../shared/tool"]})").command.front() ==
          "/srv/functions/shared/tool");
  }
  SUBCASE("an absolute path is kept") {
    CHECK(parse_ok(R"({"command": ["/usr/bin/git", "http-backend"]})").command.front() ==
          "/usr/bin/git");
  }
  SUBCASE("errors") {
    check_key_error(R"({"command": []})", "command");
    check_key_error(R"({"command": "wc -c"})", "command");
    check_key_error(R"({"command": ["wc", ""]})", "command");
    check_key_error(R"({"command": ["wc", 1]})", "command");
  }
}

TEST_CASE("function_config: FastFN's nested spellings, invoke and response") {
  const auto c = parse_ok(R"({"invoke": {"methods": ["get", "post"], "routes": ["/api/x"]},
                              "response": {"include_debug_headers": true}})");
  CHECK(c.methods == std::vector<std::string>{"GET", "POST"});
  REQUIRE(c.routes);
  CHECK(*c.routes == std::vector<std::string>{"/api/x"});
  CHECK(c.include_debug_headers);
  check_key_error(R"({"invoke": {"methods": "GET"}})", "invoke.methods");
  check_key_error(R"({"response": {"include_debug_headers": 1}})", "response.include_debug_headers");
  CHECK(error_of(R"({"invoke": {"summary": "x"}})").starts_with(std::string(kFile) +
                                                                 ": unknown key \"invoke.summary\""));
  // One setting, two names: refused rather than one silently winning.
  CHECK(error_of(R"({"methods": ["GET"], "invoke": {"methods": ["POST"]}})")
            .starts_with(std::string(kFile) + ": key \"invoke.methods\": the same setting as "
                                              "\"methods\""));
  CHECK(error_of(R"({"response": {"include_debug_headers": true}, "include_debug_headers": false})")
            .starts_with(std::string(kFile) + ": key \"include_debug_headers\": the same setting"));
}

TEST_CASE("function_config: invoke.handler names the event contract's function") {
  CHECK(parse_ok(R"({"invoke": {"handler": "main"}})").handler == "main");
  CHECK(parse_ok(R"({"invoke": {"handler": "$h_2"}, "format": "http"})").handler == "$h_2");
  CHECK_FALSE(parse_ok("{}").handler.has_value());
  for (const char* bad : {R"("")", R"("2x")", R"("a.b")", R"("a b")", "1"}) {
    CAPTURE(bad);
    check_key_error(std::string(R"({"invoke": {"handler": )") + bad + "}}", "invoke.handler");
  }
  CHECK(error_of(R"({"invoke": {"handler": "h"}, "format": "cgi"})")
            .starts_with(std::string(kFile) + ": key \"invoke.handler\": expected no \"format\""));
  CHECK(error_of(R"({"invoke": {"handler": "h"}, "command": ["./x"]})")
            .starts_with(std::string(kFile) + ": key \"invoke.handler\": expected no \"command\""));
}

TEST_CASE("function_config: worker_pool") {
  SUBCASE("enabled by default when present") {
    const auto c = parse_ok(R"({"worker_pool": {}})");
    REQUIRE(c.worker_pool.has_value());
    CHECK(c.worker_pool->enabled);
    CHECK(c.worker_pool->max_workers == 0u);
    CHECK(c.worker_pool->overflow_status == 429);
  }
  SUBCASE("can be disabled") {
    CHECK_FALSE(parse_ok(R"({"worker_pool": {"enabled": false}})").worker_pool->enabled);
  }
  SUBCASE("errors name the nested key") {
    check_key_error(R"({"worker_pool": {"overflow_status": 500}})", "worker_pool.overflow_status");
    check_key_error(R"({"worker_pool": {"max_queue": -1}})", "worker_pool.max_queue");
    check_key_error(R"({"worker_pool": {"max_workers": "8"}})", "worker_pool.max_workers");
    check_key_error(R"({"worker_pool": {"queue_timeout_ms": 1.5}})",
                    "worker_pool.queue_timeout_ms");
    check_key_error(R"({"worker_pool": {"enabled": 1}})", "worker_pool.enabled");
    check_key_error(R"({"worker_pool": true})", "worker_pool");
    check_key_error(R"({"worker_pool": {"min_warm": 65}})", "worker_pool.min_warm");
    check_key_error(R"({"worker_pool": {"min_warm": true}})", "worker_pool.min_warm");
    check_key_error(R"({"worker_pool": {"idle_ttl_seconds": 0}})", "worker_pool.idle_ttl_seconds");
    check_key_error(R"({"worker_pool": {"idle_ttl_seconds": "5m"}})", "worker_pool.idle_ttl_seconds");
    CHECK(error_of(R"({"worker_pool": {"min_idle": 1}})")
              .starts_with(std::string(kFile) + ": unknown key \"worker_pool.min_idle\""));
  }
  SUBCASE("min_warm and idle_ttl_seconds, unset by default") {
    const auto unset = parse_ok(R"({"worker_pool": {}})");
    CHECK_FALSE(unset.worker_pool->min_warm.has_value());
    CHECK_FALSE(unset.worker_pool->idle_ttl.has_value());
    const auto c = parse_ok(R"({"worker_pool": {"min_warm": 0, "idle_ttl_seconds": 90}})");
    CHECK(c.worker_pool->min_warm == 0u);
    CHECK(c.worker_pool->idle_ttl == std::chrono::seconds(90));
  }
}

TEST_CASE("function_config: bad values name the file and key") {
  SUBCASE("the brief's example") {
    CHECK(error_of(R"({"timeout_ms": "abc"})") ==
          "functions/hello/fn.config.json: key \"timeout_ms\": expected a non-negative integer, "
          "got \"abc\"");
  }
  SUBCASE("numbers") {
    for (const char* key : {"timeout_ms", "idle_timeout_ms", "max_body_bytes", "min_instances",
                            "max_instances", "max_requests", "daemons"}) {
      CAPTURE(key);
      for (const char* bad : {"-1", "1.5", "\"3\"", "true", "1e30"}) {
        check_key_error(std::string("{\"") + key + "\": " + bad + "}", key);
      }
    }
  }
  SUBCASE("upper bounds") {
    check_key_error(R"({"daemons": 65})", "daemons");
    check_key_error(R"({"daemons": 0})", "daemons");
    check_key_error(R"({"max_instances": 0})", "max_instances");
    check_key_error(R"({"max_instances": 100000})", "max_instances");
    check_key_error(R"({"timeout_ms": 86400001})", "timeout_ms");
    CHECK(error_of(R"({"daemons": 65})").ends_with("expected an integer from 1 to 64, got 65"));
  }
  SUBCASE("min_instances above max_instances") {
    CHECK(error_of(R"({"min_instances": 5, "max_instances": 2})") ==
          std::string(kFile) +
              ": key \"min_instances\": expected at most max_instances (2), got 5");
  }
  SUBCASE("strings and enums") {
    check_key_error(R"({"runtime": "ruby"})", "runtime");
    check_key_error(R"({"runtime": 1})", "runtime");
    check_key_error(R"({"format": "fork"})", "format");
    check_key_error(R"({"include_debug_headers": "yes"})", "include_debug_headers");
  }
  SUBCASE("routes") {
    check_key_error(R"({"routes": []})", "routes");
    check_key_error(R"({"routes": "/x"})", "routes");
    check_key_error(R"({"routes": ["x"]})", "routes");
    check_key_error(R"({"routes": ["/a//b"]})", "routes");
    check_key_error(R"({"routes": ["/a/../b"]})", "routes");
    check_key_error(R"({"routes": ["/a b"]})", "routes");
    check_key_error(R"({"routes": ["/a?x=1"]})", "routes");
    check_key_error(R"({"routes": ["/%41"]})", "routes");
  }
  SUBCASE("methods") {
    check_key_error(R"({"methods": ["GET", "BAD METHOD"]})", "methods");
    check_key_error(R"({"methods": "GET"})", "methods");
    CHECK(parse_ok(R"({"methods": []})").methods.empty());
  }
  SUBCASE("env") {
    check_key_error(R"({"env": {"1BAD": "x"}})", "env");
    check_key_error(R"({"env": {"A-B": "x"}})", "env");
    check_key_error(R"({"env": {"N": 3}})", "env");
    check_key_error(R"({"env": ["A=1"]})", "env");
    CHECK(error_of(R"({"env": {"1BAD": "x"}})").ends_with("got \"1BAD\""));
  }
}

TEST_CASE("function_config: format server and max_concurrency") {
  const FunctionConfig c = parse_ok(R"({"format": "server", "max_concurrency": 64})");
  CHECK(c.format == Format::kServer);
  CHECK(gateway::format_name(*c.format) == "server");
  CHECK(c.max_concurrency == 64u);
  CHECK_FALSE(parse_ok("{}").max_concurrency);
  check_key_error(R"({"max_concurrency": 0})", "max_concurrency");
  CHECK(error_of(R"({"format": "fpm"})").find("\"cgi\", \"http\" or \"server\"") != std::string::npos);
}

TEST_CASE("function_config: cgi_headers") {
  CHECK_FALSE(parse_ok("{}").cgi_headers);
  CHECK(parse_ok(R"({"cgi_headers": true})").cgi_headers);
  CHECK(parse_ok(R"({"cgi_headers": true, "format": "cgi"})").cgi_headers);
  CHECK_FALSE(parse_ok(R"({"cgi_headers": false, "format": "http"})").cgi_headers);
  check_key_error(R"({"cgi_headers": "1"})", "cgi_headers");
  SUBCASE("a hot handler or an app server frames its answers itself") {
    check_key_error(R"({"cgi_headers": true, "format": "http"})", "cgi_headers");
    CHECK(error_of(R"({"cgi_headers": true, "format": "server"})").ends_with("got \"format\": \"server\""));
  }
  SUBCASE("the env variable of that name is the handler's, not a setting") {
    const FunctionConfig c = parse_ok(R"({"env": {"cgi_headers": "1"}})");
    CHECK_FALSE(c.cgi_headers);
    CHECK(c.env.at("cgi_headers") == "1");
  }
}

TEST_CASE("function_config: unknown, repeated and misplaced keys") {
  CHECK(error_of(R"({"timeout": 5})")
            .starts_with(std::string(kFile) + ": unknown key \"timeout\" (known keys: "));
  CHECK(error_of(R"({"daemons": 1, "daemons": 2})") ==
        std::string(kFile) + ": key \"daemons\": appears twice");
  CHECK(error_of(R"({"assets": {"dir": "public"}})") ==
        std::string(kFile) +
            ": key \"assets\": only the functions dir's own fn.config.json may set it");
}

TEST_CASE("function_config: JSON errors") {
  CHECK(error_of("{\"daemons\": 1") ==
        std::string(kFile) +
            ": invalid JSON at offset 13: Missing a comma or '}' after an object member.");
  CHECK(error_of("[1]") == std::string(kFile) + ": expected a JSON object at the top level");
  CHECK(error_of("") == std::string(kFile) + ": invalid JSON at offset 0: The document is empty.");
}

TEST_CASE("function_config: the root config holds assets only") {
  const std::string root = "functions/fn.config.json";
  SUBCASE("no assets") {
    auto parsed = gateway::parse_root_config("{}", root);
    REQUIRE(parsed.has_value());
    CHECK_FALSE(parsed->has_value());
  }
  SUBCASE("assets") {
    auto parsed = gateway::parse_root_config(
        R"({"assets": {"dir": "public/", "run_worker_first": true}})", root);
    REQUIRE(parsed.has_value());
    REQUIRE(parsed->has_value());
    CHECK((*parsed)->dir == "public");
    CHECK((*parsed)->run_worker_first);
  }
  SUBCASE("FastFN's \"directory\" spelling") {
    auto parsed = gateway::parse_root_config(R"({"assets": {"directory": "web/dist"}})", root);
    REQUIRE(parsed.has_value());
    CHECK((*parsed)->dir == "web/dist");
    CHECK_FALSE((*parsed)->run_worker_first);
  }
  SUBCASE("not_found_handling, Cloudflare's and FastFN's") {
    auto spa = gateway::parse_root_config(
        R"({"assets": {"dir": "d", "not_found_handling": "single-page-application"}})", root);
    REQUIRE(spa.has_value());
    CHECK((*spa)->single_page_application);
    auto none = gateway::parse_root_config(
        R"({"assets": {"dir": "d", "not_found_handling": "none"}})", root);
    REQUIRE(none.has_value());
    CHECK_FALSE((*none)->single_page_application);
    auto other = gateway::parse_root_config(
        R"({"assets": {"dir": "d", "not_found_handling": "404-page"}})", root);
    REQUIRE_FALSE(other.has_value());
    CHECK(other.error() == root + ": key \"assets.not_found_handling\": expected \"none\" or "
                                  "\"single-page-application\", got \"404-page\"");
  }
  SUBCASE("bad dirs") {
    for (const char* bad :
         {R"("../public")", R"("/srv/public")", R"("a/../../b")", R"("")", R"(".")", "3"}) {
      CAPTURE(bad);
      auto parsed =
          gateway::parse_root_config(std::string(R"({"assets": {"dir": )") + bad + "}}", root);
      REQUIRE_FALSE(parsed.has_value());
      CHECK(parsed.error().starts_with(root + ": key \"assets.dir\": expected"));
    }
  }
  SUBCASE("missing dir") {
    auto parsed = gateway::parse_root_config(R"({"assets": {"run_worker_first": true}})", root);
    REQUIRE_FALSE(parsed.has_value());
    CHECK(parsed.error().starts_with(root + ": key \"assets.dir\""));
  }
  SUBCASE("function keys are refused") {
    auto parsed = gateway::parse_root_config(R"({"timeout_ms": 5})", root);
    REQUIRE_FALSE(parsed.has_value());
    CHECK(parsed.error().starts_with(root + ": unknown key \"timeout_ms\""));
  }
}

TEST_CASE("function_config: route and name rules") {
  for (const char* good : {"/", "/a", "/api/users", "/v1.2/x-y_z~", "/a:b@c"}) {
    CAPTURE(good);
    CHECK(gateway::is_valid_route(good));
  }
  for (const char* bad : {"", "a", "//", "/a/", "/a//b", "/./a", "/a/..", "/a b", "/a%20", "/a?q",
                          "/a#f", "/\xc3\xa9"}) {
    CAPTURE(bad);
    CHECK_FALSE(gateway::is_valid_route(bad));
  }
  CHECK(gateway::is_valid_function_name("api/users"));
  CHECK_FALSE(gateway::is_valid_function_name(""));
  CHECK_FALSE(gateway::is_valid_function_name("/x"));
  CHECK_FALSE(gateway::is_valid_function_name("x/"));
  CHECK_FALSE(gateway::is_valid_function_name("hello world"));
}
