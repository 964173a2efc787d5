#include "gateway/supervisor.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <system_error>
#include <utility>

#include "common/logging.h"
#include "gateway/watchdog_output.h"

namespace gateway {
namespace {

using std::chrono::milliseconds;

constexpr std::chrono::seconds kStartupAllowance{5};

std::shared_ptr<spdlog::logger> log() {
  static const auto logger = common::logger("gateway.supervisor");
  return logger;
}

std::string path_of(const std::vector<std::string>& env) {
  for (const auto& entry : env)
    if (entry.starts_with("PATH=")) return entry.substr(5);
  return "/usr/local/bin:/usr/bin:/bin";  // what exec's own search falls back to
}

}  // namespace

std::optional<std::string> launch_problem(const DaemonSpec& spec) {
  if (spec.command.empty()) return std::nullopt;  // nothing to check (an argv-only spec)
  // The checks exec makes (common/child), with the PATH the watchdog will search.
  auto runnable = common::check_executable(spec.command.front(), spec.workdir, path_of(spec.env));
  if (runnable) return std::nullopt;
  return runnable.error().context;
}

milliseconds RestartBackoff::exited(Clock::time_point started, Clock::time_point now) {
  if (now - started >= kStableAfter) failures_ = 0;
  return failed_to_start();
}

milliseconds RestartBackoff::failed_to_start() {
  auto delay = std::min(kMax, kMin * (1 << std::min(failures_, 10)));
  ++failures_;
  return delay;
}

// Not checked by -fsanitize=vptr: this runs when fds are exhausted, and that check of the caught
// exception's type makes a pipe to probe memory, so without a free fd it reports the exception's
// vptr as invalid (the supervisor test that leaves one fd free).
__attribute__((no_sanitize("vptr"))) common::Result<common::Child> spawn_watchdog(
    const DaemonSpec& spec, std::string* no_pipe) {
  common::SpawnOptions options{spec.argv, spec.env, "", common::Stdio::kNull, common::Stdio::kPipe,
                               common::Stdio::kStdout};
  try {
    return common::Child::spawn(options);
  } catch (const std::system_error& e) {  // no pipe (or no pidfd): try once more without the pipe
    *no_pipe = e.what();
  }
  options.stdout_mode = options.stderr_mode = common::Stdio::kInherit;
  try {
    return common::Child::spawn(options);
  } catch (const std::exception& e) {  // no pidfd either: retried like a failure
    return common::fail(common::Error::Code::kUnavailable, e.what());
  }
}

Supervisor::Supervisor() : wakeup_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (!wakeup_) throw std::system_error(errno, std::system_category(), "eventfd");
  thread_ = std::thread([this] { run(); });
}

Supervisor::~Supervisor() { stop_all(); }

void Supervisor::wake() {
  std::uint64_t one = 1;
  [[maybe_unused]] auto written = ::write(wakeup_.get(), &one, sizeof(one));
}

void Supervisor::start(DaemonSpec spec, Start when) {
  {
    std::lock_guard lock(mutex_);
    Daemon& daemon = daemons_.emplace_back();
    daemon.spec = std::move(spec);
    daemon.parked = when == Start::kParked;
    if (daemon.parked) {  // cold, but a function that cannot run says so before its first request
      daemon.spec.upstream->park();
      daemon.spec.upstream->set_problem(launch_problem(daemon.spec));
    } else {  // launched by the supervisor's thread (see launch_locked), as soon as it wakes
      auto now = Clock::now();
      daemon.restart_at = now;
      daemon.spec.upstream->starting(now + kStartupAllowance);
    }
  }
  wake();
}

Supervisor::Daemon* Supervisor::find_locked(const std::shared_ptr<Upstream>& upstream) {
  for (Daemon& daemon : daemons_)
    if (daemon.spec.upstream == upstream && !daemon.stopping) return &daemon;
  return nullptr;
}

void Supervisor::terminate_locked(Daemon& daemon, Clock::time_point now) {
  if (!daemon.child || daemon.told_to_stop) return;
  daemon.told_to_stop = true;
  daemon.kill_at = now + kStopGrace;
  daemon.child->signal_group(SIGTERM);
}

void Supervisor::stop(const std::shared_ptr<Upstream>& upstream) {
  {
    std::lock_guard lock(mutex_);
    if (Daemon* daemon = find_locked(upstream)) {
      daemon->stopping = true;
      terminate_locked(*daemon, Clock::now());
    }
  }
  wake();
}

void Supervisor::park(const std::shared_ptr<Upstream>& upstream) {
  {
    std::lock_guard lock(mutex_);
    Daemon* daemon = find_locked(upstream);
    if (!daemon || daemon->parked) return;
    daemon->parked = true;
    daemon->backoff.reset();
    upstream->park();
    terminate_locked(*daemon, Clock::now());
    // The draining watchdog keeps its listening fd but takes no new connection: requests that
    // unpark it wait for the next one instead of reaching this one as it exits.
    ::unlink(daemon->spec.socket_path.c_str());
  }
  wake();
}

void Supervisor::unpark(const std::shared_ptr<Upstream>& upstream) {
  {
    std::lock_guard lock(mutex_);
    Daemon* daemon = find_locked(upstream);
    if (!daemon || !daemon->parked) return;
    daemon->parked = false;
    auto now = Clock::now();
    daemon->restart_at = now;
    // Launched by the supervisor's thread at once, or once the old process has exited; requests
    // wait for its socket meanwhile.
    upstream->starting(now + kStartupAllowance);
  }
  wake();
}

