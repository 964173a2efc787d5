// The route table: which function serves a request path. A function's route is a path prefix
// that ends at a segment boundary, so "/api" serves "/api", "/api/" and "/api/x" but not "/apix",
// and the longest route wins ("/api/users" over "/api"). "/" as a route serves every path that
// nothing longer claims. The rest of the path after the route goes to the function as PATH_INFO.
// The table is immutable once built: reloads build a new one, so lookups need no lock.
#pragma once

#include <cstddef>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gateway/discovery.h"

namespace gateway {

struct RouteMatch {
  std::size_t function_index;  // into the vector the table was built from
  // Both view the `path` given to match() and live as long as it does. `prefix` is the matched
  // route. `path_info` is the rest, empty or starting with '/'; for the route "/" it is the whole
  // path (so the function sees an empty SCRIPT_NAME, as a watchdog mounted at the root does).
  std::string_view prefix;
  std::string_view path_info;
};

class RouteTable {
 public:
  RouteTable() = default;
  // Takes every route of every function. When two functions list one route (discovery never
  // returns that) the first keeps it.
  explicit RouteTable(const std::vector<FunctionSpec>& functions);

  // `path` is the raw request path, without the query string. nullopt when no route serves it
  // (including paths that do not start with '/'). Costs one hash lookup per '/' in the path.
  // Thread-safe: const.
  std::optional<RouteMatch> match(std::string_view path) const;

  std::size_t size() const { return routes_.size(); }

 private:
  // Transparent, so match() looks up string_views without building strings.
  struct Hash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const noexcept {
      return std::hash<std::string_view>{}(s);
    }
  };
  std::unordered_map<std::string, std::size_t, Hash, std::equal_to<>> routes_;
};

}  // namespace gateway
