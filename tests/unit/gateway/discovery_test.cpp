#include "gateway/discovery.h"

#include <doctest/doctest.h>
#include <stdlib.h>

#include <algorithm>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <map>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using gateway::DiscoveryResult;
using gateway::FunctionSpec;
using gateway::GatewayConfig;

// A functions dir in a fresh temp folder, removed at the end of the test.
class TempTree {
 public:
  TempTree() {
    std::string pattern = (fs::temp_directory_path() / "fastfn-discovery-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    base_ = pattern;
    fs::create_directories(root());
    config.functions_dir = root().string();
  }
  ~TempTree() {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }
  TempTree(const TempTree&) = delete;
  TempTree& operator=(const TempTree&) = delete;

  fs::path root() const { return base_ / "functions"; }

  void write(const std::string& rel, const std::string& content, bool executable = false) const {
    const fs::path path = root() / rel;
    fs::create_directories(path.parent_path());
    std::ofstream(path, std::ios::binary | std::ios::trunc) << content;
    if (executable) fs::permissions(path, fs::perms::owner_exec, fs::perm_options::add);
  }

  DiscoveryResult discover() const { return gateway::discover(config); }

  GatewayConfig config;

 private:
  fs::path base_;
};

std::vector<std::string> names(const DiscoveryResult& r) {
  std::vector<std::string> out;
  for (const auto& f : r.functions) out.push_back(f.name);
  return out;
}

const FunctionSpec& find(const DiscoveryResult& r, const std::string& name) {
  const auto it = std::find_if(r.functions.begin(), r.functions.end(),
                               [&](const FunctionSpec& f) { return f.name == name; });
  REQUIRE_MESSAGE(it != r.functions.end(), "no function " << name);
  return *it;
}

bool has_problem(const DiscoveryResult& r, const std::string& text) {
  return std::any_of(r.problems.begin(), r.problems.end(),
                     [&](const std::string& p) { return p.find(text) != std::string::npos; });
}

using Argv = std::vector<std::string>;

}  // namespace

TEST_CASE("discovery: each handler kind") {
  TempTree t;
  t.write("py/handler.py", "print('hi')\n");
  t.write("js/handler.js", "");
  t.write("mjs/handler.mjs", "");
  t.write("shell/handler.sh", "echo hi\n");
  t.write("bin/handler", "#!/bin/sh\necho hi\n", true);
  t.write("notexec/handler", "#!/bin/sh\n");
  const auto r = t.discover();
  CHECK(names(r) == Argv{"bin", "js", "mjs", "py", "shell"});
  const auto& py = find(r, "py");
  CHECK(py.runtime == "python");
  CHECK(py.command == Argv{"python3", "handler.py"});
  CHECK(py.routes == Argv{"/py"});
  CHECK(py.dir == t.root() / "py");
  CHECK(py.workdir == py.dir);
  CHECK(py.dir.is_absolute());
  CHECK(py.format == gateway::Format::kCgi);
  CHECK(py.daemons == 1);
  CHECK_FALSE(py.worker_pool.enabled);
  CHECK_FALSE(py.remote);
  CHECK(find(r, "js").command == Argv{"node", "handler.js"});
  CHECK(find(r, "mjs").command == Argv{"node", "handler.mjs"});
  CHECK(find(r, "shell").command == Argv{"sh", "handler.sh"});
  CHECK(find(r, "shell").runtime == "sh");
  CHECK(find(r, "bin").command == Argv{"./handler"});
  CHECK(find(r, "bin").runtime == "exec");
  CHECK(has_problem(r, "notexec/handler: not executable, ignored"));
}

TEST_CASE("discovery: binaries and daemons come from the gateway config") {
  TempTree t;
  t.write("a/handler.py", "");
  t.write("b/handler.js", "");
  t.write("c/handler.js", "");
  t.write("c/fn.config.json", R"({"daemons": 5})");
  t.config.runtime_binaries["python"] = "python3.12";
  t.config.runtime_daemons["node"] = 3;
  const auto r = t.discover();
  CHECK(find(r, "a").command == Argv{"python3.12", "handler.py"});
  CHECK(find(r, "a").daemons == 1);
  CHECK(find(r, "b").daemons == 3);
  CHECK(find(r, "c").daemons == 5);
}

TEST_CASE("discovery: nested functions each get their own route") {
  TempTree t;
  t.write("api/handler.js", "");
  t.write("api/users/handler.py", "");
  t.write("api/users/admin/deep/handler.sh", "");
  t.write("api/empty/README.md", "");
  const auto r = t.discover();
  CHECK(names(r) == Argv{"api", "api/users", "api/users/admin/deep"});
  CHECK(find(r, "api").routes == Argv{"/api"});
  CHECK(find(r, "api/users").routes == Argv{"/api/users"});
  CHECK(find(r, "api/users/admin/deep").routes == Argv{"/api/users/admin/deep"});
  CHECK(r.problems.empty());
}