// Only ever on the supervisor's thread, which lives as long as the gateway serves: a watchdog
// follows its gateway with PR_SET_PDEATHSIG, which fires when the THREAD that spawned it exits, so
// a watchdog spawned from a connection thread would be stopped when the pool retires that thread.
void Supervisor::launch_locked(Daemon& daemon, Clock::time_point now) {
  assert(std::this_thread::get_id() == supervisor_thread_);
  // No unlink here: a file at the path may be a live socket (the watchdog's listener removes only
  // one that refuses connections, and otherwise refuses to start).
  Upstream& upstream = *daemon.spec.upstream;
  if (auto problem = launch_problem(daemon.spec)) {
    // Nothing it could serve: not ready with the reason (its route answers 503 with it) rather
    // than a watchdog that answers every request with 502. Checked again at each retry.
    if (upstream.problem() != problem)
      log()->error("function cannot run function={} index={} error=\"{}\"", upstream.function(),
                   upstream.index(), *problem);
    upstream.mark(Upstream::State::kDown, *problem);
    upstream.set_problem(std::move(problem));
    daemon.restart_at = now + daemon.backoff.failed_to_start();
    return;
  }
  std::string no_pipe;
  auto child = spawn_watchdog(daemon.spec, &no_pipe);
  if (!no_pipe.empty() && child && !std::exchange(no_pipe_logged_, true))
    log()->warn("watchdog output not captured, it writes to the gateway's stderr itself (said "
                "once) function={} index={} error=\"{}\"", upstream.function(), upstream.index(),
                no_pipe);
  if (!child) {
    upstream.mark(Upstream::State::kDown, child.error().context);
    daemon.restart_at = now + daemon.backoff.failed_to_start();
    log()->error("watchdog failed to start function={} index={} error=\"{}\"", upstream.function(),
                 upstream.index(), child.error().context);
    return;
  }
  daemon.started_at = now;
  daemon.told_to_stop = false;
  upstream.set_pid(child->pid());
  upstream.starting(now + kStartupAllowance);
  log()->info("watchdog started function={} index={} pid={} socket={}", upstream.function(),
              upstream.index(), child->pid(), daemon.spec.socket_path);
  if (child->stdout_fd())
    pump_.add(std::move(child->stdout_fd()), std::make_unique<WatchdogOutput>(daemon.spec.log));
  daemon.child = std::move(*child);
}

void Supervisor::reap_locked(Daemon& daemon, Clock::time_point now) {
  auto status = daemon.child->try_reap();
  if (!status) return;
  daemon.child.reset();
  Upstream& upstream = *daemon.spec.upstream;
  upstream.set_pid(0);
  if (daemon.stopping || daemon.parked) return;
  if (daemon.told_to_stop) {  // parked and unparked while it drained: start the next one now
    daemon.restart_at = now;
    return;
  }
  auto delay = daemon.backoff.exited(daemon.started_at, now);
  daemon.restart_at = now + delay;
  upstream.mark(Upstream::State::kDown, "watchdog exited: " + status->describe());
  upstream.count_restart();
  log()->error("watchdog exited function={} index={} status=\"{}\" restart_in_ms={}",
               upstream.function(), upstream.index(), status->describe(), delay.count());
}

int Supervisor::poll_timeout_locked(Clock::time_point now) const {
  auto next = now + std::chrono::seconds(1);
  for (const Daemon& daemon : daemons_) {
    if (daemon.child && daemon.told_to_stop) next = std::min(next, daemon.kill_at);
    else if (!daemon.child && !daemon.stopping && !daemon.parked)
      next = std::min(next, daemon.restart_at);
  }
  auto left = std::chrono::duration_cast<milliseconds>(next - now).count();
  return static_cast<int>(std::clamp<long long>(left + 1, 0, 1000));
}

void Supervisor::run() {
  std::unique_lock lock(mutex_);
  supervisor_thread_ = std::this_thread::get_id();
  while (!quit_) {
    std::vector<pollfd> fds{{wakeup_.get(), POLLIN, 0}};
    for (const Daemon& daemon : daemons_)
      if (daemon.child) fds.push_back({daemon.child->exit_fd(), POLLIN, 0});
    int timeout = poll_timeout_locked(Clock::now());
    lock.unlock();
    ::poll(fds.data(), fds.size(), timeout);
    std::uint64_t drained;
    [[maybe_unused]] auto read = ::read(wakeup_.get(), &drained, sizeof(drained));
    lock.lock();
    auto now = Clock::now();
    for (auto it = daemons_.begin(); it != daemons_.end();) {
      Daemon& daemon = *it;
      if (daemon.child) reap_locked(daemon, now);
      if (daemon.told_to_stop && daemon.child && now >= daemon.kill_at)
        daemon.child->signal_group(SIGKILL);
      if (daemon.stopping && !daemon.child) {
        ::unlink(daemon.spec.socket_path.c_str());
        it = daemons_.erase(it);
        continue;
      }
      if (!daemon.stopping && !daemon.parked && !daemon.child && now >= daemon.restart_at)
        launch_locked(daemon, now);
      ++it;
    }
  }
}

void Supervisor::stop_all(milliseconds grace) {
  {
    std::lock_guard lock(mutex_);
    if (quit_ && daemons_.empty()) return;
    quit_ = true;
  }
  wake();
  if (thread_.joinable()) thread_.join();
  std::lock_guard lock(mutex_);
  for (Daemon& daemon : daemons_)
    if (daemon.child) daemon.child->signal_group(SIGTERM);
  auto deadline = Clock::now() + grace;
  for (Daemon& daemon : daemons_) {
    if (daemon.child && !daemon.child->wait_until(deadline)) daemon.child->terminate(milliseconds(0));
    daemon.child.reset();
    ::unlink(daemon.spec.socket_path.c_str());
  }
  daemons_.clear();
  pump_.stop();  // their last lines, before the gateway says it stopped
}

}  // namespace gateway
