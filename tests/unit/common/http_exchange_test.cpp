#include "common/http_exchange.h"

#include <sys/socket.h>

#include <cerrno>
#include <doctest/doctest.h>

#include "common/unique_fd.h"

namespace {

using common::ClientRequest;
using common::ClientResponse;

struct SocketPair {
  common::UniqueFd server, client;
  SocketPair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    server.reset(fds[0]);
    client.reset(fds[1]);
  }
  // How many bytes the client could read now, without waiting.
  long readable() const {
    char buffer[4096];
    ssize_t n = ::recv(client.get(), buffer, sizeof buffer, MSG_DONTWAIT | MSG_PEEK);
    return n < 0 && errno == EAGAIN ? 0 : n;
  }
};

struct Exchange {
  SocketPair sockets;
  std::string buffer;
  common::PeerInfo peer;
  ClientRequest request{sockets.server.get(), buffer, 0,
                        protocol::RequestHead{"GET", "/", 1, {}},
                        protocol::BodyFraming{}, peer, std::chrono::milliseconds(1000)};
  ClientResponse response{sockets.server.get(), request, true};
};

}  // namespace

TEST_CASE("http_exchange: on_complete runs once, before a whole response leaves") {
  Exchange exchange;
  int calls = 0;
  long readable_then = -1;
  exchange.response.on_complete([&] {
    ++calls;
    readable_then = exchange.sockets.readable();
  });
  REQUIRE(exchange.response.send(200, {}, "hello"));
  CHECK(calls == 1);
  CHECK(readable_then == 0);
  CHECK(exchange.sockets.readable() > 0);
  exchange.response.abort();
  CHECK(calls == 1);
}

TEST_CASE("http_exchange: on_complete runs before the last chunk of a streamed response") {
  Exchange exchange;
  long readable_then = -1;
  exchange.response.on_complete([&] { readable_then = exchange.sockets.readable(); });
  REQUIRE(exchange.response.start(200, {}, {protocol::BodyKind::kChunked, 0}));
  REQUIRE(exchange.response.write("part"));
  long before_finish = exchange.sockets.readable();
  CHECK(before_finish > 0);
  REQUIRE(exchange.response.finish());
  CHECK(readable_then == before_finish);  // the last chunk had not left yet
  CHECK(exchange.sockets.readable() > before_finish);
}

TEST_CASE("http_exchange: on_complete runs when the response is aborted") {
  Exchange exchange;
  int calls = 0;
  exchange.response.on_complete([&] { ++calls; });
  exchange.response.abort();
  CHECK(calls == 1);
}
