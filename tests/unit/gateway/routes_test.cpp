#include "gateway/routes.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace {

using gateway::FunctionSpec;
using gateway::RouteTable;

std::vector<FunctionSpec> functions(const std::vector<std::vector<std::string>>& routes) {
  std::vector<FunctionSpec> out;
  for (const auto& list : routes) {
    FunctionSpec f;
    f.name = "f" + std::to_string(out.size());
    f.routes = list;
    out.push_back(f);
  }
  return out;
}

// "index prefix path_info" or "none", to compare whole matches in one CHECK.
std::string show(const RouteTable& table, std::string_view path) {
  const auto m = table.match(path);
  if (!m) return "none";
  return std::to_string(m->function_index) + " " + std::string(m->prefix) + " " +
         std::string(m->path_info);
}

}  // namespace

TEST_CASE("routes: a route matches itself and what lies below it") {
  const auto fns = functions({{"/api"}});
  const RouteTable table(fns);
  CHECK(show(table, "/api") == "0 /api ");
  CHECK(show(table, "/api/") == "0 /api /");
  CHECK(show(table, "/api/x") == "0 /api /x");
  CHECK(show(table, "/api/x/y/") == "0 /api /x/y/");
  CHECK(show(table, "/apix") == "none");
  CHECK(show(table, "/ap") == "none");
  CHECK(show(table, "/") == "none");
  CHECK(show(table, "/API") == "none");
}

TEST_CASE("routes: the longest route wins") {
  const auto fns = functions({{"/api"}, {"/api/users"}, {"/api/users/admin"}});
  const RouteTable table(fns);
  CHECK(show(table, "/api/users") == "1 /api/users ");
  CHECK(show(table, "/api/users/42") == "1 /api/users /42");
  CHECK(show(table, "/api/usersx") == "0 /api /usersx");
  CHECK(show(table, "/api/users/admin/x") == "2 /api/users/admin /x");
  CHECK(show(table, "/api/other") == "0 /api /other");
  CHECK(table.size() == 3);
}

TEST_CASE("routes: \"/\" catches everything nothing longer claims") {
  const auto fns = functions({{"/"}, {"/hello"}});
  const RouteTable table(fns);
  CHECK(show(table, "/") == "0 / /");
  CHECK(show(table, "/x/y") == "0 / /x/y");
  CHECK(show(table, "/hello/z") == "1 /hello /z");
  CHECK(show(table, "/helloz") == "0 / /helloz");
  CHECK(show(table, "//") == "0 / //");
}

TEST_CASE("routes: odd paths") {
  const auto fns = functions({{"/a", "/b/c"}});
  const RouteTable table(fns);
  SUBCASE("not starting with '/'") {
    CHECK(show(table, "") == "none");
    CHECK(show(table, "a") == "none");
    CHECK(show(table, "*") == "none");
  }
  SUBCASE("empty segments stay in path_info") {
    CHECK(show(table, "/a//x") == "0 /a //x");
    CHECK(show(table, "/b/c//") == "0 /b/c //");
  }
  SUBCASE("a function with several routes") {
    CHECK(show(table, "/b/c/d") == "0 /b/c /d");
    CHECK(show(table, "/b") == "none");
  }
  SUBCASE("views point into the path") {
    const std::string path = "/a/rest";
    const auto m = table.match(path);
    REQUIRE(m.has_value());
    CHECK(m->prefix.data() == path.data());
    CHECK(m->path_info.data() == path.data() + 2);
  }
}

TEST_CASE("routes: the first function keeps a shared route") {
  const auto fns = functions({{"/x"}, {"/x"}});
  CHECK(show(RouteTable(fns), "/x") == "0 /x ");
  CHECK(show(RouteTable(), "/x") == "none");
}

TEST_CASE("routes: a thousand functions") {
  std::vector<std::vector<std::string>> routes;
  for (int i = 0; i < 1000; ++i) routes.push_back({"/fn" + std::to_string(i)});
  const auto fns = functions(routes);
  const RouteTable table(fns);
  CHECK(show(table, "/fn999/a") == "999 /fn999 /a");
  CHECK(show(table, "/fn1000") == "none");
}
