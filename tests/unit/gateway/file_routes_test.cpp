#include "gateway/file_routes.h"

#include <doctest/doctest.h>

#include <string>

namespace {

// "RUNTIME METHODS ROUTE STEM", "not a route", or "error: REASON".
std::string show(std::string_view folder, std::string_view file) {
  auto found = gateway::file_route(folder, file);
  if (!found) return "error: " + found.error();
  if (!*found) return "not a route";
  std::string methods;
  for (const auto& method : (*found)->methods) methods += method;
  return (*found)->runtime + " " + (methods.empty() ? "*" : methods) + " " + (*found)->route + " " +
         (*found)->stem;
}

}  // namespace

TEST_CASE("file routes: the method prefix, the path in the name, index and main") {
  CHECK(show("/orders", "get.py") == "python GET /orders get");
  CHECK(show("/orders", "post.js") == "node POST /orders post");
  CHECK(show("/shop/admin", "get.health.mjs") == "node GET /shop/admin/health get.health");
  CHECK(show("/admin", "post.users.[id].py") == "python POST /admin/users/:id post.users.:id");
  CHECK(show("/users", "index.js") == "node * /users index");
  CHECK(show("/users", "main.py") == "python * /users main");
  CHECK(show("/users", "me.js") == "node * /users/me me");
  CHECK(show("/users", "delete.py") == "python DELETE /users delete");
}

TEST_CASE("file routes: [id] is a parameter, [...slug] the rest of the path, folders too") {
  CHECK(show("/users", "[id].js") == "node * /users/:id :id");
  CHECK(show("/blog", "[...slug].py") == "python * /blog/:slug* :slug*");
  CHECK(gateway::route_segment("[id]") == ":id");
  CHECK(gateway::route_segment("[...rest]") == ":rest*");
  CHECK(gateway::route_segment("orders") == "orders");
  CHECK(show("/orders/:id", "get.py") == "python GET /orders/:id get");
}

TEST_CASE("file routes: helpers, tests and other files are not routes") {
  CHECK(show("/users", "_shared.js") == "not a route");
  CHECK(show("/users", ".hidden.py") == "not a route");
  CHECK(show("/users", "users.test.js") == "not a route");
  CHECK(show("/users", "model.spec.py") == "not a route");
  CHECK(show("/users", "README.md") == "not a route");
  CHECK(show("/users", "requirements.txt") == "not a route");
  CHECK(show("/users", ".py") == "not a route");
}

TEST_CASE("file routes: a name that cannot be a route says why") {
  CHECK(show("/items", "get.post.items.js").starts_with("error: more than one method"));
  CHECK(show("/items", "get..x.py").starts_with("error: an empty segment"));
  CHECK(show("/items", "[a-b].py").starts_with("error: parameter \":a-b\""));
  CHECK(show("/items", "[...rest].edit.py").starts_with("error: a catch-all"));
  CHECK(show("/blog/:slug*", "edit.py").starts_with("error: a catch-all"));
  CHECK(show("/blog/:slug*", "get.py") == "python GET /blog/:slug* get");
}

TEST_CASE("file routes: only explicit names are worth a word when they define no handler") {
  CHECK((*gateway::file_route("/u", "get.py"))->explicit_name);
  CHECK((*gateway::file_route("/u", "[id].py"))->explicit_name);
  CHECK((*gateway::file_route("/u", "index.js"))->explicit_name);
  CHECK_FALSE((*gateway::file_route("/u", "models.py"))->explicit_name);
  CHECK_FALSE((*gateway::file_route("/u/:id", "models.py"))->explicit_name);
}