TEST_CASE("discovery: private, hidden, dependency and asset folders are not walked") {
  TempTree t;
  t.write(".git/handler.py", "");
  t.write(".hidden/sub/handler.py", "");
  t.write("_shared/handler.py", "");
  t.write("_shared/sub/handler.py", "");
  t.write("node_modules/pkg/handler.js", "");
  t.write("web/node_modules/pkg/handler.js", "");
  t.write("web/__pycache__/handler.py", "");
  t.write("web/handler.js", "");
  t.write("public/handler.py", "");
  t.write("public/sub/handler.py", "");
  SUBCASE("without assets, public is a function") {
    CHECK(names(t.discover()) == Argv{"public", "public/sub", "web"});
  }
  SUBCASE("the assets dir is excluded") {
    t.write("fn.config.json", R"({"assets": {"dir": "public/", "run_worker_first": true}})");
    const auto r = t.discover();
    CHECK(names(r) == Argv{"web"});
    REQUIRE(r.assets.has_value());
    CHECK(r.assets->dir == (t.root() / "public").string());
    CHECK(r.assets->run_worker_first);
    CHECK(r.problems.empty());
  }
  SUBCASE("a missing assets dir is reported, not fatal") {
    t.write("fn.config.json", R"({"assets": {"dir": "dist"}})");
    const auto r = t.discover();
    REQUIRE(r.assets.has_value());
    CHECK(has_problem(r, "assets dir"));
    CHECK(names(r).size() == 3);
  }
  SUBCASE("a broken root config is reported, the functions remain") {
    t.write("fn.config.json", R"({"assets": {"dir": "../etc"}})");
    const auto r = t.discover();
    CHECK_FALSE(r.assets.has_value());
    CHECK(has_problem(r, "fn.config.json: key \"assets.dir\": expected"));
    CHECK(names(r).size() == 3);
  }
}

TEST_CASE("discovery: two handlers in one folder, the runtimes order decides") {
  TempTree t;
  t.write("hello/handler.py", "");
  t.write("hello/handler.js", "");
  SUBCASE("default order: python") {
    const auto r = t.discover();
    CHECK(find(r, "hello").runtime == "python");
    CHECK(r.problems ==
          Argv{"route /hello: python function \"hello\" wins over node (FN_RUNTIMES order)"});
  }
  SUBCASE("node first") {
    t.config.runtimes = {"node", "python"};
    const auto r = t.discover();
    CHECK(find(r, "hello").runtime == "node");
    CHECK(r.problems ==
          Argv{"route /hello: node function \"hello\" wins over python (FN_RUNTIMES order)"});
  }
  SUBCASE("fn.config.json's runtime chooses") {
    t.write("hello/fn.config.json", R"({"runtime": "node"})");
    const auto r = t.discover();
    CHECK(find(r, "hello").runtime == "node");
    CHECK(r.problems.empty());
  }
  SUBCASE("a runtime with no handler in the folder: listed broken, with the reason") {
    t.write("hello/fn.config.json", R"({"runtime": "sh"})");
    const auto r = t.discover();
    REQUIRE(names(r) == Argv{"hello"});
    CHECK(find(r, "hello").broken.ends_with(
        "key \"runtime\": \"sh\" but the folder has no handler for it"));
    CHECK(find(r, "hello").routes == Argv{"/hello"});
    CHECK(has_problem(r, "key \"runtime\": \"sh\" but the folder has no handler for it"));
  }
  SUBCASE("a disabled runtime leaves the other") {
    t.config.runtimes = {"node"};
    const auto r = t.discover();
    CHECK(find(r, "hello").runtime == "node");
    CHECK(r.problems == Argv{"function \"hello\": runtime python is disabled (not in FN_RUNTIMES), "
                             "skipped"});
  }
}

TEST_CASE("discovery: two functions claiming one route") {
  TempTree t;
  t.write("a/handler.js", "");
  t.write("a/fn.config.json", R"({"routes": ["/shared", "/a"]})");
  t.write("b/handler.py", "");
  t.write("b/fn.config.json", R"({"routes": ["/shared"]})");
  SUBCASE("the runtimes order decides") {
    const auto r = t.discover();
    CHECK(find(r, "b").routes == Argv{"/shared"});
    CHECK(find(r, "a").routes == Argv{"/a"});
    CHECK(r.problems == Argv{"route /shared: python function \"b\" wins over node function \"a\" "
                             "(FN_RUNTIMES order)"});
  }
  SUBCASE("same runtime: first by name; a function with no route left is dropped") {
    t.write("a/handler.py", "");
    t.write("a/fn.config.json", R"({"routes": ["/shared"], "runtime": "python"})");
    const auto r = t.discover();
    CHECK(names(r) == Argv{"a"});
    CHECK(r.problems == Argv{"route /shared: python function \"a\" wins over python function \"b\" "
                             "(same runtime: first by name)",
                             "function \"b\": no route left, skipped"});
  }
  SUBCASE("a config route against a folder's default route") {
    t.write("shared/handler.sh", "");
    const auto r = t.discover();
    CHECK(names(r) == Argv{"a", "b"});
    CHECK(find(r, "b").routes == Argv{"/shared"});
    CHECK(has_problem(r, "function \"shared\": no route left, skipped"));
  }
}

TEST_CASE("discovery: a disabled runtime's functions are skipped") {
  TempTree t;
  t.write("a/handler.py", "");
  t.write("b/handler.sh", "");
  t.write("c/handler", "", true);
  t.config.runtimes = {"python"};
  const auto r = t.discover();
  CHECK(names(r) == Argv{"a"});
  CHECK(r.problems ==
        Argv{"function \"b\": runtime sh is disabled (not in FN_RUNTIMES), skipped",
             "function \"c\": runtime exec is disabled (not in FN_RUNTIMES), skipped"});
}

