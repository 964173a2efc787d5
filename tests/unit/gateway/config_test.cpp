#include "gateway/config.h"

#include <doctest/doctest.h>

#include <map>
#include <string>

namespace {

using gateway::ConfigError;
using gateway::Environment;
using gateway::GatewayConfig;
using gateway::GatewayFlags;

constexpr unsigned kUid = 1000;

// A FileReader over an in-memory tree; records which paths were asked for.
struct FakeFiles {
  std::map<std::string, std::string> files;
  std::vector<std::string> asked;

  gateway::FileReader reader() {
    return [this](const std::string& path) -> std::optional<std::string> {
      asked.push_back(path);
      const auto it = files.find(path);
      if (it == files.end()) return std::nullopt;
      return it->second;
    };
  }
};

GatewayConfig load(const Environment& env, const std::string& file_json = "",
                   const GatewayFlags& flags = {}) {
  FakeFiles fs;
  if (!file_json.empty()) fs.files["fastfn.json"] = file_json;
  return gateway::load_gateway_config(flags, env, kUid, fs.reader());
}

// The ConfigError message for loading fastfn.json = `file_json` with `env`.
std::string error_of(const Environment& env, const std::string& file_json = "",
                     const GatewayFlags& flags = {}) {
  try {
    load(env, file_json, flags);
  } catch (const ConfigError& e) {
    return e.what();
  }
  FAIL("expected a ConfigError");
  return "";
}

}  // namespace

TEST_CASE("config: defaults when nothing is set") {
  FakeFiles fs;
  const GatewayConfig c = gateway::load_gateway_config({}, {}, kUid, fs.reader());
  CHECK(c.functions_dir == "./functions");
  CHECK(c.listen == "127.0.0.1:8080");
  CHECK(c.runtime_daemons.empty());
  CHECK(c.daemons_for("python") == 1);
  CHECK(c.binary_for("python") == "python3");
  CHECK(c.binary_for("node") == "node");
  CHECK(c.binary_for("sh") == "sh");
  CHECK_FALSE(c.binary_for("exec").has_value());
  CHECK(c.runtimes ==
        std::vector<std::string>{"python", "node", "php", "lua", "sh", "exec", "go", "rust"});
  CHECK(c.runtime_rank("node") == 1u);
  CHECK(c.socket_base_dir == "/tmp/fastfn-1000");
  CHECK(c.runtime_sockets.empty());
  CHECK(c.health_interval == std::chrono::milliseconds(1000));
  CHECK(c.config_file.empty());
  CHECK(fs.asked == std::vector<std::string>{"fastfn.json"});
}

TEST_CASE("config: socket dir follows XDG_RUNTIME_DIR") {
  SUBCASE("set") {
    CHECK(load({{"XDG_RUNTIME_DIR", "/run/user/1000"}}).socket_base_dir == "/run/user/1000/fastfn");
  }
  SUBCASE("empty counts as unset") {
    CHECK(load({{"XDG_RUNTIME_DIR", ""}}).socket_base_dir == "/tmp/fastfn-1000");
  }
  SUBCASE("FN_SOCKET_BASE_DIR wins") {
    CHECK(load({{"XDG_RUNTIME_DIR", "/run/user/1000"}, {"FN_SOCKET_BASE_DIR", "/srv/s"}})
              .socket_base_dir == "/srv/s");
  }
  SUBCASE("file value") {
    CHECK(load({}, R"({"socket-base-dir": "/var/fastfn"})").socket_base_dir == "/var/fastfn");
  }
}

