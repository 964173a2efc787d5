#include "common/unique_fd.h"

#include <fcntl.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <cerrno>
#include <system_error>
#include <utility>

using common::Pipe;
using common::UniqueFd;

namespace {

bool is_open(int fd) { return ::fcntl(fd, F_GETFD) != -1 || errno != EBADF; }

int open_null() { return ::open("/dev/null", O_RDONLY | O_CLOEXEC); }

}  // namespace

TEST_CASE("unique_fd: default is invalid") {
  UniqueFd fd;
  CHECK_FALSE(fd.valid());
  CHECK_FALSE(static_cast<bool>(fd));
  CHECK(fd.get() == -1);
}

TEST_CASE("unique_fd: the destructor closes") {
  int raw = open_null();
  REQUIRE(raw >= 0);
  {
    UniqueFd fd(raw);
    CHECK(fd.valid());
    CHECK(fd.get() == raw);
  }
  CHECK_FALSE(is_open(raw));
}

TEST_CASE("unique_fd: reset closes the old fd and adopts the new one") {
  int first = open_null();
  int second = open_null();
  REQUIRE(first >= 0);
  REQUIRE(second >= 0);
  UniqueFd fd(first);
  fd.reset(second);
  CHECK_FALSE(is_open(first));
  CHECK(is_open(second));
  CHECK(fd.get() == second);
  fd.reset();
  CHECK_FALSE(is_open(second));
  CHECK_FALSE(fd.valid());
}

TEST_CASE("unique_fd: release gives the fd up without closing it") {
  int raw = open_null();
  REQUIRE(raw >= 0);
  {
    UniqueFd fd(raw);
    CHECK(fd.release() == raw);
    CHECK_FALSE(fd.valid());
  }
  CHECK(is_open(raw));
  ::close(raw);
}

TEST_CASE("unique_fd: moving transfers ownership") {
  int raw = open_null();
  REQUIRE(raw >= 0);
  UniqueFd a(raw);
  SUBCASE("move construction") {
    UniqueFd b(std::move(a));
    CHECK_FALSE(a.valid());
    CHECK(b.get() == raw);
  }
  SUBCASE("move assignment closes the target's old fd") {
    int other = open_null();
    REQUIRE(other >= 0);
    UniqueFd b(other);
    b = std::move(a);
    CHECK_FALSE(a.valid());
    CHECK(b.get() == raw);
    CHECK_FALSE(is_open(other));
  }
  SUBCASE("self move assignment keeps the fd") {
    UniqueFd& alias = a;
    a = std::move(alias);
    CHECK(a.get() == raw);
    CHECK(is_open(raw));
  }
}

TEST_CASE("unique_fd: Pipe::create makes two O_CLOEXEC ends that connect") {
  Pipe pipe = Pipe::create();
  REQUIRE(pipe.read.valid());
  REQUIRE(pipe.write.valid());
  CHECK((::fcntl(pipe.read.get(), F_GETFD) & FD_CLOEXEC) != 0);
  CHECK((::fcntl(pipe.write.get(), F_GETFD) & FD_CLOEXEC) != 0);
  REQUIRE(::write(pipe.write.get(), "x", 1) == 1);
  char c = 0;
  REQUIRE(::read(pipe.read.get(), &c, 1) == 1);
  CHECK(c == 'x');
}

TEST_CASE("unique_fd: set_nonblocking sets and clears O_NONBLOCK") {
  Pipe pipe = Pipe::create();
  common::set_nonblocking(pipe.read.get());
  CHECK((::fcntl(pipe.read.get(), F_GETFL) & O_NONBLOCK) != 0);
  char c = 0;
  CHECK(::read(pipe.read.get(), &c, 1) == -1);
  CHECK(errno == EAGAIN);
  common::set_nonblocking(pipe.read.get(), false);
  CHECK((::fcntl(pipe.read.get(), F_GETFL) & O_NONBLOCK) == 0);
}

TEST_CASE("unique_fd: set_nonblocking on a closed fd throws") {
  int raw = open_null();
  REQUIRE(raw >= 0);
  ::close(raw);
  CHECK_THROWS_AS(common::set_nonblocking(raw), std::system_error);
}
