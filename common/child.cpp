#include "common/child.h"

#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <mutex>
#include <system_error>

#include "common/owned_children.h"

namespace common {

struct Child::Reaping {
  std::mutex mutex;
  bool reaped = false;
};

namespace {

using Clock = std::chrono::steady_clock;

// Under ThreadSanitizer the child is made by fork, not clone(CLONE_VM): TSan's clone interceptor
// re-initialises its runtime in the child (thread registry, fd table), and with CLONE_VM that is the
// parent's memory, so a busy parent's TSan then fails its own checks. A forked child has its own
// copy, and reports the step that failed through a pipe instead of in the shared ChildSetup.
#if defined(__SANITIZE_THREAD__)
constexpr bool kChildSharesMemory = false;
#else
constexpr bool kChildSharesMemory = true;
#endif

// What the child reads between clone and exec. It lives on the parent's stack: with CLONE_VM |
// CLONE_VFORK the parent thread is suspended until the child has exec'd or exited, so the child may
// read it and write `error` back (a forked child writes them to `report_fd` instead).
struct ChildSetup {
  char* const* argv;
  char* const* envp;
  const char* workdir;  // nullptr keeps the parent's
  int stdio_fds[3];     // what goes onto 0, 1, 2: a pipe end, -1 /dev/null, -2 inherit, -3 fd 1
  bool contain_descendants;
  int parent_death_signal;
  pid_t parent;
  int error = 0;  // errno of the step that failed; the child then exits 127
  enum class Stage : int { kNone, kSetup, kWorkdir, kExec } stage = Stage::kNone;
  int report_fd = -1;  // a forked child's end of the report pipe (close-on-exec)
};

// What a forked child writes to the report pipe when a step fails; nothing (EOF at exec) when none.
struct ChildReport {
  ChildSetup::Stage stage;
  int error;
};

constexpr int kNullFd = -1;
constexpr int kInheritFd = -2;
constexpr int kStdoutFd = -3;  // stderr onto what stdout became

[[noreturn]] void child_fails(ChildSetup& setup, ChildSetup::Stage stage) {
  setup.error = errno;
  setup.stage = stage;
  if (setup.report_fd >= 0) {
    ChildReport report{stage, setup.error};
    [[maybe_unused]] auto ignored = ::write(setup.report_fd, &report, sizeof report);
  }
  ::_exit(127);
}

bool resets_to_default(int sig) {
  // Signals the parent ignores (SIGPIPE) or blocks for its signal thread must not reach the program
  // so; POSIX keeps an ignored disposition across exec.
  for (int listed : {SIGPIPE, SIGTERM, SIGINT, SIGHUP, SIGCHLD, SIGQUIT, SIGUSR1, SIGUSR2})
    if (sig == listed) return true;
  return false;
}

// The child, on its own stack but in the parent's memory: only async-signal-safe calls, no
// allocation, no locks. Every signal is blocked here until just before exec.
int child_main(void* arg) {
  auto& setup = *static_cast<ChildSetup*>(arg);
  if (::setpgid(0, 0) != 0) child_fails(setup, ChildSetup::Stage::kSetup);
  for (int sig = 1; sig < NSIG; ++sig) {
    if (sig == SIGKILL || sig == SIGSTOP) continue;
    struct sigaction old {};
    if (::sigaction(sig, nullptr, &old) != 0) continue;  // glibc's own signals: EINVAL
    // A handler must never run in this shared memory once the mask is cleared; exec would reset
    // it anyway.
    bool handled = old.sa_handler != SIG_DFL && old.sa_handler != SIG_IGN;
    if (handled || (old.sa_handler == SIG_IGN && resets_to_default(sig))) {
      struct sigaction fallback {};
      fallback.sa_handler = SIG_DFL;
      ::sigaction(sig, &fallback, nullptr);
    }
  }
  if (setup.contain_descendants && ::prctl(PR_SET_CHILD_SUBREAPER, 1) != 0)
    child_fails(setup, ChildSetup::Stage::kSetup);
  if (setup.parent_death_signal != 0) {
    if (::prctl(PR_SET_PDEATHSIG, setup.parent_death_signal) != 0)
      child_fails(setup, ChildSetup::Stage::kSetup);
    if (::getppid() != setup.parent) ::_exit(127);  // the parent died before the prctl took hold
  }
  for (int target = 0; target < 3; ++target) {
    int fd = setup.stdio_fds[target];
    if (fd == kInheritFd) continue;
    if (fd == kStdoutFd) fd = 1;  // set up already: the slots go in order
    if (fd == kNullFd) {
      fd = ::open("/dev/null", target == 0 ? O_RDONLY : O_WRONLY);
      if (fd < 0) child_fails(setup, ChildSetup::Stage::kSetup);
    }
    // The pipe ends are all above 2 (spawn() sees to it), so no dup2 clobbers a later source;
    // dup2 clears O_CLOEXEC on the copy.
    if (::dup2(fd, target) < 0) child_fails(setup, ChildSetup::Stage::kSetup);
  }
  // Poco's sockets are not O_CLOEXEC; marking everything above stderr close-on-exec keeps them out
  // of the program, and keeps a forked child's report pipe open until the exec.
  if (::close_range(3, ~0U, CLOSE_RANGE_CLOEXEC) != 0) child_fails(setup, ChildSetup::Stage::kSetup);
  if (setup.workdir && ::chdir(setup.workdir) != 0) child_fails(setup, ChildSetup::Stage::kWorkdir);
  sigset_t empty;
  sigemptyset(&empty);
  ::sigprocmask(SIG_SETMASK, &empty, nullptr);
  // Searches PATH for a name without '/', as posix_spawnp did (glibc's execvpe allocates nothing).
  ::execvpe(setup.argv[0], setup.argv, setup.envp);
  child_fails(setup, ChildSetup::Stage::kExec);
}

// The child's stack, mapped per spawn as glibc's posix_spawn does: room for execvpe's copy of argv
// when it runs a script without "#!" through /bin/sh.
class ChildStack {
 public:
  explicit ChildStack(std::size_t argc)
      : size_(round_up(64 * 1024 + argc * sizeof(char*) * 2)),
        base_(::mmap(nullptr, size_, PROT_READ | PROT_WRITE,
                     MAP_PRIVATE | MAP_ANONYMOUS | MAP_STACK | MAP_NORESERVE, -1, 0)) {
    if (base_ == MAP_FAILED) throw std::system_error(errno, std::system_category(), "mmap");
  }
  ~ChildStack() { ::munmap(base_, size_); }
  ChildStack(const ChildStack&) = delete;
  ChildStack& operator=(const ChildStack&) = delete;
  void* top() const noexcept { return static_cast<char*>(base_) + size_; }

