#include "gateway/routes.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <algorithm>

namespace gateway {
namespace {

std::vector<std::string_view> segments_of(std::string_view path) {
  std::vector<std::string_view> segments;
  path.remove_prefix(1);
  if (path.ends_with('/')) path.remove_suffix(1);  // "/users/7/" is "/users/7"
  while (!path.empty()) {
    const std::size_t slash = path.find('/');
    segments.push_back(path.substr(0, slash));
    if (slash == std::string_view::npos) break;
    path.remove_prefix(slash + 1);
  }
  return segments;
}

// 0 for a fixed segment, 1 for a parameter, 2 for a catch-all: lower is more specific.
int kind(std::string_view segment) {
  if (!segment.starts_with(':')) return 0;
  return segment.ends_with('*') ? 2 : 1;
}

bool has_parameters(std::string_view route) { return route.find("/:") != std::string_view::npos; }

}  // namespace

bool serves_method(const std::vector<std::string>& methods, std::string_view method) {
  if (methods.empty()) return true;
  return std::find(methods.begin(), methods.end(), method) != methods.end() ||
         (method == "HEAD" && std::find(methods.begin(), methods.end(), "GET") != methods.end());
}

RouteTable::RouteTable(const std::vector<FunctionSpec>& functions) {
  for (std::size_t i = 0; i < functions.size(); ++i) {
    const FunctionSpec& spec = functions[i];
    for (const auto& route : spec.routes) {
      Server server{i, spec.methods, spec.file_route};
      if (!has_parameters(route)) {
        routes_[route].push_back(server);
        continue;
      }
      std::vector<std::string> segments;
      for (std::string_view segment : segments_of(route)) segments.emplace_back(segment);
      auto same = std::find_if(patterns_.begin(), patterns_.end(),
                               [&](const Pattern& p) { return p.segments == segments; });
      if (same == patterns_.end()) same = patterns_.insert(patterns_.end(), {segments, {}});
      same->servers.push_back(server);
    }
  }
  std::stable_sort(patterns_.begin(), patterns_.end(), [](const Pattern& a, const Pattern& b) {
    for (std::size_t i = 0; i < std::min(a.segments.size(), b.segments.size()); ++i) {
      const int ka = kind(a.segments[i]), kb = kind(b.segments[i]);
      if (ka != kb) return ka < kb;
    }
    return a.segments.size() > b.segments.size();
  });
}

std::optional<RouteMatch> RouteTable::pick(const Servers& servers, std::string_view method,
                                           bool below) {
  const Server* first = nullptr;
  std::vector<std::string> allow;
  for (const Server& server : servers) {
    if (below && server.exact) continue;
    if (serves_method(server.methods, method)) return RouteMatch{server.function_index};
    if (!first) first = &server;
    allow.insert(allow.end(), server.methods.begin(), server.methods.end());
  }
  if (!first) return std::nullopt;
  RouteMatch match{first->function_index};
  match.method_allowed = false;
  match.allow = fmt::format("{}", fmt::join(allow, ", "));
  return match;
}

std::optional<RouteMatch> RouteTable::match_pattern(std::string_view path,
                                                    std::string_view method) const {
  const std::vector<std::string_view> parts = segments_of(path);
  for (const Pattern& pattern : patterns_) {
    const bool catch_all = kind(pattern.segments.back()) == 2;
    if (catch_all ? parts.size() < pattern.segments.size()
                  : parts.size() != pattern.segments.size())
      continue;
    std::vector<std::pair<std::string_view, std::string_view>> params;
    bool matched = true;
    for (std::size_t i = 0; i < pattern.segments.size() && matched; ++i) {
      std::string_view segment = pattern.segments[i];
      switch (kind(segment)) {
        case 0:
          matched = parts[i] == segment;
          break;
        case 1:
          matched = !parts[i].empty();
          params.emplace_back(segment.substr(1), parts[i]);
          break;
        default: {  // the rest of the path, from this segment on
          const std::size_t from = static_cast<std::size_t>(parts[i].data() - path.data());
          std::string_view rest = path.substr(from);
          if (rest.ends_with('/')) rest.remove_suffix(1);
          params.emplace_back(segment.substr(1, segment.size() - 2), rest);
        }
      }
    }
    if (!matched) continue;
    auto found = pick(pattern.servers, method, false);
    if (!found) continue;
    found->prefix = path;
    found->params = std::move(params);
    return found;
  }
  return std::nullopt;
}

std::optional<RouteMatch> RouteTable::match(std::string_view path, std::string_view method) const {
  if (path.empty() || path.front() != '/') return std::nullopt;
  auto served = [&](std::size_t end) -> std::optional<RouteMatch> {
    const auto it = routes_.find(path.substr(0, end));
    if (it == routes_.end()) return std::nullopt;
    const std::string_view rest = path.substr(end);
    auto found = pick(it->second, method, !rest.empty() && rest != "/");
    if (found) {
      found->prefix = path.substr(0, end);
      found->path_info = rest;
    }
    return found;
  };
  if (path.size() > 1) {
    if (auto whole = served(path.size())) return whole;
    if (path.size() > 2 && path.ends_with('/'))
      if (auto whole = served(path.size() - 1)) return whole;
  }
  if (!patterns_.empty())
    if (auto found = match_pattern(path, method)) return found;
  // Prefixes from the longest: each one ending before a '/'. "/" is left to the end because its
  // path_info is the whole path.
  std::size_t end = path.rfind('/', path.size() - 1);
  while (end != std::string_view::npos && end > 1) {
    if (auto found = served(end)) return found;
    end = path.rfind('/', end - 1);
  }
  const auto root = routes_.find(std::string_view("/"));
  if (root == routes_.end()) return std::nullopt;
  auto found = pick(root->second, method, path != "/");
  if (found) {
    found->prefix = path.substr(0, 1);
    found->path_info = path;
  }
  return found;
}

}  // namespace gateway
