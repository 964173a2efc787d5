#include "gateway/dependency_installer.h"

#include <fmt/ranges.h>
#include <poll.h>

#include <array>
#include <filesystem>
#include <fstream>
#include <system_error>

#include "common/child.h"
#include "common/line_splitter.h"
#include "common/logging.h"
#include "common/unique_fd.h"

namespace gateway {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

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
      log->info("install done function={}", job.function);
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
      log->error("install result not recorded, not tried again function={} path={}",
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
  // pip's and npm's output is a child's like any function's: escaped and bounded in the log.
  static const auto log = common::logger("gateway.install");
  std::array<std::string, 2> last;  // each pipe's last line: stderr's says why a failure failed
  auto emit_to = [&](std::size_t pipe) -> common::LineSplitter::Emit {
    return [&, pipe](std::string_view line) {
      if (line.empty()) return;
      last[pipe] = std::string(line);
      log->info("install function={}: {}", job.function, line);  // a child's line: log_fields.h
    };
  };
  const std::array<common::LineSplitter::Emit, 2> emit{emit_to(0), emit_to(1)};
  std::array<common::LineSplitter, 2> lines;
  std::array<common::UniqueFd*, 2> pipes{&child->stdout_fd(), &child->stderr_fd()};
  const auto give_up = Clock::now() + timeout_;
  auto timed_out = [&] {
    child->terminate();
    return "timed out after " + std::to_string(timeout_.count()) + " s";
  };
  while (pipes[0]->valid() || pipes[1]->valid()) {
    {
      std::lock_guard lock(mutex_);
      if (stopping_) return "stopped";
    }
    if (Clock::now() >= give_up) return timed_out();
    std::array<pollfd, 2> fds{};
    for (std::size_t i = 0; i < 2; ++i)
      fds[i] = {pipes[i]->valid() ? pipes[i]->get() : -1, POLLIN, 0};
    if (::poll(fds.data(), 2, 200) < 0 && errno != EINTR) break;
    for (std::size_t i = 0; i < 2; ++i) {
      if (!pipes[i]->valid() || fds[i].revents == 0) continue;
      std::string bytes;
      if (common::read_append(pipes[i]->get(), bytes) <= 0) {
        lines[i].flush(emit[i]);
        pipes[i]->reset();
        continue;
      }
      lines[i].feed(bytes, emit[i]);
    }
  }
  auto status = child->wait_until(give_up);
  if (!status) return timed_out();
  if (status->success()) return "";
  const std::string& reason = last[1].empty() ? last[0] : last[1];
  return job.tool + " ended with " + status->describe() + (reason.empty() ? "" : ": " + reason);
}

}  // namespace gateway
