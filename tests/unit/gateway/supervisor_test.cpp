#include "gateway/supervisor.h"

#include <doctest/doctest.h>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include <cstdlib>
#include <fstream>
#include <string>
#include <vector>

namespace {

using gateway::DaemonSpec;
using gateway::RestartBackoff;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

struct TempDir {
  std::string path;
  TempDir() {
    char name[] = "/tmp/fastfn-supervisor-XXXXXX";
    path = ::mkdtemp(name);
  }
  ~TempDir() { std::system(("rm -rf '" + path + "'").c_str()); }
  std::string file(const std::string& name, const std::string& text, mode_t mode) const {
    std::string full = path + "/" + name;
    std::ofstream(full) << text;
    ::chmod(full.c_str(), mode);
    return full;
  }
};

DaemonSpec spec_for(std::vector<std::string> command, std::string workdir,
                    std::vector<std::string> env = {"PATH=/usr/bin:/bin"}) {
  DaemonSpec spec;
  spec.command = std::move(command);
  spec.workdir = std::move(workdir);
  spec.env = std::move(env);
  return spec;
}

}  // namespace

// These replace wall-clock measurements: a watchdog that keeps failing and one that ran healthy.
TEST_CASE("supervisor: restart backoff doubles from 100 ms and is capped at 5 s") {
  RestartBackoff backoff;
  auto t0 = Clock::now();
  std::vector<long> delays;
  auto now = t0;
  for (int i = 0; i < 9; ++i) {
    auto started = now;
    now = started + milliseconds(20);  // each start dies at once
    auto delay = backoff.exited(started, now);
    delays.push_back(delay.count());
    now += delay;
  }
  CHECK(delays == std::vector<long>{100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000});
}