 private:
  static std::size_t round_up(std::size_t n) {
    auto page = static_cast<std::size_t>(::sysconf(_SC_PAGESIZE));
    return (n + page - 1) / page * page;
  }
  std::size_t size_;
  void* base_;
};

// Blocks every signal in the calling thread for the duration of the clone, so that no handler runs
// in the child (which shares this memory) before it has reset them.
class AllSignalsBlocked {
 public:
  AllSignalsBlocked() {
    sigset_t all;
    sigfillset(&all);
    ::pthread_sigmask(SIG_BLOCK, &all, &old_);
  }
  ~AllSignalsBlocked() { ::pthread_sigmask(SIG_SETMASK, &old_, nullptr); }
  AllSignalsBlocked(const AllSignalsBlocked&) = delete;
  AllSignalsBlocked& operator=(const AllSignalsBlocked&) = delete;

 private:
  sigset_t old_;
};

std::vector<char*> c_strings(const std::vector<std::string>& strings) {
  std::vector<char*> out;
  out.reserve(strings.size() + 1);
  for (const auto& s : strings) out.push_back(const_cast<char*>(s.c_str()));
  out.push_back(nullptr);
  return out;
}

// A pipe end that is not 0, 1 or 2, so that putting the three in place never overwrites one not yet
// moved (a parent started with its stdio closed gets pipes on those numbers).
UniqueFd above_stdio(UniqueFd fd) {
  if (fd.get() > 2) return fd;
  int moved = ::fcntl(fd.get(), F_DUPFD_CLOEXEC, 3);
  if (moved < 0) throw std::system_error(errno, std::system_category(), "fcntl");
  return UniqueFd(moved);
}

// Sets up one stdio slot: a pipe (keeping the parent's end in `parent_end`), /dev/null, or nothing.
int plan_stdio(Stdio mode, int target, UniqueFd& parent_end, UniqueFd& child_end) {
  if (mode == Stdio::kInherit) return kInheritFd;
  if (mode == Stdio::kNull) return kNullFd;
  if (mode == Stdio::kStdout) return kStdoutFd;
  Pipe pipe = Pipe::create();
  bool child_reads = target == 0;
  child_end = above_stdio(std::move(child_reads ? pipe.read : pipe.write));
  // Ours too: an end on 0..2 would take whatever this process later writes to its own stdio.
  parent_end = above_stdio(std::move(child_reads ? pipe.write : pipe.read));
  return child_end.get();
}

// The ThreadSanitizer build's spawn: fork, then wait for the child's report (EOF once it has
// exec'd, the failed step otherwise) so that the caller sees what clone's shared setup tells it.
pid_t fork_child(ChildSetup& setup) {
  Pipe report = Pipe::create();
  pid_t pid = ::fork();
  if (pid == 0) {
    setup.report_fd = report.write.get();
    child_main(&setup);
  }
  if (pid < 0) return pid;
  report.write.reset();
  ChildReport got{};
  ssize_t n;
  while ((n = ::read(report.read.get(), &got, sizeof got)) < 0 && errno == EINTR) {
  }
  if (n == static_cast<ssize_t>(sizeof got)) {
    setup.stage = got.stage;
    setup.error = got.error;
  }
  return pid;
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
  Child child;
  UniqueFd child_ends[3];
  auto argv = c_strings(options.argv);
  auto envp = c_strings(options.env);
  ChildSetup setup{argv.data(),
                   envp.data(),
                   options.workdir.empty() ? nullptr : options.workdir.c_str(),
                   {plan_stdio(options.stdin_mode, 0, child.stdin_, child_ends[0]),
                    plan_stdio(options.stdout_mode, 1, child.stdout_, child_ends[1]),
                    plan_stdio(options.stderr_mode, 2, child.stderr_, child_ends[2])},
                   options.contain_descendants,
                   options.parent_death_signal,
                   ::getpid()};
  ChildStack stack(argv.size());
  pid_t pid = -1;
  {
    OwnedChildren::Guard owned;  // the pid is recorded before any orphan reaper can see it exit
    {
      AllSignalsBlocked blocked;
      pid = kChildSharesMemory
                ? ::clone(child_main, stack.top(), CLONE_VM | CLONE_VFORK | SIGCHLD, &setup)
                : fork_child(setup);
    }
    if (pid < 0) {
      return fail(Error::Code::kUnavailable,
                  "cannot start \"" + options.argv[0] + "\": " + std::strerror(errno));
    }
    if (setup.stage != ChildSetup::Stage::kNone) {
      int ignored = 0;
      while (::waitpid(pid, &ignored, 0) < 0 && errno == EINTR) {
      }
    } else {
      owned.add(pid);
    }
  }
  switch (setup.stage) {
    case ChildSetup::Stage::kNone:
      break;
    case ChildSetup::Stage::kWorkdir:
      return fail(Error::Code::kBadGateway, "cannot enter workdir \"" + options.workdir +
                                                "\": " + std::strerror(setup.error));
    case ChildSetup::Stage::kExec:
      return fail(Error::Code::kBadGateway,
                  "cannot execute \"" + options.argv[0] + "\": " + std::strerror(setup.error));
    case ChildSetup::Stage::kSetup:
      return fail(Error::Code::kUnavailable, "cannot set up \"" + options.argv[0] +
                                                 "\": " + std::strerror(setup.error));
  }
  child.pid_ = pid;
  child.reaping_ = std::make_unique<Reaping>();
  child.pidfd_ = open_pidfd(pid);
  return child;
}

Child::Child(Child&& other) noexcept
    : pid_(std::exchange(other.pid_, -1)),
      reaping_(std::move(other.reaping_)),
      pidfd_(std::move(other.pidfd_)),
      stdin_(std::move(other.stdin_)),
      stdout_(std::move(other.stdout_)),
      stderr_(std::move(other.stderr_)),
      status_(std::move(other.status_)) {}

Child& Child::operator=(Child&& other) noexcept {
  if (this != &other) {
    if (running()) terminate();
    pid_ = std::exchange(other.pid_, -1);
    reaping_ = std::move(other.reaping_);
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
  // Only while unreaped, under the lock the reap takes: the zombie keeps the pid, so the group id
  // cannot name anyone else. status_ is the owner's; the flag under the lock is what counts here.
  if (!reaping_) return;
  std::lock_guard lock(reaping_->mutex);
  if (!reaping_->reaped) ::kill(-pid_, sig);
}

std::optional<ExitStatus> Child::try_reap() {
  if (!running()) return status_;
  siginfo_t info{};
  // WNOWAIT: look without reaping, so the group can still be killed by its id.
  if (::waitid(P_PID, static_cast<id_t>(pid_), &info, WEXITED | WNOHANG | WNOWAIT) != 0 ||
      info.si_pid == 0) {
    return std::nullopt;
  }
  int wait_status = 0;
  {
    std::lock_guard lock(reaping_->mutex);
    ::kill(-pid_, SIGKILL);
    while (::waitpid(pid_, &wait_status, 0) < 0 && errno == EINTR) {
    }
    reaping_->reaped = true;
  }
  OwnedChildren::Guard().remove(pid_);
  status_ = decode(wait_status);
  pidfd_.reset();
  end_orphans();  // what it left outside its group came to us (a no-op unless we are a subreaper)
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

namespace {

// errno of exec for `path` as a program, 0 when it would run: a regular file with the execute bit,
// whose "#!" interpreter (if any) is one too.
int exec_errno(const std::string& path, int depth = 0) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) return errno;
  if (S_ISDIR(st.st_mode)) return EISDIR;
  if (!S_ISREG(st.st_mode) || ::access(path.c_str(), X_OK) != 0) return EACCES;
  std::ifstream in(path, std::ios::binary);
  std::string line;
  if (depth > 0 || !std::getline(in, line) || !line.starts_with("#!")) return 0;
  auto begin = line.find_first_not_of(" \t", 2);
  if (begin == std::string::npos) return ENOEXEC;
  std::string interpreter = line.substr(begin, line.find_first_of(" \t\r", begin) - begin);
  return exec_errno(interpreter, depth + 1);
}

}  // namespace

Status check_executable(const std::string& argv0, const std::string& workdir,
                        const std::string& path_env) {
  if (!workdir.empty()) {
    struct stat st {};
    int err = ::stat(workdir.c_str(), &st) != 0 ? errno
              : !S_ISDIR(st.st_mode)             ? ENOTDIR
              : ::access(workdir.c_str(), X_OK) != 0 ? errno
                                                     : 0;
    if (err != 0)
      return fail(Error::Code::kBadGateway,
                  "cannot enter workdir \"" + workdir + "\": " + std::strerror(err));
  }
  std::string path = find_executable(argv0, path_env);
  int err = ENOENT;
  if (!path.empty()) {
    if (path[0] != '/' && !workdir.empty()) path = workdir + "/" + path;  // exec runs after chdir
    err = exec_errno(path);
  }
  if (err != 0)
    return fail(Error::Code::kBadGateway,
                "cannot execute \"" + argv0 + "\": " + std::strerror(err));
  return {};
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
