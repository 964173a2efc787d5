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

namespace {

FunctionSpec file_route(std::string route, std::vector<std::string> methods = {}) {
  FunctionSpec f;
  f.routes = {std::move(route)};
  f.methods = std::move(methods);
  f.file_route = true;
  return f;
}

// "index name=value ..." with the route's parameters, "405 ALLOW", or "none".
std::string show_params(const RouteTable& table, std::string_view path,
                        std::string_view method = "GET") {
  const auto m = table.match(path, method);
  if (!m) return "none";
  if (!m->method_allowed) return "405 " + m->allow;
  std::string out = std::to_string(m->function_index);
  for (const auto& [name, value] : m->params)
    out += " " + std::string(name) + "=" + std::string(value);
  return out;
}

}  // namespace

TEST_CASE("routes: parameters match one segment, a catch-all the rest of the path") {
  std::vector<FunctionSpec> fns{file_route("/users/:id"), file_route("/blog/:slug*"),
                                file_route("/orders/:id/items/:item")};
  const RouteTable table(fns);
  CHECK(show_params(table, "/users/42") == "0 id=42");
  CHECK(show_params(table, "/users/42/") == "0 id=42");
  CHECK(show_params(table, "/users") == "none");
  CHECK(show_params(table, "/users/42/x") == "none");
  CHECK(show_params(table, "/blog/2026/12/hello") == "1 slug=2026/12/hello");
  CHECK(show_params(table, "/blog/a%2Fb") == "1 slug=a%2Fb");
  CHECK(show_params(table, "/blog") == "none");
  CHECK(show_params(table, "/orders/7/items/3") == "2 id=7 item=3");
  CHECK(table.size() == 3);
}

TEST_CASE("routes: a fixed segment wins over a parameter, a parameter over a catch-all") {
  std::vector<FunctionSpec> fns{file_route("/users/:slug*"), file_route("/users/:id"),
                                file_route("/users/me"), file_route("/users/:id/edit"),
                                file_route("/users/me/:tab")};
  const RouteTable table(fns);
  CHECK(show_params(table, "/users/me") == "2");
  CHECK(show_params(table, "/users/7") == "1 id=7");
  CHECK(show_params(table, "/users/7/edit") == "3 id=7");
  CHECK(show_params(table, "/users/me/edit") == "4 tab=edit");
  CHECK(show_params(table, "/users/7/8/9") == "0 slug=7/8/9");
}

TEST_CASE("routes: functions share a route by method; others get 405 with what is allowed") {
  std::vector<FunctionSpec> fns{file_route("/orders", {"GET"}), file_route("/orders", {"POST"}),
                                file_route("/orders/:id", {"GET"}),
                                file_route("/orders/:id", {"DELETE"})};
  const RouteTable table(fns);
  CHECK(show_params(table, "/orders") == "0");
  CHECK(show_params(table, "/orders", "HEAD") == "0");
  CHECK(show_params(table, "/orders", "POST") == "1");
  CHECK(show_params(table, "/orders", "PUT") == "405 GET, POST");
  CHECK(show_params(table, "/orders/9", "DELETE") == "3 id=9");
  CHECK(show_params(table, "/orders/9", "PATCH") == "405 GET, DELETE");
}

TEST_CASE("routes: a file route serves only its own path; a folder function's route is a prefix") {
  std::vector<FunctionSpec> fns{file_route("/docs"), functions({{"/api"}})[0]};
  const RouteTable table(fns);
  CHECK(show(table, "/docs") == "0 /docs ");
  CHECK(show(table, "/docs/") == "0 /docs /");
  CHECK(show(table, "/docs/x") == "none");
  CHECK(show(table, "/api/x") == "1 /api /x");
  // A route with a parameter is exact for every function, and comes before a shorter prefix.
  std::vector<FunctionSpec> mixed = functions({{"/shop"}, {"/shop/items/:id"}});
  const RouteTable both(mixed);
  CHECK(show_params(both, "/shop/items/5") == "1 id=5");
  CHECK(show(both, "/shop/items/5/x") == "0 /shop /items/5/x");
}
