#include "protocol/cgi_env.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <map>
#include <optional>

using namespace protocol;

namespace {

std::multimap<std::string, std::string> to_map(const std::vector<std::string>& env) {
  std::multimap<std::string, std::string> map;
  for (const std::string& entry : env) {
    std::size_t equals = entry.find('=');
    REQUIRE(equals != std::string::npos);
    map.emplace(entry.substr(0, equals), entry.substr(equals + 1));
  }
  return map;
}

// The one value of `name`; nullopt when absent. Fails the test when the name appears twice.
std::optional<std::string> get(const std::vector<std::string>& env, const std::string& name) {
  auto map = to_map(env);
  CHECK(map.count(name) <= 1);
  auto found = map.find(name);
  return found == map.end() ? std::nullopt : std::optional(found->second);
}

struct Fixture {
  Headers headers = {{"Host", "example:8080"},        {"Content-Type", "application/json"},
                     {"Content-Length", "5"},         {"x-forwarded-for", "10.0.0.1"},
                     {"X-Forwarded-For", "10.0.0.2"}, {"Authorization", "Bearer t"}};
  CgiRequest request;

  Fixture() {
    request.method = "POST";
    request.target = "/api/users/a%20b/c?q=1&r=%20";
    request.script_name = "/api/users";
    request.server_name = "example";
    request.server_port = "8080";
    request.remote_addr = "127.0.0.1";
    request.remote_port = "50000";
    request.request_id = "req-1";
    request.headers = &headers;
    request.has_body = true;
    request.content_length = 5;
  }
};

}  // namespace

TEST_CASE("cgi env: RFC 3875 meta-variables") {
  Fixture f;
  auto env = build_cgi_env(f.request, {});
  CHECK(get(env, "GATEWAY_INTERFACE") == "CGI/1.1");
  CHECK(get(env, "REQUEST_METHOD") == "POST");
  CHECK(get(env, "SCRIPT_NAME") == "/api/users");
  CHECK(get(env, "PATH_INFO") == "/a b/c");
  CHECK(get(env, "QUERY_STRING") == "q=1&r=%20");
  CHECK(get(env, "REQUEST_URI") == "/api/users/a%20b/c?q=1&r=%20");
  CHECK(get(env, "CONTENT_LENGTH") == "5");
  CHECK(get(env, "CONTENT_TYPE") == "application/json");
  CHECK(get(env, "SERVER_PROTOCOL") == "HTTP/1.1");
  CHECK(get(env, "SERVER_SOFTWARE") == "fastfn");
  CHECK(get(env, "SERVER_NAME") == "example");
  CHECK(get(env, "SERVER_PORT") == "8080");
  CHECK(get(env, "REMOTE_ADDR") == "127.0.0.1");
  CHECK(get(env, "REMOTE_PORT") == "50000");
  CHECK(get(env, "X_FN_REQUEST_ID") == "req-1");
}

TEST_CASE("cgi env: header variables") {
  Fixture f;
  auto env = build_cgi_env(f.request, {});
  CHECK(get(env, "HTTP_HOST") == "example:8080");
  CHECK(get(env, "HTTP_X_FORWARDED_FOR") == "10.0.0.1, 10.0.0.2");
  CHECK(get(env, "HTTP_AUTHORIZATION") == "Bearer t");
  CHECK(get(env, "HTTP_CONTENT_TYPE") == std::nullopt);
  CHECK(get(env, "HTTP_CONTENT_LENGTH") == std::nullopt);
}

TEST_CASE("cgi env: OpenFaaS variables") {
  Fixture f;
  auto env = build_cgi_env(f.request, {});
  CHECK(get(env, "Http_Method") == "POST");
  CHECK(get(env, "Http_Path") == "/api/users/a%20b/c");
  CHECK(get(env, "Http_Query") == "q=1&r=%20");
  CHECK(get(env, "Http_Host") == "example:8080");
  CHECK(get(env, "Http_X_Forwarded_For") == "10.0.0.1, 10.0.0.2");
  CHECK(get(env, "Http_Content_Type") == "application/json");
  CHECK(get(env, "Http_Content_Length") == "5");
  CHECK(get(env, "Http_Authorization") == "Bearer t");
  SUBCASE("none with OpenFaaS's cgi_headers off, the CGI ones kept") {
    f.request.openfaas_variables = false;
    auto without = build_cgi_env(f.request, {});
    CHECK(std::none_of(without.begin(), without.end(),
                       [](const std::string& entry) { return entry.starts_with("Http_"); }));
    CHECK(get(without, "HTTP_AUTHORIZATION") == "Bearer t");
    CHECK(get(without, "REQUEST_METHOD") == "POST");
  }
}

TEST_CASE("cgi env: a request without body, query or content type") {
  Headers headers;
  CgiRequest request;
  request.method = "GET";
  request.target = "/";
  request.headers = &headers;
  auto env = build_cgi_env(request, {"CONTENT_LENGTH=12", "CONTENT_TYPE=text/plain"});
  CHECK(get(env, "CONTENT_LENGTH") == std::nullopt);
  CHECK(get(env, "CONTENT_TYPE") == std::nullopt);
  CHECK(get(env, "QUERY_STRING") == "");
  CHECK(get(env, "Http_Query") == "");
  CHECK(get(env, "SCRIPT_NAME") == "");
  CHECK(get(env, "PATH_INFO") == "/");
  request.headers = nullptr;
  CHECK(get(build_cgi_env(request, {}), "REQUEST_METHOD") == "GET");
}