TEST_CASE("discovery: an invalid fn.config.json makes that function broken, and only it") {
  TempTree t;
  t.write("good/handler.py", "");
  t.write("bad/handler.py", "");
  t.write("bad/fn.config.json", R"({"timeout_ms": "abc"})");
  t.write("bad/child/handler.py", "");
  t.write("broken/handler.py", "");
  t.write("broken/fn.config.json", "{");
  const auto r = t.discover();
  CHECK(names(r) == Argv{"bad", "bad/child", "broken", "good"});
  const std::string dir = t.config.functions_dir;
  const std::string bad = dir + "/bad/fn.config.json: key \"timeout_ms\": expected a non-negative "
                          "integer, got \"abc\"";
  const std::string json = dir + "/broken/fn.config.json: invalid JSON at offset 1: Missing a name "
                           "for object member.";
  CHECK(r.problems == Argv{bad + " (function not ready until fixed)",
                           json + " (function not ready until fixed)"});
  CHECK(find(r, "bad").broken == bad);
  CHECK(find(r, "bad").command.empty());  // nothing is started for it
  CHECK(find(r, "broken").broken == json);
  CHECK(find(r, "good").broken.empty());
  CHECK(find(r, "bad/child").broken.empty());
}

TEST_CASE("discovery: php and lua handlers, php run as php-cgi wants") {
  TempTree t;
  t.write("page/handler.php", "<?php echo 'hi';\n");
  t.write("script/handler.lua", "io.write('hi')\n");
  t.write("hotphp/handler.php", "<?php\n");
  t.write("hotphp/fn.config.json", R"({"format": "http", "command": ["php", "serve.php"]})");
  const auto r = t.discover();
  const auto& php = find(r, "page");
  CHECK(php.runtime == "php");
  CHECK(php.command == Argv{"php-cgi", "handler.php"});
  CHECK(php.format == gateway::Format::kCgi);
  CHECK(php.cgi_headers);
  CHECK(php.env.at("SCRIPT_FILENAME") == (t.root() / "page" / "handler.php").string());
  CHECK(php.env.at("REDIRECT_STATUS") == "200");
  const auto& lua = find(r, "script");
  CHECK(lua.runtime == "lua");
  CHECK(lua.command == Argv{"lua5.4", "handler.lua"});
  CHECK_FALSE(lua.cgi_headers);
  // A command of its own is not php-cgi: nothing of php-cgi's is added.
  CHECK(find(r, "hotphp").env.empty());
  CHECK_FALSE(find(r, "hotphp").cgi_headers);
}

TEST_CASE("discovery: FastFN's handler(event) runs hot through the shim") {
  TempTree t;
  t.config.shims_dir = "/opt/fastfn/shims";
  t.write("event/handler.py", "def handler(event):\n    return 'hi'\n");
  t.write("named/handler.js", "console.log('x');\n");
  t.write("named/fn.config.json", R"({"invoke": {"handler": "answer"}})");
  t.write("cgi/handler.py", "print('hi')\n");
  t.write("forced/handler.py", "def handler(event):\n    return 'hi'\n");
  t.write("forced/fn.config.json", R"({"format": "cgi"})");
  t.write("stdio/handler.py", "from fastfn_http import serve\nserve(print)\n");
  t.write("shell/handler.sh", "echo hi\n");
  t.write("shell/fn.config.json", R"({"invoke": {"handler": "main"}})");
  const auto r = t.discover();
  const auto& event = find(r, "event");
  CHECK(event.event_contract);
  CHECK(event.format == gateway::Format::kHttp);
  CHECK(event.command ==
        Argv{"python3", "/opt/fastfn/shims/python/fastfn_event.py", "handler.py", "handler"});
  CHECK(event.env.at("FN_FUNCTION_NAME") == "event");
  CHECK(find(r, "named").command ==
        Argv{"node", "/opt/fastfn/shims/node/fastfn_event.js", "handler.js", "answer"});
  CHECK_FALSE(find(r, "cgi").event_contract);
  CHECK(find(r, "cgi").format == gateway::Format::kCgi);
  CHECK_FALSE(find(r, "forced").event_contract);  // the format wins
  CHECK(find(r, "forced").format == gateway::Format::kCgi);
  CHECK(find(r, "stdio").format == gateway::Format::kHttp);
  CHECK(find(r, "stdio").command == Argv{"python3", "handler.py"});
  CHECK(find(r, "shell").broken.find("\"invoke.handler\": expected a python or node handler") !=
        std::string::npos);
  // Without the shims, a FastFN handler cannot run: broken with the reason, not run as CGI.
  t.config.shims_dir.clear();
  CHECK(find(t.discover(), "event").broken.find("FN_SHIMS_DIR") != std::string::npos);
}

