#include "common/owned_children.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <cerrno>
#include <chrono>
#include <string>

#include "common/child.h"

using Clock = std::chrono::steady_clock;

namespace {

// Runs `body` in a forked copy of this (single-threaded) test process and returns its exit code:
// becoming a subreaper is for good, and must not change how the other tests' children are reaped.
int in_subprocess(int (*body)()) {
  pid_t pid = ::fork();
  REQUIRE(pid >= 0);
  if (pid == 0) ::_exit(body());
  int status = 0;
  REQUIRE(::waitpid(pid, &status, 0) == pid);
  REQUIRE(WIFEXITED(status));
  return WEXITSTATUS(status);
}

bool gone(pid_t pid) { return ::kill(pid, 0) != 0 && errno == ESRCH; }

std::string read_line(int fd) {
  std::string line;
  char c;
  while (::read(fd, &c, 1) == 1 && c != '\n') line += c;
  return line;
}

// A contained child that leaves a process behind in its own session (setsid), then exits.
int leftover_is_ended_with_its_child() {
  common::become_subreaper();
  common::SpawnOptions options;
  options.argv = {"/bin/sh", "-c",
                  "setsid sh -c 'sleep 30 </dev/null >/dev/null 2>&1 & echo $!' </dev/null"};
  options.env = {"PATH=/usr/bin:/bin"};
  options.contain_descendants = true;
  auto child = common::Child::spawn(options);
  if (!child) return 10;
  pid_t leftover = std::stoi(read_line(child->stdout_fd().get()));
  if (leftover <= 0 || gone(leftover)) return 11;
  if (!child->wait_until(Clock::now() + std::chrono::seconds(10))) return 12;
  // The reap ended it: our child by then, killed and reaped, so no longer there at all.
  return gone(leftover) ? 0 : 13;
}

int owned_children_are_left_alone() {
  common::become_subreaper();
  common::SpawnOptions options;
  options.argv = {"/bin/sleep", "30"};
  auto child = common::Child::spawn(options);
  if (!child) return 10;
  if (common::end_orphans() != 0) return 11;
  if (!child->running() || gone(child->pid())) return 12;
  child->terminate();
  return 0;
}

int nothing_unless_subreaper() { return common::end_orphans() == 0 && !common::is_subreaper() ? 0 : 1; }

}  // namespace

TEST_CASE("owned children: a subreaper ends what a contained child left behind when it is reaped") {
  CHECK(in_subprocess(leftover_is_ended_with_its_child) == 0);
}

TEST_CASE("owned children: end_orphans never touches a Child") {
  CHECK(in_subprocess(owned_children_are_left_alone) == 0);
}

TEST_CASE("owned children: end_orphans does nothing in a process that is no subreaper") {
  CHECK(in_subprocess(nothing_unless_subreaper) == 0);
}
