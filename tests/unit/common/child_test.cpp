#include "common/child.h"

#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <doctest/doctest.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <optional>
#include <string>
#include <thread>
#include <vector>

using common::Child;
using common::SpawnOptions;
using common::Stdio;
using Clock = std::chrono::steady_clock;
using namespace std::chrono_literals;

namespace {

constexpr auto kBound = 10s;  // generous: only reached when something is broken

SpawnOptions options_for(std::vector<std::string> argv) {
  SpawnOptions options;
  options.argv = std::move(argv);
  options.env = {"PATH=/usr/bin:/bin"};
  return options;
}

Child spawn(SpawnOptions options) {
  auto child = Child::spawn(options);
  REQUIRE_MESSAGE(child.has_value(), (child ? "" : child.error().context));
  return std::move(*child);
}

Child spawn(std::vector<std::string> argv) { return spawn(options_for(std::move(argv))); }

// Reads until `stop` says enough, EOF, or the deadline; never blocks past the deadline.
std::string read_until(int fd, Clock::time_point deadline,
                       bool (*stop)(const std::string&) = nullptr) {
  std::string out;
  char buffer[4096];
  while (!(stop && stop(out))) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) break;
    pollfd pfd{fd, POLLIN, 0};
    if (::poll(&pfd, 1, static_cast<int>(left.count())) <= 0) continue;
    ssize_t n = ::read(fd, buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    out.append(buffer, static_cast<std::size_t>(n));
  }
  return out;
}

std::string read_all(int fd) { return read_until(fd, Clock::now() + kBound); }

bool has_line(const std::string& s) { return s.find('\n') != std::string::npos; }

std::string read_line(int fd) {
  std::string s = read_until(fd, Clock::now() + kBound, has_line);
  return s.substr(0, s.find('\n'));
}

// True once `pid` is gone or a zombie (a zombie reparented to an init that does not reap still
// runs nothing). Polls with a bounded deadline.
bool process_ends(pid_t pid, Clock::duration within = kBound) {
  auto deadline = Clock::now() + within;
  do {
    std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
    std::string line;
    if (!stat || !std::getline(stat, line)) return true;
    auto close_paren = line.rfind(')');
    if (close_paren != std::string::npos && close_paren + 2 < line.size() &&
        (line[close_paren + 2] == 'Z' || line[close_paren + 2] == 'X'))
      return true;
    ::usleep(2000);  // polling interval, not synchronisation: the deadline bounds the wait
  } while (Clock::now() < deadline);
  return false;
}

bool proc_exists(pid_t pid) {
  return ::access(("/proc/" + std::to_string(pid)).c_str(), F_OK) == 0;
}

std::set<std::string> fds_of(pid_t pid) {
  std::set<std::string> fds;
  std::string dir = "/proc/" + std::to_string(pid) + "/fd";
  DIR* d = ::opendir(dir.c_str());
  REQUIRE(d != nullptr);
  while (dirent* entry = ::readdir(d)) {
    std::string name = entry->d_name;
    if (name != "." && name != "..") fds.insert(name);
  }
  ::closedir(d);
  return fds;
}

// A "Sig...:" mask from /proc/<pid>/status.
unsigned long long signal_mask(pid_t pid, const std::string& field) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind(field + ":", 0) == 0)
      return std::stoull(line.substr(field.size() + 1), nullptr, 16);
  }
  FAIL("no " << field << " in /proc/" << pid << "/status");
  return 0;
}

bool has_signal(unsigned long long mask, int sig) { return (mask >> (sig - 1)) & 1; }