TEST_CASE("discovery: FastFN's file routes, a function per route file of a folder with no handler") {
  TempTree t;
  t.config.shims_dir = "/opt/fastfn/shims";
  const std::string handler = "def handler(event):\n    return 'hi'\n";
  t.write("orders/get.py", handler);
  t.write("orders/post.py", handler);
  t.write("orders/[id]/get.py", "def handler(event, id):\n    return id\n");
  t.write("orders/_shared.py", handler);                  // private, by its name
  t.write("orders/models.py", "ROWS = []\n");             // a helper module, not a route
  t.write("orders/put.py", "print('a script')\n");        // named as a route, defines none
  t.write("orders/get.post.x.py", handler);               // two methods
  t.write("blog/[...slug].js", "exports.handler = async (event) => 'x';\n");
  t.write("policy/get.py", handler);
  t.write("policy/fn.config.json", R"({"timeout_ms": 1234})");
  t.write("shop/handler.py", handler);                    // a function: its files are its own
  t.write("shop/get.extra.py", handler);
  t.write("shop/admin/get.health.py", handler);           // file routes below a function
  const auto r = t.discover();
  CHECK(names(r) == std::vector<std::string>{"blog/:slug*", "orders/:id/get", "orders/get",
                                             "orders/post", "policy/get", "shop",
                                             "shop/admin/get.health"});
  const auto& get = find(r, "orders/get");
  CHECK(get.file_route);
  CHECK(get.routes == std::vector<std::string>{"/orders"});
  CHECK(get.methods == std::vector<std::string>{"GET"});
  CHECK(get.event_contract);
  CHECK(get.command ==
        Argv{"python3", "/opt/fastfn/shims/python/fastfn_event.py", "get.py", "handler"});
  CHECK(get.workdir == t.root() / "orders");
  CHECK(find(r, "orders/post").methods == std::vector<std::string>{"POST"});
  CHECK(find(r, "orders/:id/get").routes == std::vector<std::string>{"/orders/:id"});
  CHECK(find(r, "orders/:id/get").workdir == t.root() / "orders" / "[id]");
  CHECK(find(r, "blog/:slug*").routes == std::vector<std::string>{"/blog/:slug*"});
  CHECK(find(r, "blog/:slug*").methods.empty());
  CHECK(find(r, "blog/:slug*").runtime == "node");
  CHECK(find(r, "policy/get").timeout_ms == 1234u);
  CHECK(find(r, "shop/admin/get.health").routes ==
        std::vector<std::string>{"/shop/admin/health"});
  CHECK(has_problem(r, "orders/put.py: named as a file route but defines no handler(event)"));
  CHECK(has_problem(r, "orders/get.post.x.py: not a file route: more than one method"));
  // get.py and post.py share /orders for different methods: no conflict.
  CHECK_FALSE(has_problem(r, "route /orders:"));
}

TEST_CASE("discovery: dependencies not installed yet make the function installing") {
  TempTree t;
  t.write("py/handler.py", "import requests\n");
  t.write("py/requirements.txt", "requests\n");
  t.write("js/handler.js", "");
  t.write("js/package.json", "{}");
  t.write("app/handler.js", "");
  t.write("app/package.json", "{}");
  t.write("app/fn.config.json", R"({"command": ["node", "app.js"]})");
  auto r = t.discover();
  CHECK(find(r, "py").installing);
  CHECK(find(r, "py").broken == "installing its dependencies (requirements.txt)");
  CHECK(find(r, "js").installing);
  CHECK_FALSE(find(r, "app").installing);  // a command of its own manages its own
  REQUIRE(r.installs.size() == 2);
  CHECK(r.installs[0].function == "js");
  CHECK(r.installs[1].function == "py");
  t.write("gomod/go.mod", "module x\n");
  t.write("gomod/main.go", "package main\n");
  t.write("built/go.mod", "module x\n");
  t.write("built/handler", "#!/bin/sh\n", true);
  const auto go = t.discover();
  CHECK(find(go, "gomod").runtime == "go");
  CHECK(find(go, "gomod").format == gateway::Format::kServer);
  const auto program = t.root() / "gomod" / ".fastfn" / "go" / "handler";
  CHECK(find(go, "gomod").command == Argv{program.string()});
  CHECK(find(go, "gomod").broken == "building it (go build)");
  CHECK(find(go, "built").runtime == "exec");  // exec before go: the program built beside it runs
  // Once the installer wrote its stamp, the function is ready, with the packages on its path.
  const std::string before = find(r, "py").fingerprint;
  t.write("py/.fastfn/deps.ok", r.installs[1].hash + "\n");
  r = t.discover();
  CHECK_FALSE(find(r, "py").installing);
  CHECK(find(r, "py").broken.empty());
  CHECK(find(r, "py").env.at("PYTHONPATH") == (t.root() / "py" / ".fastfn" / "python").string());
  CHECK(find(r, "py").fingerprint != before);
  CHECK(r.installs.size() == 2);  // js, and the go module since
}

TEST_CASE("discovery: a folder whose only handler no runtime runs is listed broken") {
  TempTree t;
  t.write("ruby/handler.rb", "");
  t.write("notes/readme.txt", "");
  t.write("conf/fn.config.json", R"({"timeout_ms": 1})");
  const auto r = t.discover();
  CHECK(names(r) == Argv{"conf", "ruby"});
  CHECK(find(r, "ruby").broken.find("handler.rb: no runtime runs it") != std::string::npos);
  CHECK(find(r, "conf").broken.ends_with("no handler file and no \"command\""));
}

