#include "common/listener.h"

#include <fcntl.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>

#include "common/unique_fd.h"

using common::Address;
using common::ListenError;

namespace {

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/fastfn-listener-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

Address unix_address(const std::string& path) {
  Address address;
  address.kind = Address::Kind::kUnix;
  address.path = path;
  return address;
}

Address tcp_address(const std::string& host, std::uint16_t port) {
  Address address;
  address.host = host;
  address.port = port;
  return address;
}

mode_t mode_of(const std::string& path) {
  struct stat st {};
  REQUIRE(::lstat(path.c_str(), &st) == 0);
  return st.st_mode;
}

// Leaves a socket file behind with nobody listening on it, as a killed process does.
void make_stale_socket(const std::string& path) {
  common::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  REQUIRE(fd.valid());
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  REQUIRE(::bind(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0);
}

std::string listen_error(const Address& address) {
  try {
    common::open_listener(address);
  } catch (const ListenError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("listener: a unix socket is created 0600 and accepts connections") {
  TempDir dir;
  std::string path = dir.path + "/fn.sock";
  auto socket = common::open_listener(unix_address(path));
  mode_t mode = mode_of(path);
  CHECK(S_ISSOCK(mode));
  CHECK((mode & 07777) == 0600);
  CHECK(common::unix_socket_in_use(path));
}

TEST_CASE("listener: a stale socket file is replaced") {
  TempDir dir;
  std::string path = dir.path + "/fn.sock";
  make_stale_socket(path);
  REQUIRE(S_ISSOCK(mode_of(path)));
  CHECK_FALSE(common::unix_socket_in_use(path));
  auto socket = common::open_listener(unix_address(path));
  CHECK(common::unix_socket_in_use(path));
  CHECK((mode_of(path) & 07777) == 0600);
}

TEST_CASE("listener: a live unix socket is address in use") {
  TempDir dir;
  std::string path = dir.path + "/fn.sock";
  auto first = common::open_listener(unix_address(path));
  std::string error = listen_error(unix_address(path));
  CHECK(error == "address in use: unix:" + path);
  CHECK(common::unix_socket_in_use(path));  // the first listener is untouched
}

TEST_CASE("listener: a file that is not a socket is refused, not replaced") {
  TempDir dir;
  std::string path = dir.path + "/fn.sock";
  std::ofstream(path) << "precious\n";
  std::string error = listen_error(unix_address(path));
  CHECK(error.find("not a socket") != std::string::npos);
  CHECK(error.find(path) != std::string::npos);
  std::ifstream in(path);
  std::string content;
  std::getline(in, content);
  CHECK(content == "precious");
}

TEST_CASE("listener: a missing socket folder is created 0700") {
  TempDir dir;
  std::string folder = dir.path + "/sockets";
  std::string path = folder + "/fn.sock";
  auto socket = common::open_listener(unix_address(path));
  CHECK(S_ISDIR(mode_of(folder)));
  CHECK((mode_of(folder) & 07777) == 0700);
  CHECK(common::unix_socket_in_use(path));
}

TEST_CASE("listener: a unix path too long for sun_path is a clear error") {
  TempDir dir;
  std::string path = dir.path + "/" + std::string(120, 'x') + ".sock";
  std::string error = listen_error(unix_address(path));
  CHECK(error.find("too long") != std::string::npos);
}

TEST_CASE("listener: remove_listener removes the socket file") {
  TempDir dir;
  std::string path = dir.path + "/fn.sock";
  { auto socket = common::open_listener(unix_address(path)); }
  CHECK(std::filesystem::exists(std::filesystem::symlink_status(path)));
  common::remove_listener(unix_address(path));
  CHECK_FALSE(std::filesystem::exists(std::filesystem::symlink_status(path)));
  SUBCASE("a no-op for tcp") { common::remove_listener(tcp_address("127.0.0.1", 1)); }
}

TEST_CASE("listener: unix_socket_in_use is false when nothing is there") {
  TempDir dir;
  CHECK_FALSE(common::unix_socket_in_use(dir.path + "/none.sock"));
}

TEST_CASE("listener: tcp listens on loopback") {
  auto socket = common::open_listener(tcp_address("127.0.0.1", 0));
  CHECK(socket.address().port() != 0);
  CHECK(socket.address().host().toString() == "127.0.0.1");
}

TEST_CASE("listener: a tcp port in use is address in use") {
  auto first = common::open_listener(tcp_address("127.0.0.1", 0));
  std::uint16_t port = first.address().port();
  std::string error = listen_error(tcp_address("127.0.0.1", port));
  CHECK(error == "address in use: tcp:127.0.0.1:" + std::to_string(port));
}

TEST_CASE("listener: an address that is not local is a ListenError") {
  // 192.0.2.0/24 is TEST-NET-1: never assigned to a local interface, and needs no name lookup.
  std::string error = listen_error(tcp_address("192.0.2.1", 0));
  CHECK(error.find("cannot listen on tcp:192.0.2.1:0") == 0);
}

TEST_CASE("listener: require_private_dir refuses a folder others may enter") {
  TempDir dir;
  std::string open = dir.path + "/open";
  REQUIRE(::mkdir(open.c_str(), 0700) == 0);
  ::chmod(open.c_str(), 0777);
  CHECK_THROWS_AS(common::require_private_dir(open), ListenError);
  ::chmod(open.c_str(), 0700);
  CHECK_NOTHROW(common::require_private_dir(open));
  std::string fresh = dir.path + "/fresh";
  CHECK_NOTHROW(common::require_private_dir(fresh));
  CHECK((mode_of(fresh) & 07777) == 0700);
}

TEST_CASE("listener: ensure_private_dir") {
  TempDir dir;
  SUBCASE("creates missing folders, the last one 0700") {
    std::string leaf = dir.path + "/a/b/c";
    common::ensure_private_dir(leaf);
    CHECK(S_ISDIR(mode_of(leaf)));
    CHECK((mode_of(leaf) & 07777) == 0700);
  }
  SUBCASE("leaves an existing folder as it is") {
    std::string existing = dir.path + "/open";
    REQUIRE(::mkdir(existing.c_str(), 0755) == 0);
    ::chmod(existing.c_str(), 0755);
    common::ensure_private_dir(existing);
    CHECK((mode_of(existing) & 07777) == 0755);
  }
  SUBCASE("a file in the way is an error") {
    std::string file = dir.path + "/file";
    std::ofstream(file) << "x";
    CHECK_THROWS_AS(common::ensure_private_dir(file), ListenError);
    CHECK_THROWS_AS(common::ensure_private_dir(file + "/below"), ListenError);
  }
}

namespace {

std::string adopt_error(int fd) {
  try {
    common::adopt_listener(fd);
  } catch (const ListenError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("listener: a passed listening socket is served, with its own address") {
  SUBCASE("unix") {
    TempDir dir;
    std::string path = dir.path + "/passed.sock";
    auto bound = common::open_listener(unix_address(path));
    int fd = ::dup(bound.impl()->sockfd());
    bound.close();
    auto adopted = common::adopt_listener(fd);
    CHECK(adopted.address.to_string() == "unix:" + path);
    CHECK(adopted.socket.impl()->sockfd() == fd);
    CHECK(common::unix_socket_in_use(path));
  }
  SUBCASE("tcp") {
    auto bound = common::open_listener(tcp_address("127.0.0.1", 0));
    std::uint16_t port = bound.address().port();
    int fd = ::dup(bound.impl()->sockfd());
    bound.close();
    auto adopted = common::adopt_listener(fd);
    CHECK(adopted.address.to_string() == "tcp:127.0.0.1:" + std::to_string(port));
  }
}

TEST_CASE("listener: a passed fd that is not a listening stream socket is a ListenError") {
  SUBCASE("a datagram socket") {
    common::UniqueFd fd(::socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0));
    CHECK(adopt_error(fd.get()).find("is not a listening stream socket") != std::string::npos);
  }
  SUBCASE("a stream socket that does not listen") {
    common::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
    CHECK(adopt_error(fd.get()).find("(fd " + std::to_string(fd.get()) + ") is not a listening") !=
          std::string::npos);
  }
  SUBCASE("a file") {
    TempDir dir;
    std::ofstream(dir.path + "/file") << "x";
    common::UniqueFd fd(::open((dir.path + "/file").c_str(), O_RDONLY | O_CLOEXEC));
    CHECK(adopt_error(fd.get()).find("is not a listening stream socket") != std::string::npos);
  }
  SUBCASE("a closed fd") {
    int fd = ::dup(0);
    ::close(fd);
    CHECK(adopt_error(fd).find("is not usable: Bad file descriptor") != std::string::npos);
  }
}

TEST_CASE("listener: without a passed socket the configured address is bound") {
  TempDir dir;
  std::string path = dir.path + "/fn.sock";
  SUBCASE("no LISTEN_FDS") { ::unsetenv("LISTEN_FDS"); }
  SUBCASE("LISTEN_FDS meant for another process: ignored, and removed") {
    ::setenv("LISTEN_FDS", "1", 1);
    ::setenv("LISTEN_PID", "1", 1);
  }
  auto listener = common::open_or_adopt_listener(unix_address(path));
  CHECK_FALSE(listener.passed);
  CHECK(listener.address.to_string() == "unix:" + path);
  CHECK(listener.file.has_value());  // ours: removed at exit
  CHECK(common::unix_socket_in_use(path));
  CHECK(::getenv("LISTEN_FDS") == nullptr);
  CHECK(::getenv("LISTEN_PID") == nullptr);
}

TEST_CASE("listener: malformed LISTEN_FDS is a ListenError") {
  ::setenv("LISTEN_FDS", "many", 1);
  ::setenv("LISTEN_PID", std::to_string(::getpid()).c_str(), 1);
  std::string error;
  try {
    common::open_or_adopt_listener(tcp_address("127.0.0.1", 0));
  } catch (const ListenError& e) {
    error = e.what();
  }
  ::unsetenv("LISTEN_FDS");
  ::unsetenv("LISTEN_PID");
  CHECK(error.find("socket activation: bad LISTEN_FDS or LISTEN_PID") == 0);
}