TEST_CASE("supervisor: a watchdog that stayed up 10 s is restarted after 100 ms again") {
  RestartBackoff backoff;
  auto t0 = Clock::now();
  for (int i = 0; i < 6; ++i) backoff.exited(t0, t0 + milliseconds(10));
  CHECK(backoff.exited(t0, t0 + milliseconds(10)) == milliseconds(5000));
  SUBCASE("9.9 s is not stable yet") {
    CHECK(backoff.exited(t0, t0 + milliseconds(9900)) == milliseconds(5000));
  }
  SUBCASE("10 s is") {
    CHECK(backoff.exited(t0, t0 + milliseconds(10'000)) == milliseconds(100));
    // Restarted at 10.1 s and dead at once: the count goes on from there.
    CHECK(backoff.exited(t0 + milliseconds(10'100), t0 + milliseconds(10'150)) == milliseconds(200));
  }
  SUBCASE("parking resets it") {
    backoff.reset();
    CHECK(backoff.failures() == 0);
    CHECK(backoff.exited(t0, t0 + milliseconds(10)) == milliseconds(100));
  }
}

TEST_CASE("supervisor: failed starts back off like exits") {
  RestartBackoff backoff;
  CHECK(backoff.failed_to_start() == milliseconds(100));
  CHECK(backoff.failed_to_start() == milliseconds(200));
  CHECK(backoff.failures() == 2);
}

TEST_CASE("supervisor: launch_problem says why a function cannot run, before anything starts") {
  TempDir dir;
  dir.file("run.sh", "#!/bin/sh\necho hi\n", 0755);
  dir.file("plain.sh", "#!/bin/sh\necho hi\n", 0644);
  SUBCASE("runnable: a PATH name, a relative script, an absolute path") {
    CHECK(gateway::launch_problem(spec_for({"sh", "x.sh"}, dir.path)) == std::nullopt);
    CHECK(gateway::launch_problem(spec_for({"./run.sh"}, dir.path)) == std::nullopt);
    CHECK(gateway::launch_problem(spec_for({dir.path + "/run.sh"}, "")) == std::nullopt);
  }
  SUBCASE("a command not in PATH") {
    CHECK(gateway::launch_problem(spec_for({"fastfn-no-such-program"}, dir.path)) ==
          "cannot execute \"fastfn-no-such-program\": No such file or directory");
  }
  SUBCASE("the function's own PATH is the one searched") {
    CHECK(gateway::launch_problem(spec_for({"run.sh"}, dir.path, {"PATH=" + dir.path})) ==
          std::nullopt);
    CHECK(gateway::launch_problem(spec_for({"sh"}, dir.path, {"PATH=" + dir.path})).has_value());
  }
  SUBCASE("a script without its exec bit") {
    CHECK(gateway::launch_problem(spec_for({"./plain.sh"}, dir.path)) ==
          "cannot execute \"./plain.sh\": Permission denied");
  }
  SUBCASE("a missing script") {
    CHECK(gateway::launch_problem(spec_for({"./gone.sh"}, dir.path)) ==
          "cannot execute \"./gone.sh\": No such file or directory");
  }
  SUBCASE("a folder") {
    CHECK(gateway::launch_problem(spec_for({dir.path}, dir.path)) ==
          "cannot execute \"" + dir.path + "\": Is a directory");
  }
  SUBCASE("a script whose interpreter is missing") {
    dir.file("orphan.sh", "#!/no/such/interpreter\n", 0755);
    CHECK(gateway::launch_problem(spec_for({"./orphan.sh"}, dir.path)) ==
          "cannot execute \"./orphan.sh\": No such file or directory");
  }
  SUBCASE("a missing workdir") {
    CHECK(gateway::launch_problem(spec_for({"sh"}, dir.path + "/gone")) ==
          "cannot enter workdir \"" + dir.path + "/gone\": No such file or directory");
  }
  SUBCASE("a workdir that is a file") {
    CHECK(gateway::launch_problem(spec_for({"sh"}, dir.path + "/run.sh")) ==
          "cannot enter workdir \"" + dir.path + "/run.sh\": Not a directory");
  }
}

namespace {

DaemonSpec argv_spec(std::vector<std::string> argv) {
  DaemonSpec spec;
  spec.argv = std::move(argv);
  spec.env = {"PATH=/usr/bin:/bin"};
  return spec;
}

std::string read_to_end(int fd) {
  std::string out;
  char buffer[256];
  ssize_t n;
  while ((n = ::read(fd, buffer, sizeof buffer)) > 0) out.append(buffer, static_cast<std::size_t>(n));
  return out;
}

// Every fd but one in use, for a scope: a pipe (two fds) cannot be made, a pidfd (one) can.
class OneFdLeft {
 public:
  OneFdLeft() {
    ::getrlimit(RLIMIT_NOFILE, &saved_);
    rlimit low = saved_;
    low.rlim_cur = std::min<rlim_t>(saved_.rlim_cur, 256);
    ::setrlimit(RLIMIT_NOFILE, &low);
    int null = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
    REQUIRE(null >= 0);
    fds_.push_back(null);
    for (int fd; (fd = ::fcntl(null, F_DUPFD_CLOEXEC, 0)) >= 0;) fds_.push_back(fd);
    REQUIRE(errno == EMFILE);
    ::close(fds_.back());
    fds_.pop_back();
  }
  ~OneFdLeft() {
    for (int fd : fds_) ::close(fd);
    ::setrlimit(RLIMIT_NOFILE, &saved_);
  }

 private:
  rlimit saved_{};
  std::vector<int> fds_;
};

}  // namespace

TEST_CASE("supervisor: a watchdog's stdout and stderr come on one pipe, in order") {
  std::string no_pipe;
  auto child = gateway::spawn_watchdog(argv_spec({"/bin/sh", "-c", "echo out; echo err >&2"}),
                                       &no_pipe);
  REQUIRE(child);
  CHECK(no_pipe.empty());
  REQUIRE(child->stdout_fd());
  CHECK(read_to_end(child->stdout_fd().get()) == "out\nerr\n");
  CHECK(child->wait_until(Clock::now() + std::chrono::seconds(10)));
}

TEST_CASE("supervisor: a watchdog starts without its pipe when none can be made") {
  std::string no_pipe;
  common::Result<common::Child> child = common::fail(common::Error::Code::kInternal, "");
  {
    OneFdLeft exhausted;
    child = gateway::spawn_watchdog(argv_spec({"/bin/true"}), &no_pipe);
  }
  REQUIRE(child);
  CHECK_FALSE(child->stdout_fd());  // it inherits the gateway's stdout and stderr
  CHECK(no_pipe.find("Too many open files") != std::string::npos);
  auto status = child->wait_until(Clock::now() + std::chrono::seconds(10));
  REQUIRE(status);
  CHECK(status->success());
}