TEST_CASE("discovery: a broken function never takes a route from one that runs") {
  TempTree t;
  t.write("a/handler.py", "");
  t.write("a/fn.config.json", R"({"routes": ["/b"]})");
  t.write("b/handler.py", "");
  t.write("b/fn.config.json", R"({"nope": 1})");
  const auto r = t.discover();
  CHECK(find(r, "a").routes == Argv{"/b"});
  CHECK(names(r) == Argv{"a"});  // b lost its only route
}

TEST_CASE("discovery: problems show the functions dir as configured") {
  TempTree t;
  t.write("bad/handler.py", "");
  t.write("bad/fn.config.json", R"({"nope": 1})");
  const fs::path cwd = fs::current_path();
  fs::current_path(t.root().parent_path());
  t.config.functions_dir = "./functions";
  const auto r = t.discover();
  fs::current_path(cwd);
  REQUIRE(r.problems.size() == 1);
  CHECK(r.problems[0].starts_with("functions/bad/fn.config.json: unknown key \"nope\""));
}

TEST_CASE("discovery: fn.config.json settings reach the spec") {
  TempTree t;
  t.write("tool/fn.config.json", R"({"command": ["./bin/run", "--flag"], "format": "http",
      "methods": ["post"], "timeout_ms": 100, "max_body_bytes": 5, "min_instances": 1,
      "max_instances": 2, "max_requests": 3, "idle_timeout_ms": 4, "env": {"A": "1"},
      "worker_pool": {"max_workers": 2}, "include_debug_headers": true, "routes": ["/t/"]})");
  t.write("tool/bin/run", "#!/bin/sh\n", true);
  t.write("wrapped/fn.config.json", R"({"command": ["python3", "app.py"], "runtime": "python"})");
  t.write("nothing/fn.config.json", R"({"timeout_ms": 1})");
  const auto r = t.discover();
  CHECK(names(r) == Argv{"nothing", "tool", "wrapped"});
  CHECK_FALSE(find(r, "nothing").broken.empty());
  const auto& tool = find(r, "tool");
  CHECK(tool.runtime == "exec");
  CHECK(tool.command == Argv{(t.root() / "tool/bin/run").string(), "--flag"});
  CHECK(tool.format == gateway::Format::kHttp);
  CHECK(tool.methods == Argv{"POST"});
  CHECK(tool.routes == Argv{"/t"});
  CHECK(tool.timeout_ms == 100u);
  CHECK(tool.max_body_bytes == 5u);
  CHECK(tool.min_instances == 1u);
  CHECK(tool.max_instances == 2u);
  CHECK(tool.max_requests == 3u);
  CHECK(tool.idle_timeout_ms == 4u);
  CHECK(tool.env.at("A") == "1");
  CHECK(tool.worker_pool.enabled);
  CHECK(tool.worker_pool.max_workers == 2u);
  CHECK(tool.worker_pool.overflow_status == 429);
  CHECK(tool.include_debug_headers);
  CHECK(find(r, "wrapped").runtime == "python");
  CHECK(find(r, "wrapped").command == Argv{"python3", "app.py"});
  CHECK(has_problem(r, "nothing/fn.config.json: no handler file and no \"command\""));
}

TEST_CASE("discovery: start on demand from min-warm and worker_pool") {
  TempTree t;
  t.write("plain/handler.py", "");
  t.write("warm/handler.py", "");
  t.write("warm/fn.config.json", R"({"worker_pool": {"min_warm": 1}})");
  t.write("lazy/handler.py", "");
  t.write("lazy/fn.config.json", R"({"worker_pool": {"min_warm": 0, "idle_ttl_seconds": 7}})");
  SUBCASE("the gateway keeps functions warm by default") {
    const auto r = t.discover();
    CHECK_FALSE(find(r, "plain").on_demand);
    CHECK(find(r, "plain").idle_ttl == std::chrono::seconds(300));
    CHECK_FALSE(find(r, "warm").on_demand);
    CHECK(find(r, "lazy").on_demand);
    CHECK(find(r, "lazy").idle_ttl == std::chrono::seconds(7));
  }
  SUBCASE("min-warm 0 makes every function on demand but those that say otherwise") {
    t.config.min_warm = 0;
    t.config.idle_ttl = std::chrono::seconds(20);
    const auto r = t.discover();
    CHECK(find(r, "plain").on_demand);
    CHECK(find(r, "plain").idle_ttl == std::chrono::seconds(20));
    CHECK_FALSE(find(r, "warm").on_demand);
    CHECK(find(r, "lazy").idle_ttl == std::chrono::seconds(7));
  }
  SUBCASE("external sockets are never started, so never on demand") {
    t.config.min_warm = 0;
    t.config.runtime_sockets = {{"plain", {"unix:/a.sock"}}};
    CHECK_FALSE(find(t.discover(), "plain").on_demand);
  }
  SUBCASE("changing it restarts the function (its fingerprint changes)") {
    const auto before = find(t.discover(), "plain").fingerprint;
    t.config.min_warm = 0;
    CHECK(find(t.discover(), "plain").fingerprint != before);
  }
}

