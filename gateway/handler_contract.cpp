#include "gateway/handler_contract.h"

#include <cctype>
#include <vector>

namespace gateway {
namespace {

std::vector<std::string_view> lines_of(std::string_view source) {
  std::vector<std::string_view> lines;
  while (!source.empty()) {
    auto end = source.find('\n');
    std::string_view line = source.substr(0, end);
    if (line.ends_with('\r')) line.remove_suffix(1);
    lines.push_back(line);
    if (end == std::string_view::npos) break;
    source.remove_prefix(end + 1);
  }
  return lines;
}

std::string_view skip_space(std::string_view text) {
  while (!text.empty() && (text.front() == ' ' || text.front() == '\t')) text.remove_prefix(1);
  return text;
}

// `text` begins with `word` followed by at least one blank; returns what follows the blanks.
bool take_word(std::string_view& text, std::string_view word) {
  if (!text.starts_with(word) || text.size() == word.size() ||
      (text[word.size()] != ' ' && text[word.size()] != '\t'))
    return false;
  text = skip_space(text.substr(word.size()));
  return true;
}

// `text` begins with the identifier `name` (not a longer one).
bool take_name(std::string_view& text, std::string_view name) {
  if (!text.starts_with(name)) return false;
  if (text.size() > name.size()) {
    const unsigned char next = text[name.size()];
    if (std::isalnum(next) || next == '_' || next == '$') return false;
  }
  text = skip_space(text.substr(name.size()));
  return true;
}

// A column-0 `def name(` or `async def name(`.
bool python_defines(std::string_view line, std::string_view name) {
  take_word(line, "async");
  return take_word(line, "def") && take_name(line, name) && line.starts_with('(');
}

// A column-0 call `name(`.
bool python_calls(std::string_view line, std::string_view name) {
  return take_name(line, name) && line.starts_with('(');
}

bool python_imports_stdio(std::string_view line) {
  line = skip_space(line);
  if (take_word(line, "import")) return take_name(line, "fastfn_http");
  return take_word(line, "from") && take_name(line, "fastfn_http") && line.starts_with("import");
}

// A column-0 `if __name__`: the file runs itself when it is the main program.
bool python_runs_as_main(std::string_view line) {
  return take_word(line, "if") && take_name(line, "__name__");
}

HandlerContract python_contract(std::string_view source) {
  const auto lines = lines_of(source);
  bool handler = false, main = false;
  for (std::string_view line : lines) {
    if (python_imports_stdio(line)) return {HandlerContract::Kind::kStdio, {}};
    handler = handler || python_defines(line, "handler");
    main = main || python_defines(line, "main");
  }
  if (!handler && !main) return {};
  const std::string_view function = handler ? "handler" : "main";
  for (std::string_view line : lines) {
    if (python_runs_as_main(line) || python_calls(line, "print") ||
        line.starts_with("sys.stdout") || python_calls(line, function))
      return {};
  }
  return {HandlerContract::Kind::kEvent, std::string(function)};
}

bool node_requires_stdio(std::string_view source) {
  for (std::string_view form : {"require('./fastfn_http')", "require(\"./fastfn_http\")",
                                "require('./fastfn_http.js')", "require(\"./fastfn_http.js\")"})
    if (source.find(form) != std::string_view::npos) return true;
  return false;
}

bool node_exports_handler(std::string_view line) {
  for (auto at = line.find("exports.handler"); at != std::string_view::npos;
       at = line.find("exports.handler", at + 1)) {
    std::string_view rest = line.substr(at + 8);
    if (take_name(rest, "handler") && rest.starts_with('=') && !rest.starts_with("==")) return true;
  }
  std::string_view text = skip_space(line);
  if (take_word(text, "export")) {
    take_word(text, "async");
    for (std::string_view kind : {"function", "const", "let", "var"})
      if (take_word(text, kind)) return take_name(text, "handler");
    return false;
  }
  auto at = line.find("module.exports");
  if (at == std::string_view::npos) return false;
  std::string_view rest = skip_space(line.substr(at + 14));
  if (!rest.starts_with('=')) return false;
  rest = skip_space(rest.substr(1));
  if (!rest.starts_with('{')) return false;
  for (auto name = rest.find("handler"); name != std::string_view::npos;
       name = rest.find("handler", name + 1)) {
    const unsigned char before = rest[name - 1];
    std::string_view after = rest.substr(name);
    if (!std::isalnum(before) && before != '_' && before != '.' && take_name(after, "handler"))
      return true;
  }
  return false;
}

HandlerContract node_contract(std::string_view source) {
  if (node_requires_stdio(source)) return {HandlerContract::Kind::kStdio, {}};
  if (source.find("require.main === module") != std::string_view::npos ||
      source.find("require.main == module") != std::string_view::npos)
    return {};
  bool exports = false;
  for (std::string_view line : lines_of(source)) {
    if (line.starts_with("console.log(") || line.starts_with("process.stdout.write(")) return {};
    exports = exports || node_exports_handler(line);
  }
  if (!exports) return {};
  return {HandlerContract::Kind::kEvent, "handler"};
}

}  // namespace

HandlerContract detect_contract(std::string_view runtime, std::string_view source) {
  if (runtime == "python") return python_contract(source);
  if (runtime == "node") return node_contract(source);
  return {};
}

}  // namespace gateway