TEST_CASE("config: flags win over env over file") {
  const std::string file = R"({"listen": "127.0.0.1:1111", "functions-dir": "from-file"})";
  const Environment env = {{"FN_LISTEN", "127.0.0.1:2222"}, {"FN_FUNCTIONS_ROOT", "from-env"}};
  GatewayFlags flags;
  flags.listen = "unix:/tmp/gw.sock";
  flags.functions_dir = "from-flag";
  SUBCASE("file over defaults") {
    const auto c = load({}, file);
    CHECK(c.listen == "127.0.0.1:1111");
    CHECK(c.functions_dir == "from-file");
    CHECK(c.config_file == "fastfn.json");
  }
  SUBCASE("env over file") {
    const auto c = load(env, file);
    CHECK(c.listen == "127.0.0.1:2222");
    CHECK(c.functions_dir == "from-env");
  }
  SUBCASE("flags over env") {
    const auto c = load(env, file, flags);
    CHECK(c.listen == "unix:/tmp/gw.sock");
    CHECK(c.functions_dir == "from-flag");
  }
  SUBCASE("empty env values count as unset") {
    const auto c = load({{"FN_LISTEN", ""}, {"FN_FUNCTIONS_ROOT", ""}}, file);
    CHECK(c.listen == "127.0.0.1:1111");
    CHECK(c.functions_dir == "from-file");
  }
}

TEST_CASE("config: which fastfn.json is read") {
  FakeFiles fs;
  fs.files = {{"fastfn.json", R"({"listen": ":1"})"},
              {"/etc/env.json", R"({"listen": ":2"})"},
              {"/etc/flag.json", R"({"listen": ":3"})"}};
  GatewayFlags flags;
  SUBCASE("fastfn.json in the current dir") {
    CHECK(gateway::load_gateway_config(flags, {}, kUid, fs.reader()).listen == ":1");
  }
  SUBCASE("FN_CONFIG over the current dir") {
    const auto c =
        gateway::load_gateway_config(flags, {{"FN_CONFIG", "/etc/env.json"}}, kUid, fs.reader());
    CHECK(c.listen == ":2");
    CHECK(c.config_file == "/etc/env.json");
  }
  SUBCASE("--config over FN_CONFIG") {
    flags.config_path = "/etc/flag.json";
    const auto c =
        gateway::load_gateway_config(flags, {{"FN_CONFIG", "/etc/env.json"}}, kUid, fs.reader());
    CHECK(c.listen == ":3");
    CHECK(fs.asked == std::vector<std::string>{"/etc/flag.json"});
  }
  SUBCASE("a missing --config is an error") {
    flags.config_path = "/nope.json";
    CHECK_THROWS_WITH_AS(gateway::load_gateway_config(flags, {}, kUid, fs.reader()),
                         "--config: cannot read file \"/nope.json\"", ConfigError);
  }
  SUBCASE("a missing FN_CONFIG is an error") {
    CHECK_THROWS_WITH_AS(
        gateway::load_gateway_config(flags, {{"FN_CONFIG", "/nope.json"}}, kUid, fs.reader()),
        "FN_CONFIG: cannot read file \"/nope.json\"", ConfigError);
  }
}

TEST_CASE("config: relative folders in a file are relative to the file") {
  FakeFiles fs;
  fs.files["/proj/fastfn.json"] = R"({"functions-dir": "fns", "socket-base-dir": "run"})";
  GatewayFlags flags;
  flags.config_path = "/proj/fastfn.json";
  const auto c = gateway::load_gateway_config(flags, {}, kUid, fs.reader());
  CHECK(c.functions_dir == "/proj/fns");
  CHECK(c.socket_base_dir == "/proj/run");
  SUBCASE("absolute values are kept") {
    fs.files["/proj/fastfn.json"] = R"({"functions-dir": "/abs/fns"})";
    CHECK(gateway::load_gateway_config(flags, {}, kUid, fs.reader()).functions_dir == "/abs/fns");
  }
  SUBCASE("env values stay relative to the current dir") {
    CHECK(gateway::load_gateway_config(flags, {{"FN_FUNCTIONS_ROOT", "x"}}, kUid, fs.reader())
              .functions_dir == "x");
  }
}