TEST_CASE("discovery: reserved routes are refused") {
  TempTree t;
  t.write("x/handler.py", "");
  t.write("x/fn.config.json", R"({"routes": ["/_fn/health", "/x", "/console", "/_"]})");
  t.write("y/handler.py", "");
  t.write("y/fn.config.json", R"({"routes": ["/_/health"]})");
  t.write("console/handler.py", "");
  t.write("_fnord/handler.py", "");
  const auto r = t.discover();
  CHECK(names(r) == Argv{"x"});
  CHECK(find(r, "x").routes == Argv{"/x"});
  CHECK(has_problem(
      r, "function \"x\": route /_fn/health is reserved (/_fn, /_/, /console), refused"));
  CHECK(has_problem(r, "function \"x\": route /console is reserved"));
  CHECK(has_problem(r, "function \"x\": route /_ is reserved"));
  CHECK(has_problem(r, "function \"y\": route /_/health is reserved"));
  CHECK(has_problem(r, "function \"y\": no route left, skipped"));
  CHECK(has_problem(r, "function \"console\": route /console is reserved"));
}

TEST_CASE("discovery: runtime sockets") {
  TempTree t;
  t.write("hello/handler.py", "");
  t.write("other/handler.py", "");
  t.config.runtime_sockets = {{"hello", {"unix:/a.sock", "tcp:10.0.0.5:8080"}},
                              {"remote/fn", {"tcp:10.0.0.6:80"}}};
  const auto r = t.discover();
  CHECK(names(r) == Argv{"hello", "other", "remote/fn"});
  const auto& hello = find(r, "hello");
  CHECK(hello.runtime == "python");
  CHECK_FALSE(hello.remote);
  CHECK(hello.external_sockets == Argv{"unix:/a.sock", "tcp:10.0.0.5:8080"});
  CHECK(hello.daemons == 2);
  CHECK(find(r, "other").external_sockets.empty());
  const auto& remote = find(r, "remote/fn");
  CHECK(remote.remote);
  CHECK(remote.runtime == "remote");
  CHECK(remote.routes == Argv{"/remote/fn"});
  CHECK(remote.command.empty());
  CHECK(remote.dir.empty());
  CHECK(remote.external_sockets == Argv{"tcp:10.0.0.6:80"});
  CHECK_FALSE(remote.fingerprint.empty());
}

TEST_CASE("discovery: a remote-only function wins its route") {
  TempTree t;
  t.write("a/handler.py", "");
  t.write("a/fn.config.json", R"({"routes": ["/r"]})");
  t.config.runtime_sockets = {{"r", {"unix:/r.sock"}}};
  const auto r = t.discover();
  CHECK(names(r) == Argv{"r"});
  CHECK(has_problem(r,
                    "route /r: remote function \"r\" wins over python function \"a\" "
                    "(explicit runtime-sockets)"));
}

TEST_CASE("discovery: fingerprints change when a function changes") {
  TempTree t;
  t.write("hello/handler.py", "print(1)\n");
  t.write("cfg/handler.sh", "");
  t.write("cfg/fn.config.json", R"({"timeout_ms": 1})");
  const auto first = t.discover();
  const std::string hello = find(first, "hello").fingerprint;
  const std::string cfg = find(first, "cfg").fingerprint;
  CHECK(hello != cfg);
  CHECK(find(t.discover(), "hello").fingerprint == hello);
  SUBCASE("handler size") {
    t.write("hello/handler.py", "print(12)\n");
    CHECK(find(t.discover(), "hello").fingerprint != hello);
    CHECK(find(t.discover(), "cfg").fingerprint == cfg);
  }
  SUBCASE("handler mtime") {
    const fs::path file = t.root() / "hello/handler.py";
    fs::last_write_time(file, fs::last_write_time(file) + std::chrono::seconds(5));
    CHECK(find(t.discover(), "hello").fingerprint != hello);
  }
  SUBCASE("fn.config.json content") {
    t.write("cfg/fn.config.json", R"({"timeout_ms": 2})");
    CHECK(find(t.discover(), "cfg").fingerprint != cfg);
  }
  SUBCASE("gateway settings the function runs with") {
    t.config.runtime_daemons["python"] = 2;
    CHECK(find(t.discover(), "hello").fingerprint != hello);
    CHECK(find(t.discover(), "cfg").fingerprint == cfg);
  }
  SUBCASE("not when another function appears") {
    t.write("new/handler.py", "");
    CHECK(find(t.discover(), "hello").fingerprint == hello);
  }
}

