#include "common/child.h"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "common/owned_children.h"

namespace common {
namespace {

using Clock = std::chrono::steady_clock;

class SpawnActions {
 public:
  SpawnActions() { posix_spawn_file_actions_init(&actions_); }
  ~SpawnActions() { posix_spawn_file_actions_destroy(&actions_); }
  SpawnActions(const SpawnActions&) = delete;
  SpawnActions& operator=(const SpawnActions&) = delete;
  posix_spawn_file_actions_t* get() { return &actions_; }

 private:
  posix_spawn_file_actions_t actions_;
};

class SpawnAttributes {
 public:
  SpawnAttributes() {
    posix_spawnattr_init(&attr_);
    sigset_t empty, defaults;
    sigemptyset(&empty);
    // Signals the parent blocks or ignores (its signal thread, SIGPIPE) must not reach the child so.
    sigemptyset(&defaults);
    for (int sig : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGQUIT, SIGUSR1, SIGUSR2})
      sigaddset(&defaults, sig);
    posix_spawnattr_setsigmask(&attr_, &empty);
    posix_spawnattr_setsigdefault(&attr_, &defaults);
    posix_spawnattr_setpgroup(&attr_, 0);
    posix_spawnattr_setflags(&attr_, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGMASK |
                                         POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_USEVFORK);
  }
  ~SpawnAttributes() { posix_spawnattr_destroy(&attr_); }
  SpawnAttributes(const SpawnAttributes&) = delete;
  SpawnAttributes& operator=(const SpawnAttributes&) = delete;
  posix_spawnattr_t* get() { return &attr_; }

 private:
  posix_spawnattr_t attr_;
};

std::vector<char*> c_strings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const auto& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// Sets up one stdio slot: a pipe (keeping the parent's end in `parent_end`), /dev/null, or nothing.
void plan_stdio(SpawnActions& actions, Stdio mode, int target, UniqueFd& parent_end,
                UniqueFd& child_end) {
  if (mode == Stdio::kInherit) return;
  if (mode == Stdio::kNull) {
    posix_spawn_file_actions_addopen(actions.get(), target, "/dev/null",
                                     target == 0 ? O_RDONLY : O_WRONLY, 0);
    return;
  }
  Pipe pipe = Pipe::create();
  bool child_reads = target == 0;
  child_end = std::move(child_reads ? pipe.read : pipe.write);
  parent_end = std::move(child_reads ? pipe.write : pipe.read);
  // dup2 onto 0/1/2 clears O_CLOEXEC on the child's copy only.
  posix_spawn_file_actions_adddup2(actions.get(), child_end.get(), target);
}

ExitStatus decode(int wait_status) {
  if (WIFSIGNALED(wait_status)) {
    int sig = WTERMSIG(wait_status);
    return ExitStatus{128 + sig, sig};
  }
  return ExitStatus{WEXITSTATUS(wait_status), 0};
}

UniqueFd open_pidfd(pid_t pid) {
  int fd = static_cast<int>(::syscall(SYS_pidfd_open, pid, 0));
  if (fd < 0) throw std::system_error(errno, std::system_category(), "pidfd_open");
  return UniqueFd(fd);
}

}  // namespace

std::string ExitStatus::describe() const {
  if (signal != 0) return "killed by signal " + std::to_string(signal) + " (" + strsignal(signal) + ")";
  return "exit code " + std::to_string(code);
}