struct TempDir {
  std::string path;
  TempDir() {
    char tmpl[] = "/tmp/fastfn-child-test-XXXXXX";
    REQUIRE(::mkdtemp(tmpl) != nullptr);
    path = tmpl;
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

}  // namespace

TEST_CASE("child: pipes connect stdin and stdout") {
  Child child = spawn({"/bin/cat"});
  REQUIRE(child.stdin_fd().valid());
  REQUIRE(child.stdout_fd().valid());
  REQUIRE(::write(child.stdin_fd().get(), "hello\n", 6) == 6);
  child.stdin_fd().reset();  // EOF for cat
  CHECK(read_all(child.stdout_fd().get()) == "hello\n");
  auto status = child.wait_until(Clock::now() + kBound);
  REQUIRE(status);
  CHECK(status->success());
  CHECK_FALSE(child.running());
}

TEST_CASE("child: stderr has its own pipe") {
  Child child = spawn({"/bin/sh", "-c", "echo out; echo err >&2"});
  CHECK(read_all(child.stdout_fd().get()) == "out\n");
  CHECK(read_all(child.stderr_fd().get()) == "err\n");
  CHECK(child.wait_until(Clock::now() + kBound));
}

TEST_CASE("child: stderr onto stdout shares its pipe, in the order written") {
  SpawnOptions options = options_for({"/bin/sh", "-c", "echo one; echo two >&2; echo three"});
  options.stderr_mode = Stdio::kStdout;
  Child child = spawn(options);
  CHECK_FALSE(child.stderr_fd().valid());
  CHECK(read_all(child.stdout_fd().get()) == "one\ntwo\nthree\n");
  CHECK(child.wait_until(Clock::now() + kBound));
}

TEST_CASE("child: null and inherited stdio have no parent end") {
  SpawnOptions options = options_for({"/bin/sh", "-c", "read x; echo $? ; echo gone >&2"});
  options.stdin_mode = Stdio::kNull;
  options.stderr_mode = Stdio::kNull;
  SUBCASE("null") {
    Child child = spawn(options);
    CHECK_FALSE(child.stdin_fd().valid());
    CHECK_FALSE(child.stderr_fd().valid());
    // read from /dev/null hits EOF at once: exit status 1.
    CHECK(read_all(child.stdout_fd().get()) == "1\n");
    CHECK(child.wait_until(Clock::now() + kBound));
  }
  SUBCASE("inherit") {
    options.stdout_mode = Stdio::kInherit;
    options.argv = {"/bin/true"};
    Child child = spawn(options);
    CHECK_FALSE(child.stdout_fd().valid());
    auto status = child.wait_until(Clock::now() + kBound);
    REQUIRE(status);
    CHECK(status->success());
  }
}

TEST_CASE("child: reports the exit code") {
  Child child = spawn({"/bin/sh", "-c", "exit 3"});
  auto status = child.wait_until(Clock::now() + kBound);
  REQUIRE(status);
  CHECK(status->code == 3);
  CHECK(status->signal == 0);
  CHECK_FALSE(status->success());
  CHECK(status->describe() == "exit code 3");
  REQUIRE(child.status());
  CHECK(child.status()->code == 3);
}

TEST_CASE("child: reports a death by signal as 128 + signal") {
  Child child = spawn({"/bin/sh", "-c", "kill -KILL $$"});
  auto status = child.wait_until(Clock::now() + kBound);
  REQUIRE(status);
  CHECK(status->signal == SIGKILL);
  CHECK(status->code == 128 + SIGKILL);
  CHECK_FALSE(status->success());
  CHECK(status->describe() == "killed by signal 9 (Killed)");
}

TEST_CASE("child: the environment is exactly the one given") {
  SpawnOptions options = options_for({"/usr/bin/env"});
  options.env = {"A=1", "B=two words"};
  Child child = spawn(options);
  CHECK(read_all(child.stdout_fd().get()) == "A=1\nB=two words\n");
  CHECK(child.wait_until(Clock::now() + kBound));
}

TEST_CASE("child: runs in the given workdir") {
  TempDir dir;
  SpawnOptions options = options_for({"/bin/pwd", "-P"});
  options.workdir = dir.path;
  Child child = spawn(options);
  CHECK(read_all(child.stdout_fd().get()) == std::filesystem::canonical(dir.path).string() + "\n");
  CHECK(child.wait_until(Clock::now() + kBound));
}

TEST_CASE("child: a name without '/' is searched in PATH") {
  Child child = spawn({"echo", "found"});
  CHECK(read_all(child.stdout_fd().get()) == "found\n");
  CHECK(child.wait_until(Clock::now() + kBound));
}

TEST_CASE("child: an exec failure is an error, not an exception") {
  SUBCASE("missing file") {
    auto child = Child::spawn(options_for({"/nonexistent/fastfn-no-such-program"}));
    REQUIRE_FALSE(child.has_value());
    CHECK(child.error().code == common::Error::Code::kBadGateway);
    CHECK(child.error().context.find("/nonexistent/fastfn-no-such-program") != std::string::npos);
    CHECK(child.error().context.find("No such file or directory") != std::string::npos);
  }
  SUBCASE("not in PATH") {
    auto child = Child::spawn(options_for({"fastfn-no-such-program-xyz"}));
    REQUIRE_FALSE(child.has_value());
    CHECK(child.error().code == common::Error::Code::kBadGateway);
    CHECK(child.error().context.find("cannot execute") != std::string::npos);
  }
  SUBCASE("not executable") {
    TempDir dir;
    std::string path = dir.path + "/script";
    std::ofstream(path) << "#!/bin/sh\necho hi\n";
    ::chmod(path.c_str(), 0644);
    auto child = Child::spawn(options_for({path}));
    REQUIRE_FALSE(child.has_value());
    CHECK(child.error().context.find("Permission denied") != std::string::npos);
  }
  SUBCASE("missing workdir") {
    SpawnOptions options = options_for({"/bin/true"});
    options.workdir = "/nonexistent/fastfn-dir";
    auto child = Child::spawn(options);
    REQUIRE_FALSE(child.has_value());
    CHECK(child.error().code == common::Error::Code::kBadGateway);
    // The reason must point at the folder, not claim that /bin/true is missing.
    CHECK_MESSAGE(child.error().context.find("/nonexistent/fastfn-dir") != std::string::npos,
                  child.error().context);
  }
}

TEST_CASE("child: runs in its own process group") {
  Child child = spawn({"/bin/sleep", "30"});
  CHECK(::getpgid(child.pid()) == child.pid());
  CHECK(::getpgid(child.pid()) != ::getpgid(0));
  child.terminate();
}

TEST_CASE("child: fds above 2 are not inherited") {
  // A descriptor without O_CLOEXEC, as Poco's sockets are, must still stay out of the child.
  int leaky = ::open("/dev/null", O_RDONLY);
  REQUIRE(leaky > 2);
  int leaky_pipe[2];
  REQUIRE(::pipe(leaky_pipe) == 0);
  Child child = spawn({"/bin/sleep", "30"});
  // The dynamic loader of the new image opens its libraries for a moment, so wait for the set to
  // settle; a leaked descriptor would stay open for good.
  const std::set<std::string> stdio = {"0", "1", "2"};
  auto deadline = Clock::now() + 2s;
  auto fds = fds_of(child.pid());
  while (fds != stdio && Clock::now() < deadline) {
    ::usleep(2000);  // polling interval; the deadline bounds the wait
    fds = fds_of(child.pid());
  }
  ::close(leaky);
  ::close(leaky_pipe[0]);
  ::close(leaky_pipe[1]);
  CHECK(fds == stdio);
  child.terminate();
}

TEST_CASE("child: signal dispositions and mask are reset") {
  struct sigaction ignore {};
  ignore.sa_handler = SIG_IGN;
  struct sigaction old_pipe {};
  REQUIRE(::sigaction(SIGPIPE, &ignore, &old_pipe) == 0);
  sigset_t block, old_mask;
  sigemptyset(&block);
  sigaddset(&block, SIGUSR1);
  sigaddset(&block, SIGTERM);
  REQUIRE(::pthread_sigmask(SIG_BLOCK, &block, &old_mask) == 0);

  auto child = Child::spawn(options_for({"/bin/sleep", "30"}));

  ::pthread_sigmask(SIG_SETMASK, &old_mask, nullptr);
  ::sigaction(SIGPIPE, &old_pipe, nullptr);
  REQUIRE(child.has_value());
  auto ignored = signal_mask(child->pid(), "SigIgn");
  auto blocked = signal_mask(child->pid(), "SigBlk");
  CHECK_FALSE(has_signal(ignored, SIGPIPE));
  CHECK_FALSE(has_signal(blocked, SIGUSR1));
  CHECK_FALSE(has_signal(blocked, SIGTERM));
  CHECK(blocked == 0);
  child->terminate();
}

TEST_CASE("child: exit_fd becomes readable when the child exits") {
  Child child = spawn({"/bin/cat"});
  pollfd pfd{child.exit_fd(), POLLIN, 0};
  CHECK(::poll(&pfd, 1, 0) == 0);  // still running
  child.stdin_fd().reset();
  pfd.revents = 0;
  CHECK(::poll(&pfd, 1, static_cast<int>(std::chrono::milliseconds(kBound).count())) == 1);
  CHECK((pfd.revents & POLLIN) != 0);
  auto status = child.try_reap();
  REQUIRE(status);
  CHECK(status->success());
}

TEST_CASE("child: try_reap is nullopt while running and stable once reaped") {
  Child child = spawn({"/bin/cat"});
  CHECK_FALSE(child.try_reap());
  CHECK(child.running());
  child.stdin_fd().reset();
  auto status = child.wait_until(Clock::now() + kBound);
  REQUIRE(status);
  CHECK_FALSE(child.running());
  auto again = child.try_reap();
  REQUIRE(again);
  CHECK(again->code == status->code);
  CHECK(again->signal == status->signal);
  CHECK_FALSE(proc_exists(child.pid()));  // reaped: not even a zombie is left
}

TEST_CASE("child: reaping kills what is left of the process group") {
  // The shell leaves a background sleep in its group and exits at once.
  Child child = spawn({"/bin/sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!"});
  std::string line = read_line(child.stdout_fd().get());
  REQUIRE_FALSE(line.empty());
  pid_t orphan = std::stoi(line);
  REQUIRE(orphan > 0);
  auto status = child.wait_until(Clock::now() + kBound);
  REQUIRE(status);
  CHECK(status->success());
  CHECK(process_ends(orphan));
}

TEST_CASE("child: wait_until gives up at the deadline") {
  Child child = spawn({"/bin/sleep", "30"});
  auto start = Clock::now();
  CHECK_FALSE(child.wait_until(start + 100ms));
  auto waited = Clock::now() - start;
  CHECK(waited >= 100ms);
  CHECK(waited < 5s);
  CHECK(child.running());
  SUBCASE("a deadline in the past returns at once") {
    CHECK_FALSE(child.wait_until(Clock::now() - 1s));
    CHECK(child.running());
  }
  child.terminate();
}

TEST_CASE("child: terminate stops a child with SIGTERM") {
  Child child = spawn({"/bin/sleep", "30"});
  auto start = Clock::now();
  auto status = child.terminate();
  CHECK(Clock::now() - start < Child::kDefaultGrace);
  CHECK(status.signal == SIGTERM);
  CHECK(status.code == 128 + SIGTERM);
  CHECK_FALSE(child.running());
  CHECK_FALSE(proc_exists(child.pid()));
  SUBCASE("terminate again returns the same status") {
    auto again = child.terminate();
    CHECK(again.signal == SIGTERM);
  }
}

TEST_CASE("child: terminate sends SIGKILL after the grace") {
  // The trap is inherited as "ignore" by the exec'd sleep.
  Child child = spawn({"/bin/sh", "-c", "trap '' TERM; echo ready; exec sleep 30"});
  REQUIRE(read_line(child.stdout_fd().get()) == "ready");
  auto start = Clock::now();
  auto status = child.terminate(200ms);
  auto took = Clock::now() - start;
  CHECK(status.signal == SIGKILL);
  CHECK(status.code == 128 + SIGKILL);
  CHECK(took >= 200ms);
  CHECK(took < 5s);
  CHECK_FALSE(proc_exists(child.pid()));
}

TEST_CASE("child: terminate stops the whole group") {
  Child child = spawn({"/bin/sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!; exec sleep 30"});
  pid_t grandchild = std::stoi(read_line(child.stdout_fd().get()));
  REQUIRE(grandchild > 0);
  child.terminate(2s);
  CHECK(process_ends(grandchild));
}

TEST_CASE("child: signal_group reaches the group and is a no-op once reaped") {
  Child child = spawn({"/bin/sleep", "30"});
  child.signal_group(SIGKILL);
  auto status = child.wait_until(Clock::now() + kBound);
  REQUIRE(status);
  CHECK(status->signal == SIGKILL);
  child.signal_group(SIGKILL);  // must not signal a reused pid
  CHECK_FALSE(child.running());
}

TEST_CASE("child: the destructor stops and reaps") {
  pid_t pid = -1;
  pid_t grandchild = -1;
  {
    Child child = spawn({"/bin/sh", "-c", "sleep 30 >/dev/null 2>&1 & echo $!; exec sleep 30"});
    pid = child.pid();
    grandchild = std::stoi(read_line(child.stdout_fd().get()));
  }
  CHECK_FALSE(proc_exists(pid));  // reaped, not a zombie
  CHECK(process_ends(grandchild));
}

TEST_CASE("child: the destructor of a finished child reaps it") {
  pid_t pid = -1;
  {
    Child child = spawn({"/bin/true"});
    pid = child.pid();
    pollfd pfd{child.exit_fd(), POLLIN, 0};
    REQUIRE(::poll(&pfd, 1, static_cast<int>(std::chrono::milliseconds(kBound).count())) == 1);
    CHECK(proc_exists(pid));  // a zombie until reaped
  }
  CHECK_FALSE(proc_exists(pid));
}

TEST_CASE("child: moving transfers ownership") {
  Child a = spawn({"/bin/sleep", "30"});
  pid_t pid = a.pid();
  SUBCASE("construction") {
    Child b(std::move(a));
    CHECK(b.pid() == pid);
    CHECK(b.running());
    CHECK_FALSE(a.running());  // NOLINT(bugprone-use-after-move): the moved-from state is the test
    CHECK(b.exit_fd() >= 0);
    b.terminate();
  }
  SUBCASE("assignment stops the child it replaces") {
    Child b = spawn({"/bin/sleep", "30"});
    pid_t replaced = b.pid();
    b = std::move(a);
    CHECK(b.pid() == pid);
    CHECK(b.running());
    CHECK_FALSE(proc_exists(replaced));
    b.terminate();
  }
  CHECK_FALSE(proc_exists(pid));
}

TEST_CASE("child: find_executable searches PATH") {
  TempDir dir;
  std::string plain = dir.path + "/plain";
  std::ofstream(plain) << "data\n";
  ::chmod(plain.c_str(), 0644);
  std::filesystem::create_directory(dir.path + "/sh");  // a directory named like the program
  std::string tool = dir.path + "/tool";
  std::ofstream(tool) << "#!/bin/sh\n";
  ::chmod(tool.c_str(), 0755);

  SUBCASE("first match wins") {
    CHECK(common::find_executable("sh", "/nonexistent:/bin:/usr/bin") == "/bin/sh");
  }
  SUBCASE("directories are skipped") {
    CHECK(common::find_executable("sh", dir.path + ":/bin") == "/bin/sh");
  }
  SUBCASE("non-executable files are skipped") {
    CHECK(common::find_executable("plain", dir.path).empty());
  }
  SUBCASE("found in a later entry") {
    CHECK(common::find_executable("tool", "/nonexistent:" + dir.path) == tool);
  }
  SUBCASE("not found") {
    CHECK(common::find_executable("fastfn-no-such-program", "/bin:/usr/bin").empty());
  }
  SUBCASE("a name with '/' is returned as it is") {
    CHECK(common::find_executable("./x/y", "/bin") == "./x/y");
    CHECK(common::find_executable("/no/such", "/bin") == "/no/such");
  }
}

TEST_CASE("child: stdio pipes work when the parent's own 0, 1 and 2 are closed") {
  // pipe2 then hands out 0..2 for the child's ends; putting them in place must not clobber one.
  int saved[3];
  for (int fd = 0; fd < 3; ++fd) saved[fd] = ::fcntl(fd, F_DUPFD_CLOEXEC, 10);
  for (int fd = 0; fd < 3; ++fd) ::close(fd);
  auto child = Child::spawn(options_for({"/bin/sh", "-c", "read line; echo \"$line\"; echo e >&2"}));
  for (int fd = 0; fd < 3; ++fd) {
    ::dup2(saved[fd], fd);
    ::close(saved[fd]);
  }
  REQUIRE(child.has_value());
  REQUIRE(::write(child->stdin_fd().get(), "in\n", 3) == 3);
  child->stdin_fd().reset();
  CHECK(read_all(child->stdout_fd().get()) == "in\n");
  CHECK(read_all(child->stderr_fd().get()) == "e\n");
  CHECK(child->wait_until(Clock::now() + kBound));
}

TEST_CASE("child: contain_descendants keeps what the child orphans below it") {
  // The inner shell starts a sleep and exits: the sleep is reparented to the nearest subreaper.
  SpawnOptions options = options_for(
      {"/bin/sh", "-c", "sh -c 'sleep 30 >/dev/null 2>&1 & echo $!'; exec sleep 30"});
  options.contain_descendants = true;
  Child child = spawn(options);
  pid_t orphan = std::stoi(read_line(child.stdout_fd().get()));
  REQUIRE(orphan > 0);
  pid_t parent = -1;
  for (auto deadline = Clock::now() + kBound; Clock::now() < deadline; ::usleep(2000)) {
    std::ifstream stat("/proc/" + std::to_string(orphan) + "/stat");
    std::string line;
    REQUIRE(std::getline(stat, line));
    parent = std::stoi(line.substr(line.rfind(')') + 4));
    if (parent == child.pid()) break;  // polling: the inner shell exits on its own time
  }
  CHECK(parent == child.pid());
  child.terminate();
  CHECK(process_ends(orphan));
}

TEST_CASE("child: parent_death_signal fires when the spawning thread exits") {
  // PR_SET_PDEATHSIG follows the thread: this is why only a child whose spawning thread outlives it
  // (a CGI request's) may use it.
  std::optional<Child> child;
  std::thread([&child] {
    SpawnOptions options = options_for({"/bin/sleep", "30"});
    options.parent_death_signal = SIGKILL;
    child.emplace(spawn(options));
  }).join();
  REQUIRE(child);
  auto status = child->wait_until(Clock::now() + kBound);
  REQUIRE(status);
  CHECK(status->signal == SIGKILL);
}

TEST_CASE("child: signal_group from another thread never races the reap") {
  // The owner reaps while another thread signals, as CgiRunner::stop_all does; signalling must stop
  // exactly when the reap happens (checked under TSan/ASan builds; here: no stray signal, no crash).
  for (int round = 0; round < 50; ++round) {
    Child child = spawn({"/bin/true"});
    std::atomic<bool> done{false};
    std::thread signaller([&] {
      while (!done.load()) child.signal_group(0);
    });
    auto status = child.wait_until(Clock::now() + kBound);
    done = true;
    signaller.join();
    REQUIRE(status);
    CHECK(status->success());
  }
}

TEST_CASE("child: check_executable says why a command could not start") {
  TempDir dir;
  auto reason = [](const common::Status& status) {
    return status ? std::string() : status.error().context;
  };
  std::string script = dir.path + "/handler.sh";
  std::ofstream(script) << "#!/bin/sh\necho hi\n";
  ::chmod(script.c_str(), 0755);
  SUBCASE("a runnable script, a program in PATH") {
    CHECK(common::check_executable(script, "", "/bin"));
    CHECK(common::check_executable("sh", dir.path, "/usr/bin:/bin"));
  }
  SUBCASE("missing") {
    auto status = common::check_executable(dir.path + "/absent", "", "/bin");
    REQUIRE_FALSE(status);
    CHECK(status.error().code == common::Error::Code::kBadGateway);
    CHECK(reason(status) == "cannot execute \"" + dir.path + "/absent\": No such file or directory");
    CHECK(reason(common::check_executable("fastfn-no-such-program", "", "/bin")).find(
              "No such file") != std::string::npos);
  }
  SUBCASE("not executable") {
    ::chmod(script.c_str(), 0644);
    CHECK(reason(common::check_executable(script, "", "/bin")).find("Permission denied") !=
          std::string::npos);
  }
  SUBCASE("a folder") {
    CHECK_FALSE(common::check_executable(dir.path, "", "/bin"));
  }
  SUBCASE("its interpreter is missing") {
    std::ofstream(script) << "#!/nonexistent/interpreter -x\necho hi\n";
    CHECK(reason(common::check_executable(script, "", "/bin")).find(script) != std::string::npos);
  }
  SUBCASE("workdir missing or not a folder") {
    CHECK(reason(common::check_executable("sh", dir.path + "/absent", "/bin")) ==
          "cannot enter workdir \"" + dir.path + "/absent\": No such file or directory");
    CHECK(reason(common::check_executable("sh", script, "/bin")).find("Not a directory") !=
          std::string::npos);
  }
  SUBCASE("a relative path is taken from the workdir, as exec takes it") {
    CHECK(common::check_executable("./handler.sh", dir.path, "/bin"));
    CHECK_FALSE(common::check_executable("./handler.sh", "/", "/bin"));
  }
}
