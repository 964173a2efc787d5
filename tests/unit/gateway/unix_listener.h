// A unix listener in a temp dir for the tests of what the gateway asks its watchdogs. It never
// accepts unless answer() is called: the kernel queues connections in its backlog, as it does for
// a watchdog stopped by SIGSTOP.
#pragma once

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>

#include "common/address.h"

namespace test_support {

struct UnixListener {
  std::string dir;
  std::string path;
  int fd = -1;

  UnixListener() {
    char name[] = "/tmp/fastfn-listener-XXXXXX";
    dir = ::mkdtemp(name);
    path = dir + "/s.sock";
    fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strcpy(address.sun_path, path.c_str());
    REQUIRE(::bind(fd, reinterpret_cast<sockaddr*>(&address), sizeof(address)) == 0);
    REQUIRE(::listen(fd, 16) == 0);
  }
  ~UnixListener() {
    ::close(fd);
    ::unlink(path.c_str());
    ::rmdir(dir.c_str());
  }
  UnixListener(const UnixListener&) = delete;
  UnixListener& operator=(const UnixListener&) = delete;

  common::Address address() const { return {common::Address::Kind::kUnix, path, "", 0}; }

  // Accepts one connection, checks that its head starts with `request_line`, answers `response`
  // and closes.
  void answer(const std::string& request_line, const std::string& response) const {
    int client = ::accept4(fd, nullptr, nullptr, SOCK_CLOEXEC);
    REQUIRE(client >= 0);
    std::string request;
    char buffer[1024];
    while (request.find("\r\n\r\n") == std::string::npos) {
      ssize_t got = ::read(client, buffer, sizeof(buffer));
      if (got <= 0) break;
      request.append(buffer, static_cast<std::size_t>(got));
    }
    CHECK(request.starts_with(request_line));
    [[maybe_unused]] auto sent = ::write(client, response.data(), response.size());
    ::close(client);
  }
};

}  // namespace test_support
