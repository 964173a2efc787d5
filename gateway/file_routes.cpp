#include "gateway/file_routes.h"

#include <algorithm>
#include <array>
#include <cctype>

namespace gateway {
namespace {

constexpr std::array<std::string_view, 5> kMethods = {"get", "post", "put", "patch", "delete"};

bool is_method(std::string_view token) {
  return std::find(kMethods.begin(), kMethods.end(), token) != kMethods.end();
}

std::string upper(std::string_view text) {
  std::string out(text);
  for (char& c : out) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return out;
}

bool is_parameter_name(std::string_view name) {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '_';
  });
}

// Split at each `separator` outside brackets: "post.[...rest]" is "post" and "[...rest]".
std::vector<std::string_view> split(std::string_view text, char separator) {
  std::vector<std::string_view> parts;
  std::size_t start = 0;
  int depth = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    if (text[i] == '[') ++depth;
    if (text[i] == ']' && depth > 0) --depth;
    if (text[i] == separator && depth == 0) {
      parts.push_back(text.substr(start, i - start));
      start = i + 1;
    }
  }
  parts.push_back(text.substr(start));
  return parts;
}

}  // namespace

std::string route_segment(std::string_view name) {
  if (name.size() > 2 && name.front() == '[' && name.back() == ']') {
    std::string_view inner = name.substr(1, name.size() - 2);
    if (inner.starts_with("...")) return ":" + std::string(inner.substr(3)) + "*";
    return ":" + std::string(inner);
  }
  return std::string(name);
}

tl::expected<std::optional<FileRoute>, std::string> file_route(std::string_view folder_route,
                                                               std::string_view file) {
  FileRoute found;
  std::string_view stem;
  for (auto [extension, runtime] :
       {std::pair{".py", "python"}, {".js", "node"}, {".mjs", "node"}}) {
    if (file.size() > std::string_view(extension).size() && file.ends_with(extension)) {
      stem = file.substr(0, file.size() - std::string_view(extension).size());
      found.runtime = runtime;
    }
  }
  if (stem.empty() || stem.starts_with('_') || stem.starts_with('.') || stem.ends_with(".test") ||
      stem.ends_with(".spec"))
    return std::nullopt;
  std::vector<std::string_view> tokens = split(stem, '.');
  for (std::string_view token : tokens)
    found.stem += (found.stem.empty() ? "" : ".") + route_segment(token);
  if (is_method(tokens.front())) {
    found.methods = {upper(tokens.front())};
    tokens.erase(tokens.begin());
    found.explicit_name = true;
    if (!tokens.empty() && is_method(tokens.front()))
      return tl::unexpected(
          std::string("more than one method in its name (one of get., post., put., "
                      "patch., delete.)"));
  }
  if (tokens.size() == 1 && (tokens.front() == "index" || tokens.front() == "main")) {
    tokens.clear();
    found.explicit_name = true;
  }
  found.route = std::string(folder_route);
  // The folders' segments, then the name's: a parameter is named by letters, digits and _, and a
  // catch-all ends the route.
  std::vector<std::string> segments;
  for (std::string_view folder : split(folder_route.substr(folder_route.empty() ? 0 : 1), '/'))
    if (!folder.empty()) segments.emplace_back(folder);
  const std::size_t from_name = segments.size();
  for (std::string_view token : tokens) {
    if (token.empty()) return tl::unexpected(std::string("an empty segment in its name"));
    segments.push_back(route_segment(token));
  }
  for (std::size_t i = 0; i < segments.size(); ++i) {
    const std::string& segment = segments[i];
    if (segment.front() == ':') {
      if (i >= from_name) found.explicit_name = true;
      const bool catch_all = segment.back() == '*';
      const std::string_view name =
          std::string_view(segment).substr(1, segment.size() - (catch_all ? 2 : 1));
      if (!is_parameter_name(name))
        return tl::unexpected(
            std::string("parameter \"" + segment + "\": a name is letters, digits and _"));
      if (catch_all && i + 1 != segments.size())
        return tl::unexpected(std::string("a catch-all ([...name]) must end the route"));
    }
    if (i >= from_name) found.route += "/" + segment;
  }
  if (found.route.empty()) found.route = "/";
  return found;
}

}  // namespace gateway
