// Runs DependencyInstalls one at a time on a thread of its own (an install blocks for as long as
// pip or npm takes, minutes at worst, which no request thread or the reload path can wait for),
// logs their output line by line under the function's name, writes the state files discovery
// reads (dependencies.h), and calls `done` after each so the functions dir is scanned again. A job
// already queued or running for the same function and hash is not queued twice. Destroying it
// stops the running install (its process group) and drops the queue.
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "gateway/dependencies.h"

namespace gateway {

class DependencyInstaller {
 public:
  // `env`: the installs' environment ("NAME=value"), the gateway's own. `done` runs on the
  // installer's thread, with no lock of the installer held.
  DependencyInstaller(std::vector<std::string> env, std::function<void()> done,
                      std::chrono::seconds timeout = std::chrono::minutes(10));
  ~DependencyInstaller();
  DependencyInstaller(const DependencyInstaller&) = delete;
  DependencyInstaller& operator=(const DependencyInstaller&) = delete;

  void request(const std::vector<DependencyInstall>& installs);
  // Stops the running install and the thread; `done` is not called again. Idempotent.
  void stop();

 private:
  void run();
  // Runs one install to its end; "" when it succeeded, else why not.
  std::string install(const DependencyInstall& job);

  const std::vector<std::string> env_;
  const std::function<void()> done_;
  const std::chrono::seconds timeout_;
  std::mutex mutex_;
  std::condition_variable wakeup_;
  std::deque<DependencyInstall> queue_;
  // function, hash: queued, running, or done without its result recorded (a folder that cannot
  // be written), which is never tried again.
  std::set<std::pair<std::string, std::string>> pending_;
  bool stopping_ = false;
  std::thread thread_;  // last: started once the rest is built
};

}  // namespace gateway