TEST_CASE("config: runtime daemons in both forms") {
  SUBCASE("file object") {
    const auto c = load({}, R"({"runtime-daemons": {"python": 3, "node": 2}})");
    CHECK(c.daemons_for("python") == 3);
    CHECK(c.daemons_for("node") == 2);
    CHECK(c.daemons_for("sh") == 1);
  }
  SUBCASE("file string") {
    const auto c = load({}, R"({"runtime-daemons": "python=3, node=2"})");
    CHECK(c.daemons_for("python") == 3);
    CHECK(c.daemons_for("node") == 2);
  }
  SUBCASE("env string") {
    const auto c = load({{"FN_RUNTIME_DAEMONS", "python=3,node=2"}});
    CHECK(c.daemons_for("python") == 3);
    CHECK(c.daemons_for("node") == 2);
  }
  SUBCASE("env JSON") {
    const auto c = load({{"FN_RUNTIME_DAEMONS", R"( {"sh": 64})"}});
    CHECK(c.daemons_for("sh") == 64);
  }
  SUBCASE("env overrides the file per runtime") {
    const auto c = load({{"FN_RUNTIME_DAEMONS", "node=4"}},
                        R"({"runtime-daemons": {"python": 3, "node": 2}})");
    CHECK(c.daemons_for("python") == 3);
    CHECK(c.daemons_for("node") == 4);
  }
}

TEST_CASE("config: runtime daemons errors name the source and key") {
  SUBCASE("the brief's example") {
    CHECK(error_of({}, R"({"runtime-daemons": "python=x"})") ==
          "fastfn.json: key \"runtime-daemons\": expected an object of runtime -> count (1..64) "
          "or a string \"python=3,node=2\", got \"python=x\"");
  }
  SUBCASE("zero") {
    CHECK(error_of({}, R"({"runtime-daemons": {"python": 0}})").find("runtime-daemons") !=
          std::string::npos);
  }
  SUBCASE("too many") {
    CHECK(error_of({{"FN_RUNTIME_DAEMONS", "python=65"}}) ==
          "FN_RUNTIME_DAEMONS: expected an object of runtime -> count (1..64) or a string "
          "\"python=3,node=2\", got \"python=65\"");
  }
  SUBCASE("negative, fraction, unknown runtime, no count") {
    for (const char* bad : {"python=-1", "python=1.5", "ruby=2", "python", "=3"}) {
      CAPTURE(bad);
      CHECK(error_of({{"FN_RUNTIME_DAEMONS", bad}}).starts_with("FN_RUNTIME_DAEMONS: expected"));
    }
  }
  SUBCASE("env JSON with a bad count") {
    CHECK(error_of({{"FN_RUNTIME_DAEMONS", R"({"python": "3"})"}})
              .starts_with("FN_RUNTIME_DAEMONS: expected an object"));
  }
  SUBCASE("env JSON that does not parse gives the offset") {
    CHECK(error_of({{"FN_RUNTIME_DAEMONS", R"({"python": })"}})
              .starts_with("FN_RUNTIME_DAEMONS: invalid JSON at offset 11: "));
  }
  SUBCASE("wrong type in the file") {
    CHECK(error_of({}, R"({"runtime-daemons": 3})")
              .starts_with("fastfn.json: key \"runtime-daemons\": expected an object"));
  }
}