TEST_CASE("discovery: odd trees") {
  TempTree t;
  SUBCASE("a missing functions dir") {
    t.config.functions_dir = (t.root() / "nope").string();
    t.config.runtime_sockets = {{"r", {"unix:/r.sock"}}};
    const auto r = t.discover();
    CHECK(names(r) == Argv{"r"});
    CHECK(has_problem(r, "nope is not a folder"));
  }
  SUBCASE("a handler in the functions dir itself") {
    t.write("handler.py", "");
    const auto r = t.discover();
    CHECK(r.functions.empty());
    CHECK(has_problem(r, "handler.py: the functions dir itself is not a function"));
  }
  SUBCASE("a trailing slash on the functions dir") {
    t.write("a/handler.py", "");
    t.config.functions_dir += "/";
    CHECK(find(t.discover(), "a").dir == t.root() / "a");
  }
  SUBCASE("a folder name not usable in a URL") {
    t.write("hello world/handler.py", "");
    const auto r = t.discover();
    CHECK(r.functions.empty());
    CHECK(has_problem(r, "name not usable in a URL path"));
  }
  SUBCASE("a symlink loop ends") {
    t.write("a/handler.py", "");
    fs::create_directory_symlink(t.root() / "a", t.root() / "a/loop");
    const auto r = t.discover();
    CHECK(names(r) == Argv{"a"});
    CHECK(has_problem(r, "symlink loop"));
  }
  SUBCASE("a symlinked folder is an alias") {
    t.write("a/handler.py", "");
    fs::create_directory_symlink(t.root() / "a", t.root() / "b");
    CHECK(names(t.discover()) == Argv{"a", "b"});
  }
}

// --- reads that fail: only a successful read can remove a function

namespace {

using gateway::ReadFailure;
using gateway::TreeReader;

// The disk, except for the folders and files given an errno here. Tests run as root, which chmod
// does not stop, so this is how a folder becomes unreadable.
class FlakyReader final : public TreeReader {
 public:
  std::map<fs::path, int> list_errors, read_errors;

  gateway::ReadResult<std::vector<Entry>> list(const fs::path& dir) const override {
    if (const auto it = list_errors.find(dir); it != list_errors.end())
      return tl::unexpected(ReadFailure{dir, it->second});
    return gateway::disk_reader().list(dir);
  }
  gateway::ReadResult<std::string> read(const fs::path& file) const override {
    if (const auto it = read_errors.find(file); it != read_errors.end())
      return tl::unexpected(ReadFailure{file, it->second});
    return gateway::disk_reader().read(file);
  }
};

std::map<std::string, std::string> fingerprints(const DiscoveryResult& r) {
  std::map<std::string, std::string> out;
  for (const auto& f : r.functions) out[f.name] = f.fingerprint;
  return out;
}

std::size_t count_problems(const DiscoveryResult& r, const std::string& text) {
  return static_cast<std::size_t>(
      std::count_if(r.problems.begin(), r.problems.end(),
                    [&](const std::string& p) { return p.find(text) != std::string::npos; }));
}

}  // namespace

TEST_CASE("discovery: a functions dir that cannot be listed is a failed scan, not an empty one") {
  TempTree t;
  t.write("a/handler.py", "");
  FlakyReader reader;
  SUBCASE("out of fds") {
    reader.list_errors[t.root()] = EMFILE;
    const auto r = gateway::scan(t.config, reader);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().path == t.root());
    CHECK(r.error().error == EMFILE);
    CHECK(r.error().transient());
    CHECK(r.error().reason() == "Too many open files");
  }
  SUBCASE("permission denied") {
    reader.list_errors[t.root()] = EACCES;
    const auto r = gateway::scan(t.config, reader);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().error == EACCES);
    CHECK_FALSE(r.error().transient());
  }
  SUBCASE("its own fn.config.json (the assets) cannot be read") {
    t.write("fn.config.json", R"({"assets": {"directory": "public"}})");
    reader.read_errors[t.root() / "fn.config.json"] = EIO;
    const auto r = gateway::scan(t.config, reader);
    REQUIRE_FALSE(r.has_value());
    CHECK(r.error().path == t.root() / "fn.config.json");
  }
  SUBCASE("a functions dir that is gone is an answer: no functions") {
    reader.list_errors[t.root()] = ENOENT;
    const auto r = gateway::scan(t.config, reader);
    REQUIRE(r.has_value());
    CHECK(r->functions.empty());
  }
  SUBCASE("a readable tree is a successful scan with nothing unread") {
    const auto r = gateway::scan(t.config, reader);
    REQUIRE(r.has_value());
    CHECK(names(*r) == Argv{"a"});
    CHECK(r->unread.empty());
  }
}

TEST_CASE("discovery: a failed scan changes nothing, says so once, and the next good one applies") {
  TempTree t;
  t.write("a/handler.py", "");
  t.write("b/handler.sh", "echo b\n");
  FlakyReader reader;
  gateway::Discovery discovery(reader);
  const auto good = discovery.discover(t.config);
  REQUIRE(names(good) == Argv{"a", "b"});
  CHECK_FALSE(discovery.retry_wanted());

  reader.list_errors[t.root()] = EMFILE;
  t.write("c/handler.py", "");  // a change the failed scans cannot see
  const auto failed = discovery.discover(t.config);
  CHECK(fingerprints(failed) == fingerprints(good));
  CHECK(count_problems(failed, "Too many open files") == 1);
  CHECK(has_problem(failed, t.root().string()));
  CHECK(has_problem(failed, "nothing changes until it can be read, 2 functions kept"));
  CHECK(discovery.retry_wanted());
  const auto again = discovery.discover(t.config);  // the same episode: no second line
  CHECK(fingerprints(again) == fingerprints(good));
  CHECK(again.problems.empty());

  reader.list_errors.clear();
  fs::remove_all(t.root() / "b");
  const auto recovered = discovery.discover(t.config);
  CHECK(names(recovered) == Argv{"a", "c"});
  CHECK(recovered.problems.empty());
  CHECK_FALSE(discovery.retry_wanted());

  reader.list_errors[t.root()] = ENFILE;  // a new episode is reported again
  CHECK(count_problems(discovery.discover(t.config), "Too many open files in system") == 1);
}

