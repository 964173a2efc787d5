// The hot-path floor: one child (`cat`) and a loop that writes SIZE bytes to its stdin and reads
// them back from its stdout, for SECONDS. That round trip over two pipes and two context switches
// is the least any hot handler call can cost. Prints round trips per second and latency
// percentiles in microseconds.
//   stdio_pingpong SECONDS [SIZE]
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

extern char** environ;

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: stdio_pingpong SECONDS [SIZE]\n");
    return 2;
  }
  auto seconds = std::chrono::duration<double>(std::atof(argv[1]));
  std::size_t size = argc > 2 ? std::strtoul(argv[2], nullptr, 10) : 64;
  int to_child[2], from_child[2];
  if (::pipe(to_child) || ::pipe(from_child)) return 1;
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_adddup2(&actions, to_child[0], 0);
  posix_spawn_file_actions_adddup2(&actions, from_child[1], 1);
  posix_spawn_file_actions_addclose(&actions, to_child[1]);
  posix_spawn_file_actions_addclose(&actions, from_child[0]);
  char cat[] = "/bin/cat";
  char* child_argv[] = {cat, nullptr};
  pid_t pid = -1;
  if (::posix_spawn(&pid, cat, &actions, nullptr, child_argv, environ) != 0) return 1;
  ::close(to_child[0]);
  ::close(from_child[1]);

  std::string message(size, 'x');
  std::string reply(size, '\0');
  std::vector<double> micros;
  using Clock = std::chrono::steady_clock;
  auto start = Clock::now();
  while (Clock::now() - start < seconds) {
    auto begin = Clock::now();
    if (::write(to_child[1], message.data(), size) != static_cast<ssize_t>(size)) return 1;
    for (std::size_t got = 0; got < size;) {
      ssize_t n = ::read(from_child[0], reply.data() + got, size - got);
      if (n <= 0) return 1;
      got += static_cast<std::size_t>(n);
    }
    micros.push_back(std::chrono::duration<double, std::micro>(Clock::now() - begin).count());
  }
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  ::close(to_child[1]);
  int status = 0;
  ::waitpid(pid, &status, 0);
  std::sort(micros.begin(), micros.end());
  auto at = [&](double q) { return micros[static_cast<std::size_t>(q * static_cast<double>(micros.size() - 1))]; };
  std::printf("round_trips_per_second=%.0f p50_us=%.1f p99_us=%.1f\n",
              static_cast<double>(micros.size()) / elapsed, at(0.5), at(0.99));
  return 0;
}
