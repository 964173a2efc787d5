#include "gateway/registry.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <set>
#include <string>
#include <vector>

namespace {

using gateway::FunctionSpec;

constexpr std::size_t kSunPathMax = 107;

FunctionSpec spec_named(const std::string& name) {
  FunctionSpec spec;
  spec.name = name;
  spec.dir = spec.workdir = "/srv/functions/" + name;
  spec.command = {"/bin/sh", "handler.sh"};
  return spec;
}

bool contains(const std::vector<std::string>& list, const std::string& item) {
  return std::find(list.begin(), list.end(), item) != list.end();
}

// The value of NAME in "NAME=value" entries; "<none>" when absent, "<twice>" when repeated.
std::string lookup(const std::vector<std::string>& env, const std::string& name) {
  std::string found = "<none>";
  for (const auto& entry : env) {
    if (entry.substr(0, entry.find('=')) != name) continue;
    if (found != "<none>") return "<twice>";
    found = entry.substr(entry.find('=') + 1);
  }
  return found;
}

}  // namespace

TEST_CASE("registry: socket paths are readable and never shared between launches") {
  CHECK(gateway::socket_path("/run/fn", 42, "api/users", 7, 1) == "/run/fn/42-api_users-7-1.sock");
  SUBCASE("names that read the same get different paths") {
    std::set<std::string> paths;
    std::uint64_t launch = 0;
    for (const char* name : {"api/users", "api_users", "api.users", "api/users"})
      for (int index = 0; index < 3; ++index)
        paths.insert(gateway::socket_path("/run/fn", 42, name, ++launch, index));
    CHECK(paths.size() == 12);
  }
  SUBCASE("the same launch and name in two gateways") {
    CHECK(gateway::socket_path("/run/fn", 42, "a", 1, 0) !=
          gateway::socket_path("/run/fn", 43, "a", 1, 0));
  }
  SUBCASE("long names are shortened to fit sun_path, keeping what tells them apart") {
    const std::string dir = "/tmp/fastfn-gw-abcdefgh/sockets";
    const std::string name(200, 'x');
    const std::string a = gateway::socket_path(dir, 4194304, name + "/a", 18446744073709551615u, 63);
    const std::string b = gateway::socket_path(dir, 4194304, name + "/b", 18446744073709551614u, 63);
    CHECK(a.size() <= kSunPathMax);
    CHECK(b.size() <= kSunPathMax);
    CHECK(a != b);
    CHECK(a.starts_with(dir + "/4194304-xxxx"));
    CHECK(a.ends_with("-18446744073709551615-63.sock"));
  }
  SUBCASE("a dir that leaves no room keeps the parts that make the path unique") {
    const std::string dir(120, 'd');
    CHECK(gateway::socket_path(dir, 1, "api/users", 2, 3) == dir + "/1--2-3.sock");
  }
}

TEST_CASE("registry: the watchdog is configured by flags only") {
  FunctionSpec spec = spec_named("api/users");
  spec.max_body_bytes = 1024;
  spec.timeout_ms = 2500;
  const auto argv = gateway::watchdog_argv("/usr/bin/fastfn-watchdog", spec, "/run/fn/s.sock");
  REQUIRE(argv.size() > 2);
  CHECK(argv[0] == "/usr/bin/fastfn-watchdog");
  CHECK(argv[1] == "--flags-only");
  CHECK_FALSE(contains(argv, "--cgi-headers"));
  const auto dashes = std::find(argv.begin(), argv.end(), "--");
  REQUIRE(dashes != argv.end());
  CHECK(std::vector<std::string>(dashes + 1, argv.end()) == spec.command);
  CHECK(contains(argv, "unix:/run/fn/s.sock"));
  CHECK(contains(argv, "--max-body"));
  CHECK(contains(argv, "2500ms"));
  SUBCASE("the gateway's log flags, before the function's own") {
    const std::vector<std::string> log{"--log-format", "json", "--log-level", "debug"};
    const auto with = gateway::watchdog_argv("wd", spec, "/s.sock", log);
    REQUIRE(with.size() > 6);
    CHECK(std::vector<std::string>(with.begin() + 2, with.begin() + 6) == log);
  }
  SUBCASE("cgi_headers") {
    spec.cgi_headers = true;
    const auto with = gateway::watchdog_argv("wd", spec, "/s.sock");
    const auto flag = std::find(with.begin(), with.end(), "--cgi-headers");
    REQUIRE(flag != with.end());
    CHECK(flag < std::find(with.begin(), with.end(), "--"));
  }
}

TEST_CASE("registry: the watchdog's environment is the gateway's, then the function's env") {
  FunctionSpec spec = spec_named("hello");
  spec.env = {{"GREETING", "hi"}, {"PATH", "/opt/bin"}, {"max_body", "1"}};
  const std::vector<std::string> base{"PATH=/usr/bin", "HOME=/root", "FASTFN_PARENT_PID=1",
                                      "GREETING=old"};
  const auto env = gateway::watchdog_env(base, spec, 4242);
  CHECK(lookup(env, "PATH") == "/opt/bin");
  CHECK(lookup(env, "GREETING") == "hi");
  CHECK(lookup(env, "HOME") == "/root");
  CHECK(lookup(env, "max_body") == "1");  // the handler's: --flags-only keeps the watchdog off it
  CHECK(lookup(env, "FASTFN_PARENT_PID") == "4242");
  SUBCASE("a function cannot tell its watchdog to follow another process") {
    spec.env["FASTFN_PARENT_PID"] = "1";
    CHECK(lookup(gateway::watchdog_env(base, spec, 4242), "FASTFN_PARENT_PID") == "4242");
  }
}