TEST_CASE("discovery: a function whose folder or config cannot be read keeps its last good state") {
  TempTree t;
  t.write("api/users/handler.py", "");
  t.write("api/orders/handler.py", "");
  t.write("b/handler.py", "");
  t.write("b/fn.config.json", R"({"timeout_ms": 5000})");
  t.write("other/handler.sh", "echo\n");
  FlakyReader reader;
  gateway::Discovery discovery(reader);
  const auto good = discovery.discover(t.config);
  REQUIRE(names(good) == Argv{"api/orders", "api/users", "b", "other"});

  SUBCASE("a subfolder that cannot be listed keeps the functions in it") {
    reader.list_errors[t.root() / "api"] = EMFILE;
    fs::remove_all(t.root() / "api/orders");  // unseen while unreadable
    fs::remove_all(t.root() / "other");       // seen: the rest of the tree still applies
    const auto r = discovery.discover(t.config);
    CHECK(names(r) == Argv{"api/orders", "api/users", "b"});
    CHECK(fingerprints(r)["api/users"] == fingerprints(good)["api/users"]);
    CHECK(count_problems(r, "/api: Too many open files; the functions in it keep") == 1);
    CHECK(discovery.retry_wanted());
    CHECK(discovery.discover(t.config).problems.empty());  // once per episode

    reader.list_errors.clear();
    CHECK(names(discovery.discover(t.config)) == Argv{"api/users", "b"});
    CHECK_FALSE(discovery.retry_wanted());
  }
  SUBCASE("a function whose own folder cannot be listed keeps its last state") {
    reader.list_errors[t.root() / "b"] = EMFILE;
    t.write("b/fn.config.json", R"({"timeout_ms": 9000})");
    fs::remove(t.root() / "b/handler.py");
    const auto r = discovery.discover(t.config);
    CHECK(fingerprints(r) == fingerprints(good));
    CHECK(count_problems(r, "/b: Too many open files; the functions in it keep") == 1);
    reader.list_errors.clear();
    // Readable again: its config is there without a handler, a broken function now.
    const auto after = discovery.discover(t.config);
    CHECK(names(after) == Argv{"api/orders", "api/users", "b", "other"});
    CHECK(find(after, "b").broken.ends_with("no handler file and no \"command\""));
  }
  SUBCASE("a fn.config.json that cannot be read keeps the function as it was") {
    reader.read_errors[t.root() / "b/fn.config.json"] = EACCES;
    t.write("b/fn.config.json", R"({"timeout_ms": 9000})");
    const auto r = discovery.discover(t.config);
    CHECK(fingerprints(r) == fingerprints(good));
    CHECK(find(r, "b").timeout_ms == good.functions[2].timeout_ms);
    CHECK(count_problems(r, "b/fn.config.json: Permission denied; function \"b\" keeps") == 1);
    CHECK_FALSE(discovery.retry_wanted());  // EACCES does not go away by itself

    reader.read_errors.clear();
    const auto fixed = discovery.discover(t.config);
    CHECK(fingerprints(fixed)["b"] != fingerprints(good)["b"]);
    CHECK(find(fixed, "b").timeout_ms == std::optional<std::uint64_t>(9000));
  }
  SUBCASE("a function never read stays out until it can be read") {
    t.write("new/handler.py", "");
    t.write("new/fn.config.json", "{}");
    reader.read_errors[t.root() / "new/fn.config.json"] = EIO;
    const auto r = discovery.discover(t.config);
    CHECK(names(r) == Argv{"api/orders", "api/users", "b", "other"});
    CHECK(has_problem(r, "new/fn.config.json: Input/output error"));
  }
  SUBCASE("a folder that is gone is a removal") {
    reader.list_errors[t.root() / "api"] = ENOENT;
    CHECK(names(discovery.discover(t.config)) == Argv{"b", "other"});
  }
  SUBCASE("a kept function loses to a route another function took meanwhile") {
    reader.list_errors[t.root() / "api"] = EMFILE;
    t.write("other/fn.config.json", R"({"routes": ["/other", "/api/users"]})");
    const auto r = discovery.discover(t.config);
    CHECK(names(r) == Argv{"api/orders", "b", "other"});
    CHECK(has_problem(r, "function \"api/users\": could not be read and its route /api/users"));
  }
}

TEST_CASE("discovery: what a failed scan kept is kept again by the next failed one") {
  TempTree t;
  t.write("a/x/handler.py", "");
  t.write("b/handler.py", "");
  FlakyReader reader;
  gateway::Discovery discovery(reader);
  REQUIRE(names(discovery.discover(t.config)) == Argv{"a/x", "b"});
  reader.list_errors[t.root() / "a"] = EMFILE;
  CHECK(names(discovery.discover(t.config)) == Argv{"a/x", "b"});
  reader.list_errors[t.root()] = EMFILE;
  CHECK(names(discovery.discover(t.config)) == Argv{"a/x", "b"});
  reader.list_errors.erase(t.root());
  CHECK(names(discovery.discover(t.config)) == Argv{"a/x", "b"});
}
