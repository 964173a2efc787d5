#include "protocol/cgi_env.h"

#include <algorithm>
#include <array>
#include <unordered_set>

namespace protocol {
namespace {

struct Variable {
  std::string name;
  std::string value;
};

// Every RFC 3875 meta-variable, plus REMOTE_PORT and REQUEST_URI. A base entry with one of these
// names would be read as data of the request (REMOTE_USER=admin in the watchdog's environment looks
// like an authenticated user, a stale CONTENT_LENGTH makes the program wait for a body), so it goes
// even when this request does not set the variable.
constexpr std::array<std::string_view, 19> kMetaVariables = {
    "AUTH_TYPE",       "CONTENT_LENGTH", "CONTENT_TYPE",    "GATEWAY_INTERFACE", "PATH_INFO",
    "PATH_TRANSLATED", "QUERY_STRING",   "REMOTE_ADDR",     "REMOTE_HOST",       "REMOTE_IDENT",
    "REMOTE_PORT",     "REMOTE_USER",    "REQUEST_METHOD",  "REQUEST_URI",       "SCRIPT_NAME",
    "SERVER_NAME",     "SERVER_PORT",    "SERVER_PROTOCOL", "SERVER_SOFTWARE"};

char to_upper(char c) noexcept { return (c >= 'a' && c <= 'z') ? static_cast<char>(c - 32) : c; }
char to_lower(char c) noexcept { return (c >= 'A' && c <= 'Z') ? static_cast<char>(c + 32) : c; }

// RFC 3875 4.1.5 makes PATH_INFO the decoded path, which Apache and git's http-backend follow;
// REQUEST_URI stays raw. A path that does not decode cleanly (a stray '%', or %00, which no
// environment string can hold) is passed raw rather than guessed at.
std::string decode_path(std::string_view path) {
  auto decoded = percent_decode(path, [](char c) { return c == '\0'; });
  return decoded ? std::move(*decoded) : std::string(path);
}

// Fields with one name, however cased, are joined with ", " as CGI servers do: one variable each.
std::vector<Header> merge_safe_headers(const Headers* headers) {
  std::vector<Header> merged;
  if (headers == nullptr) return merged;
  for (const Header& header : *headers) {
    if (!is_safe_env_header(header.name)) continue;
    auto same = std::find_if(merged.begin(), merged.end(),
                             [&](const Header& seen) { return iequals(seen.name, header.name); });
    if (same == merged.end()) {
      merged.push_back(header);
    } else {
      same->value.append(", ").append(header.value);
    }
  }
  return merged;
}

std::vector<Variable> meta_variables(const CgiRequest& request, const std::vector<Header>& fields) {
  TargetParts parts = split_target(request.target);
  std::vector<Variable> vars = {
      {"GATEWAY_INTERFACE", "CGI/1.1"},
      {"SERVER_PROTOCOL", std::string(request.server_protocol)},
      {"SERVER_SOFTWARE", std::string(request.server_software)},
      {"SERVER_NAME", std::string(request.server_name)},
      {"SERVER_PORT", std::string(request.server_port)},
      {"REMOTE_ADDR", std::string(request.remote_addr)},
      {"REMOTE_PORT", std::string(request.remote_port)},
      {"REQUEST_METHOD", std::string(request.method)},
      {"REQUEST_URI", std::string(request.target)},
      {"SCRIPT_NAME", std::string(request.script_name)},
      {"PATH_INFO", decode_path(path_info(parts.path, request.script_name))},
      {"QUERY_STRING", std::string(parts.query)},
  };
  if (request.has_body) vars.push_back({"CONTENT_LENGTH", std::to_string(request.content_length)});
  auto content_type = std::find_if(fields.begin(), fields.end(), [](const Header& field) {
    return iequals(field.name, "Content-Type");
  });
  if (content_type != fields.end()) vars.push_back({"CONTENT_TYPE", content_type->value});
  return vars;
}

// RFC 3875 4.1.18 keeps Content-Type and Content-Length out of HTTP_*; Proxy never becomes
// HTTP_PROXY, which many HTTP clients would take as their proxy (httpoxy).
void append_header_variables(std::vector<Variable>& vars, const std::vector<Header>& fields) {
  for (const Header& field : fields) {
    if (iequals(field.name, "Proxy") || iequals(field.name, "Content-Type") ||
        iequals(field.name, "Content-Length")) {
      continue;
    }
    vars.push_back({cgi_header_variable(field.name), field.value});
  }
}

void append_openfaas_variables(std::vector<Variable>& vars, const CgiRequest& request,
                               const std::vector<Header>& fields) {
  TargetParts parts = split_target(request.target);
  std::array<Variable, 3> fixed = {Variable{"Http_Method", std::string(request.method)},
                                   Variable{"Http_Path", std::string(parts.path)},
                                   Variable{"Http_Query", std::string(parts.query)}};
  vars.insert(vars.end(), fixed.begin(), fixed.end());
  for (const Header& field : fields) {
    std::string name = openfaas_header_variable(field.name);
    // A "Method", "Path" or "Query" header must not shadow the request's own.
    bool shadows = std::any_of(fixed.begin(), fixed.end(),
                               [&](const Variable& var) { return var.name == name; });
    if (!shadows && !iequals(field.name, "Proxy")) vars.push_back({std::move(name), field.value});
  }
}

// Whether a base entry survives: well formed, and not a name the request owns. HTTP_PROXY goes in
// every spelling: the watchdog's own proxy setting is meant for the watchdog, but a CGI program
// cannot tell it from a client's Proxy header (httpoxy), and some tools read the lowercase form.
// HTTP_* (and OpenFaaS's Http_*) names are the request's headers: a variable of the watchdog's or
// of a function's env so named would read as a header the client sent (HTTP_X_AUTH_USER=admin).
bool keep_base_entry(std::string_view entry, const std::unordered_set<std::string_view>& owned) {
  std::size_t equals = entry.find('=');
  if (equals == std::string_view::npos || equals == 0) return false;
  std::string_view name = entry.substr(0, equals);
  return !owned.contains(name) && !iequals(name, "HTTP_PROXY") && !name.starts_with("HTTP_") &&
         !name.starts_with("Http_") &&
         std::find(kMetaVariables.begin(), kMetaVariables.end(), name) == kMetaVariables.end();
}

}  // namespace

bool is_safe_env_header(std::string_view name) noexcept {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-';
  });
}

