#include "gateway/routes.h"

namespace gateway {

RouteTable::RouteTable(const std::vector<FunctionSpec>& functions) {
  for (std::size_t i = 0; i < functions.size(); ++i) {
    for (const auto& route : functions[i].routes) routes_.emplace(route, i);
  }
}

std::optional<RouteMatch> RouteTable::match(std::string_view path) const {
  if (path.empty() || path.front() != '/') return std::nullopt;
  // Candidates from the longest: the whole path, then each prefix ending before a '/'.
  // "/" is left to the end because its path_info is the whole path.
  std::size_t end = path.size();
  while (end > 1) {
    const auto it = routes_.find(path.substr(0, end));
    if (it != routes_.end()) return RouteMatch{it->second, path.substr(0, end), path.substr(end)};
    end = path.rfind('/', end - 1);
    if (end == std::string_view::npos) break;
  }
  const auto root = routes_.find(std::string_view("/"));
  if (root == routes_.end()) return std::nullopt;
  return RouteMatch{root->second, path.substr(0, 1), path};
}

}  // namespace gateway
