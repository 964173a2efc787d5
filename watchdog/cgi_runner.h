// Format cgi (the OpenFaaS classic watchdog, and CGI): each request starts COMMAND in its own
// process group with the RFC 3875 + OpenFaaS environment, streams the request body into its stdin
// while reading stdout (the response) and stderr (the log) concurrently, and waits for it. The
// exec-timeout kills the whole group (SIGTERM, then SIGKILL after 1s).
#pragma once

#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "common/child.h"
#include "watchdog/cgi_output.h"
#include "watchdog/options.h"
#include "watchdog/runner.h"

namespace watchdog {

class CgiRunner : public Runner {
 public:
  // `options` must outlive the runner. `base_env` is the watchdog's own environment ("K=V").
  CgiRunner(const Options& options, std::vector<std::string> base_env);

  common::Status serve(Invocation& invocation) override;
  Health health() const override { return {}; }
  Health ready() const override { return {}; }
  void render_metrics(std::string& out) const override;
  void stop_all() override;

 private:
  struct Target {
    std::string method;
    std::string target;
    bool with_body;
  };
  std::vector<std::string> environment(const Invocation& invocation, const Target& target) const;
  common::Status run_once(Invocation& invocation, const Target& target,
                          std::optional<std::string>* redirect);
  void log_failure(const Invocation& invocation, pid_t pid, const common::ExitStatus& exit,
                   const CgiOutput& output) const;
  void track(pid_t pgid, bool add);

  const Options& options_;
  std::vector<std::string> base_env_;
  std::vector<std::string> command_;  // argv[0] resolved in PATH once, at start

  mutable std::mutex mutex_;
  std::set<pid_t> running_;  // process groups of the requests in flight, for stop_all()
  bool stopping_ = false;
  std::atomic<std::uint64_t> spawns_{0};
  std::atomic<std::uint64_t> timeouts_{0};
  std::atomic<std::uint64_t> spawn_failures_{0};
};

}  // namespace watchdog