std::string cgi_header_variable(std::string_view name) {
  std::string variable = "HTTP_";
  for (char c : name) variable += c == '-' ? '_' : to_upper(c);
  return variable;
}

// Go's CanonicalMIMEHeaderKey, which OpenFaaS applies before replacing '-' with '_'.
std::string openfaas_header_variable(std::string_view name) {
  std::string variable = "Http_";
  bool word_start = true;
  for (char c : name) {
    variable += c == '-' ? '_' : word_start ? to_upper(c) : to_lower(c);
    word_start = c == '-';
  }
  return variable;
}

std::vector<std::string> build_cgi_env(const CgiRequest& request,
                                       const std::vector<std::string>& base) {
  std::vector<Header> fields = merge_safe_headers(request.headers);
  std::vector<Variable> vars = meta_variables(request, fields);
  append_header_variables(vars, fields);
  if (request.openfaas_variables) append_openfaas_variables(vars, request, fields);
  vars.push_back({"X_FN_REQUEST_ID", std::string(request.request_id)});

  std::unordered_set<std::string_view> owned;
  for (const Variable& var : vars) owned.insert(var.name);
  std::vector<std::string> env;
  env.reserve(base.size() + vars.size());
  std::copy_if(base.begin(), base.end(), std::back_inserter(env),
               [&](const std::string& entry) { return keep_base_entry(entry, owned); });
  for (const Variable& var : vars) env.push_back(var.name + "=" + var.value);
  return env;
}

TargetParts split_target(std::string_view target) noexcept {
  std::string_view rest = target;
  bool absolute = false;
  if (!target.starts_with('/') && target != "*") {
    // absolute-form "scheme://authority/path?query"; authority-form (CONNECT) has no path at all.
    std::size_t scheme_end = target.find("://");
    absolute = scheme_end != std::string_view::npos && scheme_end < target.find_first_of("/?");
    std::size_t path_start = absolute ? target.find_first_of("/?", scheme_end + 3) : target.size();
    rest = target.substr(std::min(path_start, target.size()));
  }
  std::size_t question = rest.find('?');
  TargetParts parts{rest.substr(0, question), {}};
  if (question != std::string_view::npos) parts.query = rest.substr(question + 1);
  // "http://host" and "http://host/" name the same resource (RFC 9112 3.2.2).
  if (absolute && parts.path.empty()) parts.path = "/";
  return parts;
}

std::string_view path_info(std::string_view path, std::string_view script_name) noexcept {
  // Should the REQUIRES be broken, the whole path is safer than a path cut at a wrong place.
  if (!path.starts_with(script_name)) return path;
  return path.substr(script_name.size());
}

}  // namespace protocol
