#include "common/http_client.h"

#include <Poco/Net/SocketAddress.h>
#include <doctest/doctest.h>
#include <sys/socket.h>

#include <memory>
#include <string>

#include "common/connect.h"
#include "common/http_server.h"

using common::HttpServer;
using common::UniqueFd;
using namespace std::chrono_literals;

namespace {

// A server on a loopback port.
struct AdoptingServer {
  explicit AdoptingServer(common::RequestHandler handler) {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
    address.host = "127.0.0.1";
    address.port = socket.address().port();
    server = std::make_unique<HttpServer>(socket, common::ServerSettings{}, std::move(handler));
    server->start();
  }
  UniqueFd connect() {
    auto fd = common::connect_to(address, 10s);
    REQUIRE(fd);
    return std::move(*fd);
  }
  common::Address address;
  std::unique_ptr<HttpServer> server;
};

common::Result<common::HttpReply> call(AdoptingServer& served, std::string_view method,
                                       std::string_view body, std::size_t limit = 1 << 20) {
  auto fd = served.connect();
  return common::round_trip(fd.get(), common::request_bytes(method, "/echo?x=1", {}, "gw", body),
                            method, std::chrono::steady_clock::now() + 30s, limit);
}

}  // namespace

TEST_CASE("http_client: parse_http_url takes http URLs only, with their host, port and target") {
  auto url = common::parse_http_url("http://127.0.0.1:9000/hook?a=1#frag");
  REQUIRE(url);
  CHECK(url->host == "127.0.0.1");
  CHECK(url->port == 9000);
  CHECK(url->target == "/hook?a=1");
  CHECK(url->authority == "127.0.0.1:9000");
  auto bare = common::parse_http_url("HTTP://example.org");
  REQUIRE(bare);
  CHECK(bare->port == 80);
  CHECK(bare->target == "/");
  auto v6 = common::parse_http_url("http://[::1]:81?q");
  REQUIRE(v6);
  CHECK(v6->host == "::1");
  CHECK(v6->target == "/?q");
  for (const char* bad : {"https://a/", "ftp://a", "http://", "http://a:0/", "http://a:70000/",
                          "http://u@a/", "http://a/b c", "http://[::1/", "a:80"})
    CHECK_MESSAGE(!common::parse_http_url(bad), bad);
}

TEST_CASE("http_client: request_bytes frames the body itself and closes the connection") {
  std::string bytes = common::request_bytes(
      "POST", "/x", {{"Content-Length", "99"}, {"Transfer-Encoding", "chunked"}, {"X-A", "1"}},
      "h:1", "body");
  CHECK(bytes ==
        "POST /x HTTP/1.1\r\nX-A: 1\r\nHost: h:1\r\nContent-Length: 4\r\nConnection: "
        "close\r\n\r\nbody");
}

TEST_CASE("http_client: a round trip gets status, headers and body") {
  AdoptingServer served([](common::ClientRequest& request, common::ClientResponse& response) {
    std::string body;
    for (;;) {
      auto piece = request.read_body(1 << 20);
      if (!piece || piece->empty()) break;
      body.append(*piece);
    }
    response.send(201, {{"X-Target", std::string(request.target())}}, "got " + body);
  });
  auto reply = call(served, "POST", "hello");
  REQUIRE(reply);
  CHECK(reply->status == 201);
  CHECK(protocol::header_value(reply->headers, "X-Target") == "/echo?x=1");
  CHECK(reply->body == "got hello");
  CHECK_FALSE(reply->truncated);
}

TEST_CASE("http_client: a chunked reply is decoded, and one past the limit cut and drained") {
  const std::string big(300 * 1024, 'x');
  AdoptingServer served([&big](common::ClientRequest&, common::ClientResponse& response) {
    if (!response.start(200, {}, {protocol::BodyKind::kChunked, 0})) return;
    if (!response.write("first,")) return;
    if (!response.write(big)) return;
    (void)response.finish();
  });
  auto whole = call(served, "GET", "");
  REQUIRE_MESSAGE(whole, (whole ? "" : whole.error().context));
  CHECK(whole->body == "first," + big);
  auto cut = call(served, "GET", "", 10);
  REQUIRE(cut);  // the whole reply was read: its end was found past the kept bytes
  CHECK(cut->body == "first,xxxx");
  CHECK(cut->truncated);
}

TEST_CASE("http_client: a peer that never answers is a timeout, one that closes is a bad gateway") {
  int ends[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, ends) == 0);
  UniqueFd mine(ends[0]);
  UniqueFd silent(ends[1]);
  auto waited = common::round_trip(mine.get(), "GET / HTTP/1.1\r\n\r\n", "GET",
                                   std::chrono::steady_clock::now() + 20ms, 100);
  REQUIRE_FALSE(waited);
  CHECK(waited.error().code == common::Error::Code::kTimeout);
  REQUIRE(::send(silent.get(), "HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\nabc", 41,
                 MSG_NOSIGNAL) == 41);
  silent.reset();
  auto cut = common::round_trip(mine.get(), "", "GET", std::chrono::steady_clock::now() + 30s, 100);
  REQUIRE_FALSE(cut);
  CHECK(cut.error().code == common::Error::Code::kBadGateway);
}
