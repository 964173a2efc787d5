#include "gateway/dependency_installer.h"

#include <fmt/ranges.h>
#include <poll.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "common/child.h"
#include "common/logging.h"
#include "common/unique_fd.h"

namespace gateway {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

constexpr std::size_t kMaxLogLine = 2000;

// Replaces `path` with `text` whole (written aside, then renamed).
bool write_file(const fs::path& path, const std::string& text) {
  const fs::path tmp = path.string() + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    out << text;
    if (!out.flush()) return false;
  }
  std::error_code ec;
  fs::rename(tmp, path, ec);
  return !ec;
}

// Splits one pipe's bytes into lines, each logged; keeps the last non-empty one.
struct OutputLines {
  std::string pending;
  std::string last;
  void feed(std::string_view bytes, const std::string& function, bool end) {
    static const auto log = common::logger("gateway.install");
    pending.append(bytes);
    std::size_t start = 0;
    for (auto newline = pending.find('\n'); newline != std::string::npos || end;
         newline = pending.find('\n', start)) {
      std::string_view line(pending.data() + start,
                            (newline == std::string::npos ? pending.size() : newline) - start);
      if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
      if (!line.empty()) {
        last = std::string(line.substr(0, kMaxLogLine));
        log->info("install function={} {}", function, last);
      }
      if (newline == std::string::npos) {
        start = pending.size();
        break;
      }
      start = newline + 1;
    }
    pending.erase(0, start);
  }
};

}  // namespace

DependencyInstaller::DependencyInstaller(std::vector<std::string> env, std::function<void()> done,
                                         std::chrono::seconds timeout)
    : env_(std::move(env)), done_(std::move(done)), timeout_(timeout), thread_([this] { run(); }) {}

DependencyInstaller::~DependencyInstaller() { stop(); }

void DependencyInstaller::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    queue_.clear();
  }
  wakeup_.notify_all();
  if (thread_.joinable()) thread_.join();
}

void DependencyInstaller::request(const std::vector<DependencyInstall>& installs) {
  std::lock_guard lock(mutex_);
  for (const auto& job : installs) {
    if (!pending_.emplace(job.function, job.hash).second) continue;
    common::logger("gateway.install")
        ->info("install function={} queued manifest={} command=\"{}\"", job.function, job.manifest,
               fmt::join(job.argv, " "));
    queue_.push_back(job);
  }
  wakeup_.notify_one();
}

void DependencyInstaller::run() {
  for (;;) {
    DependencyInstall job;
    {
      std::unique_lock lock(mutex_);
      wakeup_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
      if (stopping_) return;
      job = std::move(queue_.front());
      queue_.pop_front();
    }
    const std::string failure = install(job);
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return;  // stopped halfway: no verdict is written
    }
    const fs::path state = job.dir / kStateDir;
    const auto log = common::logger("gateway.install");
    std::error_code ec;
    bool recorded;
    if (failure.empty()) {
      if (!job.staging.empty()) {
        fs::remove_all(job.target, ec);
        fs::rename(job.staging, job.target, ec);
      }
      fs::remove(state / "deps.failed", ec);
      recorded = write_file(state / "deps.ok", job.hash + "\n");
      log->info("install function={} done", job.function);
    } else {
      if (!job.staging.empty()) fs::remove_all(job.staging, ec);
      recorded = write_file(state / "deps.failed", job.hash + "\n" + failure + "\n");
      log->error("install function={} failed reason=\"{}\"", job.function, failure);
    }
    if (recorded) {
      std::lock_guard lock(mutex_);
      pending_.erase({job.function, job.hash});
    } else {
      // Discovery would ask again at once, for ever: kept pending until the gateway restarts.
      log->error("install function={} cannot record its result in {}; not tried again",
                 job.function, state.string());
    }
    done_();
  }
}

std::string DependencyInstaller::install(const DependencyInstall& job) {
  std::error_code ec;
  fs::create_directories(job.dir / kStateDir, ec);
  if (ec) return "cannot create " + (job.dir / kStateDir).string() + ": " + ec.message();
  if (!job.staging.empty()) fs::remove_all(job.staging, ec);
  common::SpawnOptions options{job.argv,
                               env_,
                               job.dir.string(),
                               common::Stdio::kNull,
                               common::Stdio::kPipe,
                               common::Stdio::kPipe,
                               false,
                               0};
  auto child = common::Child::spawn(options);
  if (!child) return child.error().context;
  OutputLines out, err;
  std::array<common::UniqueFd*, 2> pipes{&child->stdout_fd(), &child->stderr_fd()};
  const auto give_up = Clock::now() + timeout_;
  while (pipes[0]->valid() || pipes[1]->valid()) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return "stopped";
    }
    if (Clock::now() >= give_up) {
      child->terminate();
      return "timed out after " + std::to_string(timeout_.count()) + " s";
    }
    std::array<pollfd, 2> fds{};
    for (std::size_t i = 0; i < 2; ++i)
      fds[i] = {pipes[i]->valid() ? pipes[i]->get() : -1, POLLIN, 0};
    if (::poll(fds.data(), 2, 200) < 0 && errno != EINTR) break;
    for (std::size_t i = 0; i < 2; ++i) {
      if (!pipes[i]->valid() || fds[i].revents == 0) continue;
      std::string bytes;
      if (common::read_append(pipes[i]->get(), bytes) <= 0) {
        (i == 0 ? out : err).feed("", job.function, true);
        pipes[i]->reset();
        continue;
      }
      (i == 0 ? out : err).feed(bytes, job.function, false);
    }
  }
  auto status = child->wait_until(give_up);
  if (!status) {
    child->terminate();
    return "timed out after " + std::to_string(timeout_.count()) + " s";
  }
  if (status->success()) return "";
  const std::string& last = err.last.empty() ? out.last : err.last;
  return job.tool + " ended with " + status->describe() + (last.empty() ? "" : ": " + last);
}

}  // namespace gateway