TEST_CASE("config: runtimes order") {
  SUBCASE("file array") {
    CHECK(load({}, R"({"runtimes": ["node", "python"]})").runtimes ==
          std::vector<std::string>{"node", "python"});
  }
  SUBCASE("file string") {
    CHECK(load({}, R"({"runtimes": "sh,exec"})").runtimes ==
          std::vector<std::string>{"sh", "exec"});
  }
  SUBCASE("env replaces the file's list") {
    const auto c = load({{"FN_RUNTIMES", "node, sh"}}, R"({"runtimes": ["python"]})");
    CHECK(c.runtimes == std::vector<std::string>{"node", "sh"});
    CHECK_FALSE(c.runtime_rank("python").has_value());
  }
  SUBCASE("errors") {
    CHECK(error_of({{"FN_RUNTIMES", "python,ruby"}}) ==
          "FN_RUNTIMES: expected a list of distinct runtimes from python, node, php, lua, sh, exec, "
          "go (array or "
          "\"python,node\"), got \"python,ruby\"");
    CHECK(error_of({{"FN_RUNTIMES", "python,python"}}).starts_with("FN_RUNTIMES: expected"));
    CHECK(error_of({{"FN_RUNTIMES", " , "}}).starts_with("FN_RUNTIMES: expected"));
    CHECK(
        error_of({}, R"({"runtimes": []})").starts_with("fastfn.json: key \"runtimes\": expected"));
    CHECK(error_of({}, R"({"runtimes": [1]})")
              .starts_with("fastfn.json: key \"runtimes\": expected"));
  }
}

TEST_CASE("config: runtime binaries") {
  SUBCASE("file object over defaults") {
    const auto c = load({}, R"({"runtime-binaries": {"python": "python3.12"}})");
    CHECK(c.binary_for("python") == "python3.12");
    CHECK(c.binary_for("node") == "node");
  }
  SUBCASE("FN_<RUNTIME>_BIN over the file") {
    const auto c =
        load({{"FN_PYTHON_BIN", "/opt/py"}, {"FN_NODE_BIN", "node20"}, {"FN_SH_BIN", "dash"}},
             R"({"runtime-binaries": {"python": "python3.12"}})");
    CHECK(c.binary_for("python") == "/opt/py");
    CHECK(c.binary_for("node") == "node20");
    CHECK(c.binary_for("sh") == "dash");
    const auto php = load({{"FN_PHP_BIN", "php-cgi8.2"}, {"FN_LUA_BIN", "lua5.3"}});
    CHECK(php.binary_for("php") == "php-cgi8.2");
    CHECK(php.binary_for("lua") == "lua5.3");
    CHECK(load({}).binary_for("php") == "php-cgi");
    CHECK(load({}).binary_for("lua") == "lua5.4");
  }
  SUBCASE("FastFN's runtimes fastfn does not run are noted, not refused") {
    const auto c = load({}, R"({"runtime-binaries": {"python": "python3.12",
                                                    "openresty": "/usr/local/openresty/bin/openresty"}})");
    CHECK(c.binary_for("python") == "python3.12");
    REQUIRE(c.ignored.size() == 1);
    CHECK(c.ignored[0].starts_with("runtime-binaries.openresty is not taken: "));
    CHECK(load({}, R"({"runtime-binaries": {"python": "python3"}})").ignored.empty());
    CHECK(load({}, R"({"runtime-binaries": {"composer": "/opt/composer"}})").binary_for("composer") ==
          "/opt/composer");
    CHECK(load({{"FN_COMPOSER_BIN", "composer2"}}).binary_for("composer") == "composer2");
  }
  SUBCASE("cargo builds rust functions: FN_CARGO_BIN, or the key rust or FastFN's cargo") {
    CHECK(load({}).binary_for("rust") == "cargo");
    CHECK(load({{"FN_CARGO_BIN", "/opt/rust/bin/cargo"}}).binary_for("rust") == "/opt/rust/bin/cargo");
    CHECK(load({}, R"({"runtime-binaries": {"cargo": "cargo-1.80"}})").binary_for("rust") ==
          "cargo-1.80");
    CHECK(load({}, R"({"runtime-binaries": {"rust": "cargo-1.81"}})").binary_for("rust") ==
          "cargo-1.81");
  }
  SUBCASE("errors") {
    for (const char* bad : {R"({"exec": "x"})", R"({"ruby": "ruby"})", R"({"python": ""})",
                            R"({"python": 3})", R"("python3")"}) {
      CAPTURE(bad);
      CHECK(error_of({}, std::string(R"({"runtime-binaries": )") + bad + "}")
                .starts_with("fastfn.json: key \"runtime-binaries\": expected an object"));
    }
  }
}