TEST_CASE("cgi env: PATH_INFO is decoded unless decoding is unsafe") {
  Headers headers;
  CgiRequest request;
  request.headers = &headers;
  auto path_info_for = [&](std::string_view target) {
    request.target = target;
    return get(build_cgi_env(request, {}), "PATH_INFO");
  };
  CHECK(path_info_for("/a%2Fb%c3%A9+c") == "/a/b\xc3\xa9+c");
  CHECK(path_info_for("/nul%00byte") == "/nul%00byte");
  CHECK(path_info_for("/bad%zz") == "/bad%zz");
  CHECK(path_info_for("/cut%4") == "/cut%4");
  CHECK(path_info_for("/cut%") == "/cut%");
}

TEST_CASE("cgi env: httpoxy") {
  Fixture f;
  f.headers.push_back({"Proxy", "http://evil:8080"});
  f.headers.push_back({"proxy", "http://evil:8081"});
  auto env = build_cgi_env(f.request, {"HTTP_PROXY=http://mine:3128", "http_proxy=http://mine:3128",
                                       "HTTPS_PROXY=http://mine:3129", "NO_PROXY=localhost"});
  auto map = to_map(env);
  for (const auto& entry : map) {
    CAPTURE(entry.first);
    CHECK_FALSE(entry.second.starts_with("http://evil"));
    CHECK_FALSE(iequals(entry.first, "HTTP_PROXY"));
  }
  CHECK(get(env, "HTTPS_PROXY") == "http://mine:3129");
  CHECK(get(env, "NO_PROXY") == "localhost");
}

TEST_CASE("cgi env: unsafe header names are dropped") {
  Fixture f;
  f.headers = {{"X_Underscore", "1"}, {"X.Dot", "2"}, {"X Space", "3"}, {"", "4"}, {"X-Ok-1", "5"}};
  auto env = build_cgi_env(f.request, {});
  int header_vars = 0;
  for (const auto& [name, value] : to_map(env)) {
    if (name.starts_with("HTTP_") || (name.starts_with("Http_") && name != "Http_Method" &&
                                      name != "Http_Path" && name != "Http_Query")) {
      ++header_vars;
    }
  }
  CHECK(header_vars == 2);
  CHECK(get(env, "HTTP_X_OK_1") == "5");
  CHECK(get(env, "Http_X_Ok_1") == "5");
  CHECK(is_safe_env_header("X-Forwarded-For"));
  CHECK_FALSE(is_safe_env_header(""));
  CHECK_FALSE(is_safe_env_header("X_Y"));
  CHECK_FALSE(is_safe_env_header("X=Y"));
}

TEST_CASE("cgi env: the request wins over the base environment") {
  Fixture f;
  f.headers.push_back({"Method", "DELETE"});
  f.headers.push_back({"path", "/etc"});
  f.headers.push_back({"QUERY", "x"});
  std::vector<std::string> base = {"PATH=/usr/bin",
                                   "REQUEST_METHOD=GET",
                                   "HTTP_HOST=spoof",
                                   "Http_Method=PUT",
                                   "REMOTE_USER=admin",
                                   "AUTH_TYPE=Basic",
                                   "X_FN_REQUEST_ID=old",
                                   "malformed",
                                   "=nameless",
                                   "HOME=/root",
                                   "EMPTY="};
  auto env = build_cgi_env(f.request, base);
  CHECK(env[0] == "PATH=/usr/bin");
  CHECK(env[1] == "HOME=/root");
  CHECK(env[2] == "EMPTY=");
  CHECK(get(env, "REQUEST_METHOD") == "POST");
  CHECK(get(env, "HTTP_HOST") == "example:8080");
  CHECK(get(env, "Http_Method") == "POST");
  CHECK(get(env, "Http_Path") == "/api/users/a%20b/c");
  CHECK(get(env, "Http_Query") == "q=1&r=%20");
  CHECK(get(env, "HTTP_METHOD") == "DELETE");
  CHECK(get(env, "REMOTE_USER") == std::nullopt);
  CHECK(get(env, "AUTH_TYPE") == std::nullopt);
  CHECK(get(env, "X_FN_REQUEST_ID") == "req-1");
  CHECK(std::none_of(env.begin(), env.end(), [](const std::string& entry) {
    return entry == "malformed" || entry.starts_with("=");
  }));
}

TEST_CASE("cgi env: header variable names") {
  CHECK(cgi_header_variable("X-Forwarded-For") == "HTTP_X_FORWARDED_FOR");
  CHECK(cgi_header_variable("accept") == "HTTP_ACCEPT");
  CHECK(openfaas_header_variable("x-forwarded-for") == "Http_X_Forwarded_For");
  CHECK(openfaas_header_variable("X-FORWARDED-FOR") == "Http_X_Forwarded_For");
  CHECK(openfaas_header_variable("content-md5") == "Http_Content_Md5");
  CHECK(openfaas_header_variable("x-1abc") == "Http_X_1abc");
}

TEST_CASE("cgi env: split_target") {
  auto check = [](std::string_view target, std::string_view path, std::string_view query) {
    CAPTURE(target);
    TargetParts parts = split_target(target);
    CHECK(parts.path == path);
    CHECK(parts.query == query);
  };
  check("/a/b?x=1", "/a/b", "x=1");
  check("/a/b", "/a/b", "");
  check("/a?b?c", "/a", "b?c");
  check("/?", "/", "");
  check("*", "*", "");
  check("http://host:80/p/q?x", "/p/q", "x");
  check("http://host", "/", "");
  check("https://host?x=1", "/", "x=1");
  check("example.com:443", "", "");
}

TEST_CASE("cgi env: path_info") {
  CHECK(path_info("/api/users/x", "/api/users") == "/x");
  CHECK(path_info("/api/users", "/api/users") == "");
  CHECK(path_info("/anything", "") == "/anything");
  CHECK(path_info("/other", "/api") == "/other");
}
