// FastFN's file routes: in a folder that holds no handler, each python or node file named by
// method and path is a function of its own. "get.py" serves GET on the folder's route,
// "get.profile.py" GET <folder>/profile, "post.users.[id].js" POST <folder>/users/:id, "index.py"
// (or "main.py") every method on the folder's route, "[...slug].py" every path below it. A folder
// named "[id]" is the segment ":id" of the routes below it. Files whose name starts with "_" or
// ".", and tests ("x.test.js", "x.spec.py"), are never routes. Pure: names in, routes out.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <tl/expected.hpp>
#include <vector>

namespace gateway {

struct FileRoute {
  std::string runtime;               // "python" or "node", from the extension
  std::string route;                 // "/orders/:id", "/blog/:slug*"; "/" at the top
  std::vector<std::string> methods;  // {"GET"} from "get."; empty: every method
  // The file's name without its extension, parameters written as in routes ("get.:id"): the last
  // part of the function's name.
  std::string stem;
  // Named as a route file is and not as a helper module may be: a method, a parameter, or
  // index/main. Such a file without a handler(event) is worth a word in the log.
  bool explicit_name = false;
};

// A folder or file name as a route segment: "[id]" is ":id", "[...slug]" is ":slug*", any other
// name stays as it is.
std::string route_segment(std::string_view name);

// The route of `file` (a file name) in the folder whose route is `folder_route` ("" at the top of
// the functions dir, else "/orders/:id"). nullopt: not a route file (another extension, a helper
// "_x.py", a test). An error (the reason, for the log): named like a route file, but two methods
// ("get.post.x.py"), an empty segment, a bad parameter name or a catch-all before the end.
tl::expected<std::optional<FileRoute>, std::string> file_route(std::string_view folder_route,
                                                               std::string_view file);

}  // namespace gateway