TEST_CASE("config: runtime sockets") {
  SUBCASE("env JSON, string or array") {
    const auto c =
        load({{"FN_RUNTIME_SOCKETS",
               R"({"hello": ["unix:/a.sock", "tcp:10.0.0.5:8080"], "api/x": ":9000"})"}});
    CHECK(c.runtime_sockets.at("hello") ==
          std::vector<std::string>{"unix:/a.sock", "tcp:10.0.0.5:8080"});
    CHECK(c.runtime_sockets.at("api/x") == std::vector<std::string>{":9000"});
  }
  SUBCASE("file, merged with env per function") {
    const auto c = load({{"FN_RUNTIME_SOCKETS", R"({"b": "unix:/env.sock"})"}},
                        R"({"runtime-sockets": {"a": "unix:/a.sock", "b": "unix:/file.sock"}})");
    CHECK(c.runtime_sockets.at("a") == std::vector<std::string>{"unix:/a.sock"});
    CHECK(c.runtime_sockets.at("b") == std::vector<std::string>{"unix:/env.sock"});
  }
  SUBCASE("keyed by runtime, FastFN's form: that many watchdogs per function, not /python") {
    const auto c = load({{"FN_RUNTIME_SOCKETS",
                          R"({"python": ["unix:/tmp/py-1.sock", "unix:/tmp/py-2.sock"],
                              "node": "unix:/tmp/node.sock", "hello": "unix:/tmp/hello.sock",
                              "openresty": "unix:/tmp/or.sock"})"},
                         {"FN_RUNTIME_DAEMONS", "python=5,php=3"}});
    CHECK(c.daemons_for("python") == 2);  // the sockets win over the generated count, as in FastFN
    CHECK(c.daemons_for("node") == 1);
    CHECK(c.daemons_for("php") == 3);
    CHECK(c.runtime_sockets.size() == 1);  // only the function's
    CHECK(c.runtime_sockets.at("hello") == std::vector<std::string>{"unix:/tmp/hello.sock"});
    REQUIRE(c.ignored.size() == 3);
    CHECK(c.ignored[0].starts_with("runtime-sockets.python is FastFN's form (the sockets of its "
                                   "python daemons): fastfn runs 2 watchdogs per python function"));
    CHECK(c.ignored[1].starts_with("runtime-sockets.node is FastFN's form"));
    CHECK(c.ignored[2] == "runtime-sockets.openresty is not taken: fastfn has no openresty runtime");
  }
  SUBCASE("malformed addresses") {
    CHECK(error_of({{"FN_RUNTIME_SOCKETS", R"({"hello": "unix:rel.sock"})"}}) ==
          "FN_RUNTIME_SOCKETS: expected an address unix:/abs/path, tcp:HOST:PORT, HOST:PORT or "
          ":PORT, got \"unix:rel.sock\"");
    CHECK(error_of({}, R"({"runtime-sockets": {"hello": ["host:99999"]}})")
              .starts_with("fastfn.json: key \"runtime-sockets\": expected an address"));
  }
  SUBCASE("bad shapes") {
    CHECK(error_of({{"FN_RUNTIME_SOCKETS", R"({"hello": []})"}})
              .starts_with("FN_RUNTIME_SOCKETS: expected an object"));
    CHECK(error_of({{"FN_RUNTIME_SOCKETS", R"(["unix:/a"])"}}) ==
          "FN_RUNTIME_SOCKETS: expected a JSON object at the top level");
    CHECK(error_of({{"FN_RUNTIME_SOCKETS", "unix:/a.sock"}})
              .starts_with("FN_RUNTIME_SOCKETS: invalid JSON at offset 0"));
    CHECK(error_of({{"FN_RUNTIME_SOCKETS", R"({"../x": "unix:/a"})"}}) ==
          "FN_RUNTIME_SOCKETS: expected function names such as \"hello\" or \"api/users\", got "
          "\"../x\"");
  }
}

