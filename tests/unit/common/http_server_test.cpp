#include "common/http_server.h"

#include <Poco/Net/SocketAddress.h>
#include <doctest/doctest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <string>
#include <thread>
#include <vector>

#include "tests/unit/eventually.h"

using common::connection_limit;
using common::HttpServer;
using common::UniqueFd;
using test_support::eventually;
using namespace std::chrono_literals;

namespace {

enum class Body { kIgnored, kEchoed };

// A server on 127.0.0.1 with a handler that answers "ok", and either never reads the body or reads
// it and answers "ok" and the body.
struct Served {
  explicit Served(common::ServerSettings settings = {}, Body body = Body::kIgnored) {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
    port = socket.address().port();
    server = std::make_unique<HttpServer>(
        socket, settings, [this, body](common::ClientRequest& request, auto& response) {
          ++handled;
          std::string echoed;
          while (body == Body::kEchoed) {
            auto piece = request.read_body(1 << 20);
            if (!piece) return response.abort();
            if (piece->empty()) break;
            echoed.append(*piece);
          }
          response.send(200, {}, "ok" + echoed);
        });
    server->start();
  }
  UniqueFd connect() const {
    UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(port);
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) == 0);
    timeval tv{10, 0};
    ::setsockopt(fd.get(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    return fd;
  }
  std::uint16_t port = 0;
  std::atomic<int> handled{0};
  std::unique_ptr<HttpServer> server;
};

void send_text(int fd, std::string_view text) {
  REQUIRE(::send(fd, text.data(), text.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(text.size()));
}

// Reads until `count` responses ("HTTP/1.1 " lines) arrived, or the peer closed.
std::string read_responses(int fd, int count) {
  std::string all;
  char piece[4096];
  auto responses = [&] {
    int n = 0;
    for (auto at = all.find("HTTP/1.1 "); at != std::string::npos;
         at = all.find("HTTP/1.1 ", at + 1))
      ++n;
    return n;
  };
  while (responses() < count ||
         all.find("\r\n\r\nok", all.rfind("HTTP/1.1 ")) == std::string::npos) {
    ssize_t n = ::recv(fd, piece, sizeof piece, 0);
    if (n <= 0) break;
    all.append(piece, static_cast<std::size_t>(n));
  }
  return all;
}

}  // namespace

TEST_CASE("http_server: connection_limit keeps a reserve of fds below the soft limit") {
  CHECK(connection_limit(10'000, 1'048'576) == 10'000);
  CHECK(connection_limit(10'000, 1024) == 1024 - 64);
  CHECK(connection_limit(10'000, 256) == 192);
  CHECK(connection_limit(50, 256) == 50);
  CHECK(connection_limit(10'000, 64) == 1);  // never none at all
  CHECK(connection_limit(10'000, 0) == 1);
  CHECK(connection_limit(0, 1024) == 1);
}

TEST_CASE("http_server: a good request is served beside idle connections, which hold no request") {
  Served served;
  std::vector<UniqueFd> idle;
  for (int i = 0; i < 200; ++i) idle.push_back(served.connect());
  REQUIRE(eventually([&] { return served.server->current_connections() == 200; }));
  auto good = served.connect();
  send_text(good.get(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(read_responses(good.get(), 1).starts_with("HTTP/1.1 200 "));
  CHECK(eventually([&] { return served.server->open_requests() == 0; }));
}

TEST_CASE("http_server: a body the handler left unread is dropped, and the next request served") {
  Served served;
  auto fd = served.connect();
  SUBCASE("a large one, answered before it arrived (it streams to the handler)") {
    send_text(fd.get(), "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n12345");
    std::string first = read_responses(fd.get(), 1);
    CHECK(first.starts_with("HTTP/1.1 200 "));
    CHECK(first.find("Connection: close") == std::string::npos);
    send_text(fd.get(), std::string(100000 - 5, 'b') + "GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
  }
  SUBCASE("a chunked one whose first chunk announces over 64 KiB (it streams too)") {
    send_text(fd.get(),
              "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n20000\r\n123");
    CHECK(read_responses(fd.get(), 1).starts_with("HTTP/1.1 200 "));
    send_text(fd.get(), std::string(0x20000 - 3, 'b') + "\r\n0\r\n\r\nGET /b HTTP/1.1\r\nHost: x\r\n\r\n");
  }
  SUBCASE("a small one, received before the handler ran") {
    send_text(fd.get(), "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345");
    send_text(fd.get(), "67890GET /b HTTP/1.1\r\nHost: x\r\n\r\n");
    CHECK(read_responses(fd.get(), 1).starts_with("HTTP/1.1 200 "));
  }
  CHECK(read_responses(fd.get(), 1).starts_with("HTTP/1.1 200 "));
  CHECK(served.handled == 2);
}

// One worker thread: a request it served while another client's body was still on its way proves
// that body held no thread (were it held, this request would wait for the other's read timeout,
// longer than the test socket's receive timeout).
TEST_CASE("http_server: a small body that trickles in is received before a thread serves it") {
  common::ServerSettings settings;
  settings.max_threads = 1;
  settings.read_timeout = 60s;
  Served served(settings, Body::kEchoed);
  auto slow = served.connect();
  std::string rest;
  SUBCASE("with a Content-Length") {
    send_text(slow.get(), "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345");
    rest = "67890";
  }
  SUBCASE("chunked") {
    send_text(slow.get(),
              "POST /a HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\r\n12345\r\n");
    rest = "5\r\n67890\r\n0\r\n\r\n";
  }
  SUBCASE("held back for 100 Continue, which the loop sends, once") {
    send_text(slow.get(),
              "POST /a HTTP/1.1\r\nHost: x\r\nExpect: 100-continue\r\nContent-Length: 10\r\n\r\n");
    std::string interim;
    char piece[256];
    while (interim.find("\r\n\r\n") == std::string::npos) {
      ssize_t n = ::recv(slow.get(), piece, sizeof piece, 0);
      REQUIRE(n > 0);
      interim.append(piece, static_cast<std::size_t>(n));
    }
    CHECK(interim == "HTTP/1.1 100 Continue\r\n\r\n");  // the answer below has no second one
    rest = "1234567890";
  }
  REQUIRE(eventually([&] { return served.server->open_requests() == 1; }));
  auto good = served.connect();
  send_text(good.get(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  CHECK(read_responses(good.get(), 1).starts_with("HTTP/1.1 200 "));
  CHECK(served.handled == 1);
  send_text(slow.get(), rest);
  std::string answer = read_responses(slow.get(), 1);
  CHECK(answer.starts_with("HTTP/1.1 200 "));
  CHECK(answer.ends_with("\r\n\r\nok1234567890"));
  CHECK(served.handled == 2);
}

TEST_CASE("http_server: a small body not whole within the read timeout is answered 408") {
  common::ServerSettings settings;
  settings.read_timeout = 200ms;
  Served served(settings, Body::kEchoed);
  auto slow = served.connect();
  send_text(slow.get(), "POST /a HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\n12345");
  std::string answer = read_responses(slow.get(), 1);  // until the server closes
  CHECK(answer.starts_with("HTTP/1.1 408 "));
  CHECK(answer.find("request body not received in time") != std::string::npos);
  CHECK(served.handled == 0);
  CHECK(eventually([&] { return served.server->current_connections() == 0; }));
}

TEST_CASE("http_server: at max_connections more connections wait until one closes") {
  common::ServerSettings settings;
  settings.max_connections = 2;
  Served served(settings);
  auto one = served.connect();
  auto two = served.connect();
  REQUIRE(eventually([&] { return served.server->current_connections() == 2; }));
  auto three = served.connect();  // the kernel's backlog takes it
  send_text(three.get(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  std::this_thread::sleep_for(50ms);  // a bounded look for what must not happen
  CHECK(served.handled == 0);
  CHECK(served.server->current_connections() == 2);
  one.reset();
  CHECK(read_responses(three.get(), 1).starts_with("HTTP/1.1 200 "));
}

TEST_CASE("http_server: stop_accepting refuses new connections at once") {
  Served served;
  auto before = served.connect();
  // Accepted by the server, not only by the kernel: what waits in the backlog goes with the socket.
  REQUIRE(eventually([&] { return served.server->current_connections() == 1; }));
  served.server->stop_accepting();
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(served.port);
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  CHECK(::connect(fd.get(), reinterpret_cast<sockaddr*>(&address), sizeof address) != 0);
  CHECK(errno == ECONNREFUSED);
  send_text(before.get(), "GET / HTTP/1.1\r\nHost: x\r\n\r\n");  // open ones go on
  CHECK(read_responses(before.get(), 1).starts_with("HTTP/1.1 200 "));
}

TEST_CASE("http_server: repeat ticks on the loop, again and again, from start() on") {
  Poco::Net::ServerSocket socket(Poco::Net::SocketAddress("127.0.0.1", 0));
  HttpServer server(socket, {}, [](auto&, auto& response) { response.send(200, {}, "ok"); });
  std::atomic<int> ticks{0};
  std::atomic<bool> off_loop{false};
  const auto test_thread = std::this_thread::get_id();
  server.repeat(1ms, [&] {
    if (std::this_thread::get_id() == test_thread) off_loop = true;
    ++ticks;
  });
  CHECK(ticks == 0);  // the loop has not turned yet
  server.start();
  CHECK(eventually([&] { return ticks >= 5; }));
  server.abort_connections();
  CHECK_FALSE(off_loop);
}
