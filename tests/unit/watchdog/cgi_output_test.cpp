#include "watchdog/cgi_output.h"

#include <sys/socket.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <string>

#include "common/unique_fd.h"
#include "protocol/http_parser.h"

namespace {

// A client connection over a socketpair: the CgiOutput writes the response into one end, the test
// reads it whole from the other once it is complete.
struct SocketPair {
  common::UniqueFd server, client;
  SocketPair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    server = common::UniqueFd(fds[0]);
    client = common::UniqueFd(fds[1]);
  }
};

struct Connection {
  SocketPair sockets;
  std::string buffer;
  common::PeerInfo peer{"", "", true};
  common::ClientRequest request;
  common::ClientResponse response;

  Connection()
      : request(sockets.server.get(), buffer, 0, protocol::RequestHead{"GET", "/", 1, {{"Host", "x"}}},
                {}, peer, std::chrono::milliseconds(1000)),
        response(sockets.server.get(), request, true) {}

  // Everything sent so far (the response is complete: the writer has finished).
  std::string received() {
    ::shutdown(sockets.server.get(), SHUT_WR);
    std::string all;
    char piece[65536];
    ssize_t n;
    while ((n = ::read(sockets.client.get(), piece, sizeof piece)) > 0)
      all.append(piece, static_cast<std::size_t>(n));
    return all;
  }
};

watchdog::CgiOutputSettings settings(bool cgi_headers = false) {
  return {cgi_headers, "text/plain; charset=utf-8", "req-1", 64 * 1024};
}

common::ExitStatus exited(int code) { return {code, 0}; }

protocol::ResponseHead head_of(const std::string& bytes) {
  auto parsed = protocol::parse_response_head(bytes);
  INFO("response: " << bytes.substr(0, 300) << " error: " << protocol::describe(parsed.error));
  REQUIRE(parsed.status == protocol::ParseStatus::kComplete);
  return parsed.head;
}

}  // namespace

TEST_CASE("cgi output: held output lets the exit code choose the status") {
  SUBCASE("exit 0 is 200 with the whole body and its length") {
    Connection c;
    watchdog::CgiOutput output(c.response, settings());
    REQUIRE(output.feed("hello "));
    REQUIRE(output.feed("world"));
    REQUIRE(output.finish(exited(0), ""));
    CHECK_FALSE(output.streaming());
    std::string bytes = c.received();
    auto head = head_of(bytes);
    CHECK(head.status == 200);
    CHECK(protocol::header_value(head.headers, "Content-Length") == "11");
    CHECK(protocol::header_value(head.headers, "X-Fn-Exit-Code") == "0");
    CHECK(bytes.ends_with("\r\n\r\nhello world"));
  }
  SUBCASE("a non-zero exit is 500 with the output, whatever came before") {
    Connection c;
    watchdog::CgiOutput output(c.response, settings());
    REQUIRE(output.feed("partial"));
    REQUIRE(output.finish(exited(3), ""));
    auto head = head_of(c.received());
    CHECK(head.status == 500);
    CHECK(protocol::header_value(head.headers, "X-Fn-Exit-Code") == "3");
  }
}

TEST_CASE("cgi output: past the buffer limit the body streams and the exit code is a trailer") {
  Connection c;
  watchdog::CgiOutput output(c.response, settings());
  std::string big(64 * 1024 + 1, 'x');
  REQUIRE(output.feed(big));
  CHECK(output.streaming());  // nothing more is held once the limit is passed
  REQUIRE(output.feed("tail"));
  REQUIRE(output.finish(exited(7), ""));
  std::string bytes = c.received();
  auto head = head_of(bytes);
  CHECK(head.status == 200);  // already sent when the program was still running
  CHECK(protocol::iequals(protocol::header_value(head.headers, "Transfer-Encoding"), "chunked"));
  CHECK(bytes.find("X-Fn-Exit-Code: 7\r\n") != std::string::npos);  // in the trailer
  CHECK(bytes.ends_with("\r\n\r\n"));
}

TEST_CASE("cgi output: with cgi headers the program's Status and reason phrase are kept") {
  Connection c;
  watchdog::CgiOutput output(c.response, settings(true));
  REQUIRE(output.feed("Status: 418 I'm a teapot\r\nContent-Type: text/plain\r\n\r\nshort and stout"));
  REQUIRE(output.finish(exited(0), ""));
  auto head = head_of(c.received());
  CHECK(head.status == 418);
  CHECK(head.reason == "I'm a teapot");
}

TEST_CASE("cgi output: broken headers from a program that exited 0 are a 502 left to the caller") {
  Connection c;
  watchdog::CgiOutput output(c.response, settings(true));
  REQUIRE(output.feed("this is not a header block\r\n\r\n"));
  auto finished = output.finish(exited(0), "");
  REQUIRE_FALSE(finished);
  CHECK(finished.error().code == common::Error::Code::kBadGateway);
  CHECK_FALSE(c.response.started());
  CHECK(output.broken().has_value());
}