Result<Child> Child::spawn(const SpawnOptions& options) {
  SpawnActions actions;
  SpawnAttributes attributes;
  Child child;
  UniqueFd child_ends[3];
  plan_stdio(actions, options.stdin_mode, 0, child.stdin_, child_ends[0]);
  plan_stdio(actions, options.stdout_mode, 1, child.stdout_, child_ends[1]);
  plan_stdio(actions, options.stderr_mode, 2, child.stderr_, child_ends[2]);
  // Poco's sockets are not O_CLOEXEC; closing everything above stderr keeps them out of the child.
  posix_spawn_file_actions_addclosefrom_np(actions.get(), 3);
  if (!options.workdir.empty())
    posix_spawn_file_actions_addchdir_np(actions.get(), options.workdir.c_str());

  auto argv = c_strings(options.argv);
  auto envp = c_strings(options.env);
  pid_t pid = -1;
  int rc;
  {
    OwnedChildren::Guard owned;  // the pid is recorded before any orphan reaper can see it exit
    rc = ::posix_spawnp(&pid, argv[0], actions.get(), attributes.get(), argv.data(), envp.data());
    if (rc == 0) owned.add(pid);
  }
  if (rc != 0 && !options.workdir.empty() && ::access(options.workdir.c_str(), X_OK) != 0) {
    return fail(Error::Code::kBadGateway, "cannot enter workdir \"" + options.workdir + "\": " +
                                              std::strerror(errno));
  }
  if (rc != 0) {
    return fail(Error::Code::kBadGateway,
                "cannot execute \"" + options.argv[0] + "\": " + std::strerror(rc));
  }
  child.pid_ = pid;
  child.pidfd_ = open_pidfd(pid);
  return child;
}

Child::Child(Child&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      pidfd_(std::move(other.pidfd_)),
      stdin_(std::move(other.stdin_)),
      stdout_(std::move(other.stdout_)),
      stderr_(std::move(other.stderr_)),
      status_(std::move(other.status_)) {}

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    if (running()) terminate();
    pid_ = std::exchange(other.pid_, -1);
    pidfd_ = std::move(other.pidfd_);
    stdin_ = std::move(other.stdin_);
    stdout_ = std::move(other.stdout_);
    stderr_ = std::move(other.stderr_);
    status_ = std::move(other.status_);
  }
  return *this;
}

Child::~Child() {
  if (running()) terminate();
}

void Child::signal_group(int sig) noexcept {
  // Only while unreaped: the zombie keeps the pid, so the group id cannot name anyone else.
  if (running()) ::kill(-pid_, sig);
}

std::optional<ExitStatus> Child::try_reap() {
  if (!running()) return status_;
  siginfo_t info{};
  // WNOWAIT: look without reaping, so the group can still be killed by its id.
  if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
      info.si_pid == 0) {
    return std::nullopt;
  }
  ::kill(-pid_, SIGKILL);
  int wait_status = 0;
  while (::waitpid(pid_, &wait_status, 0) < 0 && errno == EINTR) {
  }
  OwnedChildren::Guard().remove(pid_);
  status_ = decode(wait_status);
  pidfd_.reset();
  return status_;
}

std::optional<ExitStatus> Child::wait_until(Clock::time_point deadline) {
  while (running()) {
    if (auto status = try_reap()) return status;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) return std::nullopt;
    pollfd pfd{pidfd_.get(), POLLIN, 0};
    ::poll(&pfd, 1, static_cast<int>(std::min<long long>(left.count() + 1, 1000)));
  }
  return status_;
}

ExitStatus Child::terminate(std::chrono::milliseconds grace) {
  if (!running()) return status_.value_or(ExitStatus{});
  signal_group(SIGTERM);
  if (auto status = wait_until(Clock::now() + grace)) return *status;
  signal_group(SIGKILL);
  return wait_until(Clock::time_point::max()).value_or(ExitStatus{137, SIGKILL});
}

std::string find_executable(const std::string& name, const std::string& path_env) {
  if (name.find('/') != std::string::npos) return name;
  std::size_t start = 0;
  while (start <= path_env.size()) {
    std::size_t end = path_env.find(':', start);
    if (end == std::string::npos) end = path_env.size();
    std::string dir = path_env.substr(start, end - start);
    std::string candidate = (dir.empty() ? std::string(".") : dir) + "/" + name;
    struct stat st {};
    if (::stat(candidate.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
        ::access(candidate.c_str(), X_OK) == 0) {
      return candidate;
    }
    start = end + 1;
  }
  return "";
}

}  // namespace common
