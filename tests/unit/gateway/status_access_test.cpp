#include "gateway/status_access.h"

#include <doctest/doctest.h>

namespace gateway {
namespace {

using Kind = StatusVerdict::Kind;

Kind verdict(const StatusAccess& access, StatusScope scope, bool loopback, std::string_view host,
             std::string_view authorization = "", bool unix_peer = false) {
  return status_verdict(access, scope, loopback, unix_peer, host, authorization).kind;
}

TEST_CASE("host_of drops the port and brackets and lower-cases") {
  CHECK(host_of("Example.COM:8080") == "example.com");
  CHECK(host_of("example.com") == "example.com");
  CHECK(host_of("[::1]:9000") == "::1");
  CHECK(host_of("[fe80::1]") == "fe80::1");
  CHECK(host_of("127.0.0.1:80") == "127.0.0.1");
  CHECK(host_of("localhost.:80") == "localhost");
  CHECK(host_of("") == "");
}

TEST_CASE("by default only loopback and unix peers read the gateway's endpoints") {
  StatusAccess access;
  CHECK(verdict(access, StatusScope::kRead, true, "127.0.0.1:8080") == Kind::kAllowed);
  CHECK(verdict(access, StatusScope::kAdmin, true, "localhost:8080") == Kind::kAllowed);
  CHECK(verdict(access, StatusScope::kRead, false, "", "", true) == Kind::kAllowed);
  auto remote = status_verdict(access, StatusScope::kRead, false, false, "10.0.0.5:8080", "");
  CHECK(remote.kind == Kind::kForbidden);
  CHECK(remote.reason.find("FN_STATUS_REMOTE") != std::string::npos);
  CHECK(verdict(access, StatusScope::kAdmin, false, "10.0.0.5:8080") == Kind::kForbidden);
}

TEST_CASE("FN_STATUS_REMOTE opens the reads, FN_CONSOLE_REMOTE the console and reload") {
  StatusAccess reads;
  reads.remote_reads = true;
  CHECK(verdict(reads, StatusScope::kRead, false, "10.0.0.5:8080") == Kind::kAllowed);
  CHECK(verdict(reads, StatusScope::kAdmin, false, "10.0.0.5:8080") == Kind::kForbidden);
  StatusAccess admin;
  admin.remote_reads = admin.remote_admin = true;
  CHECK(verdict(admin, StatusScope::kAdmin, false, "10.0.0.5:8080") == Kind::kAllowed);
}

TEST_CASE("a rebinding page's Host is refused even from loopback") {
  StatusAccess access;
  access.remote_reads = true;
  CHECK(verdict(access, StatusScope::kRead, true, "attacker.example:8080") == Kind::kForbidden);
  CHECK(verdict(access, StatusScope::kRead, false, "attacker.example") == Kind::kForbidden);
  CHECK(verdict(access, StatusScope::kRead, true, "app.localhost:8080") == Kind::kAllowed);
  CHECK(verdict(access, StatusScope::kRead, true, "[::1]:8080") == Kind::kAllowed);
  CHECK(verdict(access, StatusScope::kRead, true, "") == Kind::kAllowed);  // HTTP/1.0
  // No browser reaches a unix socket: curl --unix-socket sends its own Host.
  CHECK(verdict(access, StatusScope::kRead, false, "anything", "", true) == Kind::kAllowed);
  access.hosts = parse_status_hosts("Gw.Internal, status.example.com");
  CHECK(verdict(access, StatusScope::kRead, true, "gw.internal:8080") == Kind::kAllowed);
  CHECK(verdict(access, StatusScope::kRead, true, "STATUS.example.com") == Kind::kAllowed);
  CHECK(verdict(access, StatusScope::kRead, true, "example.com") == Kind::kForbidden);
}

TEST_CASE("the bearer token opens everything from anywhere, and a wrong one is 401") {
  StatusAccess access;
  access.token = "s3cret-token";
  CHECK(verdict(access, StatusScope::kAdmin, false, "gw.example", "Bearer s3cret-token") ==
        Kind::kAllowed);
  CHECK(verdict(access, StatusScope::kRead, false, "10.0.0.5", "bearer  s3cret-token ") ==
        Kind::kAllowed);
  CHECK(verdict(access, StatusScope::kRead, false, "10.0.0.5", "Bearer s3cret-tokem") ==
        Kind::kUnauthorized);
  CHECK(verdict(access, StatusScope::kRead, false, "10.0.0.5", "Bearer s3cret") ==
        Kind::kUnauthorized);
  CHECK(verdict(access, StatusScope::kRead, false, "10.0.0.5", "Basic czNjcmV0") ==
        Kind::kUnauthorized);
  CHECK(verdict(access, StatusScope::kRead, false, "10.0.0.5") == Kind::kUnauthorized);
  CHECK(verdict(access, StatusScope::kRead, true, "127.0.0.1") == Kind::kAllowed);
}

TEST_CASE("parse_status_hosts splits on commas and spaces and keeps the names alone") {
  CHECK(parse_status_hosts("") == std::vector<std::string>{});
  CHECK(parse_status_hosts("a.example,, B.example:80  c") ==
        std::vector<std::string>{"a.example", "b.example", "c"});
}

}  // namespace
}  // namespace gateway