TEST_CASE("config: health interval") {
  SUBCASE("file number is milliseconds") {
    CHECK(load({}, R"({"health-interval": 250})").health_interval.count() == 250);
  }
  SUBCASE("file duration strings") {
    CHECK(load({}, R"({"health-interval": "1s"})").health_interval.count() == 1000);
    CHECK(load({}, R"({"health-interval": "250ms"})").health_interval.count() == 250);
    CHECK(load({}, R"({"health-interval": "2m"})").health_interval.count() == 120000);
    CHECK(load({}, R"({"health-interval": "2"})").health_interval.count() == 2000);
  }
  SUBCASE("env over file") {
    CHECK(load({{"FN_HEALTH_INTERVAL", "3"}}, R"({"health-interval": 250})")
              .health_interval.count() == 3000);
  }
  SUBCASE("errors") {
    CHECK(error_of({{"FN_HEALTH_INTERVAL", "soon"}}).starts_with("FN_HEALTH_INTERVAL: expected"));
    CHECK(error_of({{"FN_HEALTH_INTERVAL", "5ms"}}).starts_with("FN_HEALTH_INTERVAL: expected"));
    CHECK(error_of({{"FN_HEALTH_INTERVAL", "2h"}}).starts_with("FN_HEALTH_INTERVAL: expected"));
    CHECK(error_of({}, R"({"health-interval": 0})")
              .starts_with("fastfn.json: key \"health-interval\": expected"));
    CHECK(error_of({}, R"({"health-interval": 1.5})")
              .starts_with("fastfn.json: key \"health-interval\": expected"));
    CHECK(error_of({}, R"({"health-interval": 99999999999999})")
              .starts_with("fastfn.json: key \"health-interval\": expected"));
  }
}

TEST_CASE("config: min-warm and idle-ttl") {
  SUBCASE("defaults: every function warm, idle-ttl 300 s") {
    CHECK(load({}).min_warm == 1u);
    CHECK(load({}).idle_ttl == std::chrono::seconds(300));
  }
  SUBCASE("file, and env over file") {
    const auto file = load({}, R"({"min-warm": 0, "idle-ttl": "5m"})");
    CHECK(file.min_warm == 0u);
    CHECK(file.idle_ttl == std::chrono::minutes(5));
    CHECK(load({}, R"({"idle-ttl": 90})").idle_ttl == std::chrono::seconds(90));
    const auto env = load({{"FN_MIN_WARM", "2"}, {"FN_IDLE_TTL", "30"}}, R"({"min-warm": 0})");
    CHECK(env.min_warm == 2u);
    CHECK(env.idle_ttl == std::chrono::seconds(30));
  }
  SUBCASE("errors") {
    for (const char* bad : {"some", "-1", "65", "1.5", ""})
      if (*bad) CHECK(error_of({{"FN_MIN_WARM", bad}}).starts_with("FN_MIN_WARM: expected"));
    for (const char* bad : {"soon", "0", "500ms", "25h"})
      CHECK(error_of({{"FN_IDLE_TTL", bad}}).starts_with("FN_IDLE_TTL: expected"));
    CHECK(error_of({}, R"({"min-warm": "0"})").starts_with("fastfn.json: key \"min-warm\": expected"));
    CHECK(error_of({}, R"({"idle-ttl": 0})").starts_with("fastfn.json: key \"idle-ttl\": expected"));
    CHECK(error_of({}, R"({"idle-ttl": 86401})").starts_with("fastfn.json: key \"idle-ttl\": expected"));
  }
}

