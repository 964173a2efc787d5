#include "common/process_state.h"

#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <doctest/doctest.h>

using common::proc_stat_state;

TEST_CASE("process_state: the state follows the command, whatever the command holds") {
  CHECK(proc_stat_state("1234 (python3) S 1 1234 1234 0 -1") == 'S');
  CHECK(proc_stat_state("7 (a) b) R 1 7") == 'R');  // a command with ") " in it
  CHECK(proc_stat_state("7 (x y) D 1") == 'D');
  CHECK_FALSE(proc_stat_state("7 (no end S 1").has_value());
  CHECK_FALSE(proc_stat_state("7 (cut)").has_value());
  CHECK_FALSE(proc_stat_state("").has_value());
}

TEST_CASE("process_state: a process reading itself runs; one blocked in a read is settled") {
  CHECK_FALSE(common::ProcessState(::getpid()).settled());

  int fds[2];
  REQUIRE(::pipe(fds) == 0);
  pid_t child = ::fork();
  REQUIRE(child >= 0);
  if (child == 0) {
    char byte;
    [[maybe_unused]] ssize_t n = ::read(fds[0], &byte, 1);  // blocks: nobody writes
    ::_exit(0);
  }
  common::ProcessState state(child);
  // Count-driven: it blocks in its read as soon as it gets a CPU; each round gives it one.
  CHECK(state.wait_until_settled(std::chrono::seconds(30)));
  CHECK(state.settled());
  ::kill(child, SIGKILL);
  ::waitpid(child, nullptr, 0);
  ::close(fds[0]);
  ::close(fds[1]);
  CHECK(common::ProcessState(child).settled());  // gone: nothing to look at
  CHECK_FALSE(common::ProcessState(::getpid()).wait_until_settled(std::chrono::milliseconds(1)));
}
