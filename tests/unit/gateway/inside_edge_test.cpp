#include "gateway/inside_edge.h"

#include <doctest/doctest.h>
#include <poll.h>
#include <sys/stat.h>

#include <atomic>
#include <vector>
#include <thread>

#include "tests/unit/eventually.h"

namespace gateway {
namespace {

StoredCall call_of(std::string method, std::string target, protocol::Headers headers,
                   std::string body) {
  StoredCall stored;
  stored.call.id = "c1";
  stored.call.function = "f";
  stored.call.method = std::move(method);
  stored.call.target = std::move(target);
  stored.call.headers = std::move(headers);
  stored.call.body = std::move(body);
  return stored;
}

std::string header(const protocol::Headers& headers, std::string_view name) {
  const auto* found = protocol::find_header(headers, name);
  return found ? found->value : "<none>";
}

TEST_CASE("inside_edge: the handler gets the stored request whole and its answer is kept") {
  InsideEdge edge(
      [](common::ClientRequest& request, common::ClientResponse& response) {
        auto body = request.read_whole_body(1 << 20);
        REQUIRE(body);
        const auto& headers = request.head().headers;
        std::string seen = std::string(request.method()) + " " + std::string(request.target()) +
                           " host=" + header(headers, "Host") + " length=" +
                           header(headers, "Content-Length") + " te=" +
                           header(headers, "Transfer-Encoding") + " expect=" +
                           header(headers, "Expect") + " x=" + header(headers, "X-A") +
                           " unix=" + (request.peer().unix_socket ? "yes" : "no") + " body=" + *body;
        response.send(201, {{"Content-Type", "text/plain"}, {"X-B", "2"}}, seen);
      },
      1 << 20);
  auto reply = edge.run(call_of("POST", "/f/x?q=1",
                                {{"X-A", "1"},
                                 {"Transfer-Encoding", "chunked"},
                                 {"Expect", "100-continue"},
                                 {"Content-Length", "99"}},
                                "hello"));
  REQUIRE(reply);
  CHECK(reply->status == 201);
  CHECK(reply->body ==
        "POST /f/x?q=1 host=localhost length=5 te=<none> expect=<none> x=1 unix=yes body=hello");
  CHECK(header(reply->headers, "Content-Type") == "text/plain");
  CHECK(header(reply->headers, "X-B") == "2");
  CHECK(!reply->truncated);
}

TEST_CASE("inside_edge: a streamed answer is assembled, its trailers kept, its excess dropped") {
  InsideEdge edge(
      [](common::ClientRequest&, common::ClientResponse& response) {
        REQUIRE(response.start(200, {}, {protocol::BodyKind::kChunked, 0}));
        for (int i = 0; i < 4; ++i) REQUIRE(response.write("abcd"));
        REQUIRE(response.finish({{"X-Fn-Exit-Code", "3"}}));
      },
      10);
  auto reply = edge.run(call_of("GET", "/f", {{"Host", "gw.example"}}, ""));
  REQUIRE(reply);
  CHECK(reply->body == "abcdabcdab");
  CHECK(reply->truncated);
  CHECK(header(reply->headers, "X-Fn-Exit-Code") == "3");
}

TEST_CASE("inside_edge: an answer cut off, or never finished, is no reply") {
  InsideEdge cut(
      [](common::ClientRequest&, common::ClientResponse& response) {
        REQUIRE(response.start(200, {}, {protocol::BodyKind::kLength, 10}));
        REQUIRE(response.write("abc"));
        response.abort();
      },
      1 << 20);
  auto reply = cut.run(call_of("GET", "/f", {}, ""));
  REQUIRE(!reply);
  CHECK(reply.error().code == common::Error::Code::kBadGateway);
  InsideEdge unfinished(
      [](common::ClientRequest&, common::ClientResponse& response) {
        REQUIRE(response.start(200, {}, {protocol::BodyKind::kChunked, 0}));
      },
      1 << 20);
  CHECK(!unfinished.run(call_of("GET", "/f", {}, "")));
}

TEST_CASE("inside_edge: a run that ended whole leaves its socket, untouched, to the next run") {
  std::vector<ino_t> sockets;
  bool cut = false;
  InsideEdge edge(
      [&](common::ClientRequest& request, common::ClientResponse& response) {
        struct stat about{};
        REQUIRE(::fstat(request.fd(), &about) == 0);
        sockets.push_back(about.st_ino);
        pollfd pfd{request.fd(), POLLIN | POLLRDHUP, 0};
        CHECK(::poll(&pfd, 1, 0) == 0);  // nothing to read and no hang-up: as new
        if (cut)
          response.abort();
        else
          response.send(200, {}, "ok");
      },
      1 << 20);
  REQUIRE(edge.run(call_of("GET", "/f", {}, "")));
  REQUIRE(edge.run(call_of("GET", "/f", {}, "")));
  cut = true;
  REQUIRE(!edge.run(call_of("GET", "/f", {}, "")));
  cut = false;
  REQUIRE(edge.run(call_of("GET", "/f", {}, "")));
  REQUIRE(sockets.size() == 4);
  CHECK(sockets[1] == sockets[0]);
  CHECK(sockets[2] == sockets[0]);
  CHECK(sockets[3] != sockets[0]);  // a cut run's socket is never used again
}

TEST_CASE("inside_edge: abort_runs ends the runs in flight, as a client gone, and refuses more") {
  std::atomic<bool> waiting{false};
  // What the proxy does while a function works: it polls the client's socket for its hang-up.
  InsideEdge edge(
      [&](common::ClientRequest& request, common::ClientResponse& response) {
        pollfd pfd{request.fd(), POLLIN | POLLRDHUP, 0};
        waiting = true;
        REQUIRE(::poll(&pfd, 1, 60'000) == 1);
        CHECK(request.peer_gone());
        response.abort();
      },
      1 << 20);
  std::optional<common::Result<common::HttpReply>> reply;
  std::thread run([&] { reply = edge.run(call_of("GET", "/f", {}, "")); });
  REQUIRE(test_support::eventually([&] { return waiting.load(); }));
  edge.abort_runs();
  run.join();
  REQUIRE(reply);
  CHECK(!*reply);
  auto later = edge.run(call_of("GET", "/f", {}, ""));
  REQUIRE(!later);
  CHECK(later.error().code == common::Error::Code::kUnavailable);
}

}  // namespace
}  // namespace gateway
