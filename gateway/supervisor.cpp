#include "gateway/supervisor.h"

#include <poll.h>
#include <signal.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <system_error>

#include "common/logging.h"

namespace gateway {
namespace {

using std::chrono::milliseconds;

constexpr milliseconds kMinBackoff{100};
constexpr milliseconds kMaxBackoff{5000};
constexpr std::chrono::seconds kStableAfter{10};
constexpr std::chrono::seconds kStartupAllowance{5};

std::shared_ptr<spdlog::logger> log() {
  static const auto logger = common::logger("gateway.supervisor");
  return logger;
}

milliseconds backoff(int failures) {
  return std::min(kMaxBackoff, kMinBackoff * (1 << std::min(failures, 10)));
}

}  // namespace

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
    if (daemon.parked) daemon.spec.upstream->park();
    else launch_locked(daemon, Clock::now());
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
    daemon->failures = 0;
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
    if (!daemon->child) launch_locked(*daemon, now);
    else upstream->starting(now + kStartupAllowance);  // launched once the old process exits
  }
  wake();
}

void Supervisor::launch_locked(Daemon& daemon, Clock::time_point now) {
  // No unlink here: a file at the path may be a live socket (the watchdog's listener removes only
  // one that refuses connections, and otherwise refuses to start).
  common::SpawnOptions options{daemon.spec.argv, daemon.spec.env, "", common::Stdio::kNull,
                               common::Stdio::kInherit, common::Stdio::kInherit};
  auto child = common::Child::spawn(options);
  Upstream& upstream = *daemon.spec.upstream;
  if (!child) {
    upstream.mark(Upstream::State::kDown, child.error().context);
    daemon.restart_at = now + backoff(daemon.failures++);
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
  if (now - daemon.started_at >= kStableAfter) daemon.failures = 0;
  auto delay = backoff(daemon.failures++);
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
}

}  // namespace gateway