TEST_CASE("config: file errors name the file and key") {
  SUBCASE("unknown key") {
    CHECK(error_of({}, R"({"listen": ":1", "domains": []})")
              .starts_with("fastfn.json: unknown key \"domains\" (known keys: "));
  }
  SUBCASE("bad JSON with its offset") {
    CHECK(error_of({}, R"({"listen": ":1",})") ==
          "fastfn.json: invalid JSON at offset 16: Missing a name for object member.");
  }
  SUBCASE("not an object") {
    CHECK(error_of({}, "[]") == "fastfn.json: expected a JSON object at the top level");
  }
  SUBCASE("wrong types") {
    CHECK(error_of({}, R"({"functions-dir": 3})") ==
          "fastfn.json: key \"functions-dir\": expected a non-empty folder path, got 3");
    CHECK(
        error_of({}, R"({"functions-dir": ""})").starts_with("fastfn.json: key \"functions-dir\""));
    CHECK(error_of({}, R"({"listen": 8080})") ==
          "fastfn.json: key \"listen\": expected a string, got 8080");
    CHECK(error_of({}, R"({"socket-base-dir": null})")
              .starts_with("fastfn.json: key \"socket-base-dir\""));
  }
  SUBCASE("malformed listen addresses") {
    CHECK(error_of({}, R"({"listen": "localhost"})") ==
          "fastfn.json: key \"listen\": expected an address unix:/abs/path, tcp:HOST:PORT, "
          "HOST:PORT or :PORT, got \"localhost\"");
    CHECK(error_of({{"FN_LISTEN", "1.2.3.4:0"}}).starts_with("FN_LISTEN: expected an address"));
    GatewayFlags flags;
    flags.listen = "tcp:";
    CHECK(error_of({}, "", flags).starts_with("--listen: expected an address"));
  }
  SUBCASE("an empty FUNCTIONS_DIR argument") {
    GatewayFlags flags;
    flags.functions_dir = "";
    CHECK(error_of({}, "", flags).starts_with("FUNCTIONS_DIR: expected a folder path"));
  }
}

TEST_CASE("config: address forms") {
  for (const char* good :
       {"unix:/tmp/a.sock", "tcp:127.0.0.1:8080", "127.0.0.1:8080", ":8080", "tcp::80",
        "localhost:65535", "[::1]:8080", "tcp:[fe80::1]:1", "my-host.example_1:22"}) {
    CAPTURE(good);
    CHECK(gateway::is_valid_address(good));
  }
  for (const char* bad :
       {"", "unix:", "unix:/", "unix:rel.sock", "8080", "host:", "host:0", "host:65536", "host:80x",
        "::1:8080", "ho st:80", "tcp:host", "[]:80", "host:123456"}) {
    CAPTURE(bad);
    CHECK_FALSE(gateway::is_valid_address(bad));
  }
  CHECK_FALSE(gateway::is_valid_address("unix:/" + std::string(107, 'a')));
}

TEST_CASE("config: durations are common::parse_duration's, as the watchdog reads them") {
  CHECK(load({{"FN_HEALTH_INTERVAL", "1.5s"}}).health_interval.count() == 1500);
  CHECK(load({{"FN_HEALTH_INTERVAL", "1m30s"}}).health_interval.count() == 90'000);
  CHECK(load({}, R"({"health-interval": "2s500ms"})").health_interval.count() == 2500);
  CHECK(error_of({{"FN_HEALTH_INTERVAL", "1 s"}}).starts_with("FN_HEALTH_INTERVAL: expected"));
}

TEST_CASE("config: environment_from splits at the first '='") {
  char a[] = "A=1";
  char b[] = "B=x=y";
  char c[] = "NOEQUALS";
  char* envp[] = {a, b, c, nullptr};
  const Environment env = gateway::environment_from(envp);
  CHECK(env == Environment{{"A", "1"}, {"B", "x=y"}});
  CHECK(gateway::environment_from(nullptr).empty());
}
