// The route table: which function serves a request path. A function's route is a path prefix
// that ends at a segment boundary, so "/api" serves "/api", "/api/" and "/api/x" but not "/apix",
// and the longest route wins ("/api/users" over "/api"). "/" as a route serves every path that
// nothing longer claims. The rest of the path after the route goes to the function as PATH_INFO.
//
// A route with parameters (FastFN's "/users/:id", and "/blog/:slug*" for the rest of the path)
// serves the paths it matches exactly, and so does every route of a file-route function
// (file_routes.h). A path is served by, in this order: a route equal to it, the most specific
// route with parameters that matches it (segment by segment, a fixed segment beats a parameter,
// which beats a catch-all), then the longest prefix route. Several functions may share a route
// when their methods differ (orders/get.py and orders/post.py): the one that serves the method
// wins. The table is immutable once built: reloads build a new one, so lookups need no lock.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "gateway/discovery.h"

namespace gateway {

// Whether `methods` (uppercase; empty: every method) serve `method`: GET serves HEAD too.
bool serves_method(const std::vector<std::string>& methods, std::string_view method);

struct RouteMatch {
  std::size_t function_index = 0;  // into the vector the table was built from
  // Both view the `path` given to match() and live as long as it does. `prefix` is the matched
  // route. `path_info` is the rest, empty or starting with '/'; for the route "/" it is the whole
  // path (so the function sees an empty SCRIPT_NAME, as a watchdog mounted at the root does).
  std::string_view prefix = {};
  std::string_view path_info = {};
  // A route with parameters: each name (viewing the table) and its value (viewing the path, still
  // percent-encoded; a catch-all's is the rest of the path, without its leading '/').
  std::vector<std::pair<std::string_view, std::string_view>> params = {};
  // The route is served, but not for this method: function_index is the first of its functions,
  // and `allow` lists the methods they serve ("GET, POST").
  bool method_allowed = true;
  std::string allow = {};
};

class RouteTable {
 public:
  RouteTable() = default;
  // Takes every route of every function. When two functions list one route for one method
  // (discovery never returns that) the first keeps it.
  explicit RouteTable(const std::vector<FunctionSpec>& functions);

  // `path` is the raw request path, without the query string. nullopt when no route serves it
  // (including paths that do not start with '/'). Costs one hash lookup per '/' in the path, and a
  // walk of the routes with parameters. Thread-safe: const.
  std::optional<RouteMatch> match(std::string_view path, std::string_view method = "GET") const;

  std::size_t size() const { return routes_.size() + patterns_.size(); }

 private:
  struct Server {
    std::size_t function_index;
    std::vector<std::string> methods;  // the function's
    bool exact;                        // serves the route itself, no path below it
  };
  using Servers = std::vector<Server>;
  struct Pattern {
    std::vector<std::string> segments;  // "users", ":id", ":slug*"
    Servers servers;
  };
  // Transparent, so match() looks up string_views without building strings.
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };

  // The server of `method` among `servers`, those that serve only the route itself left out when
  // `below` (the path goes on past the route). nullopt when none is left.
  static std::optional<RouteMatch> pick(const Servers& servers, std::string_view method,
                                        bool below);
  std::optional<RouteMatch> match_pattern(std::string_view path, std::string_view method) const;

  std::unordered_map<std::string, Servers, Hash, std::equal_to<>> routes_;
  std::vector<Pattern> patterns_;  // the most specific first
};

}  // namespace gateway
