// The spawn floor: THREADS loops that each do what a CGI request costs the platform at least —
// three pipes, posix_spawn PROGRAM, close its stdin, read its stdout and stderr to EOF, waitpid —
// for SECONDS. Prints "spawns_per_second=N". Nothing else of fastfn is involved.
//   spawn_floor SECONDS THREADS PROGRAM [ARG...]
#include <fcntl.h>
#include <poll.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <thread>
#include <vector>

extern char** environ;

namespace {

bool spawn_once(char** argv) {
  int in[2], out[2], err[2];
  if (::pipe2(in, O_CLOEXEC) || ::pipe2(out, O_CLOEXEC) || ::pipe2(err, O_CLOEXEC)) return false;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, in[0], 0);
  posix_spawn_file_actions_adddup2(&actions, out[1], 1);
  posix_spawn_file_actions_adddup2(&actions, err[1], 2);
  pid_t pid = -1;
  int rc = ::posix_spawn(&pid, argv[0], &actions, nullptr, argv, environ);
  posix_spawn_file_actions_destroy(&actions);
  ::close(in[0]);
  ::close(out[1]);
  ::close(err[1]);
  ::close(in[1]);  // an empty request body
  char buffer[4096];
  pollfd fds[2] = {{out[0], POLLIN, 0}, {err[0], POLLIN, 0}};
  for (int open = 2; rc == 0 && open > 0;) {
    ::poll(fds, 2, -1);
    for (auto& fd : fds)
      if (fd.fd >= 0 && fd.revents && ::read(fd.fd, buffer, sizeof buffer) <= 0) {
        fd.fd = -1;
        --open;
      }
  }
  ::close(out[0]);
  ::close(err[0]);
  int status = 0;
  return rc == 0 && ::waitpid(pid, &status, 0) == pid;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: spawn_floor SECONDS THREADS PROGRAM [ARG...]\n");
    return 2;
  }
  auto seconds = std::chrono::duration<double>(std::atof(argv[1]));
  int threads = std::atoi(argv[2]);
  std::atomic<long> spawns{0};
  std::atomic<bool> failed{false};
  auto start = std::chrono::steady_clock::now();
  std::vector<std::thread> workers;
  for (int i = 0; i < threads; ++i)
    workers.emplace_back([&] {
      while (std::chrono::steady_clock::now() - start < seconds) {
        if (!spawn_once(argv + 3)) failed = true;
        ++spawns;
      }
    });
  for (auto& worker : workers) worker.join();
  double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::printf("spawns_per_second=%.0f\n", static_cast<double>(spawns) / elapsed);
  return failed ? 1 : 0;
}
