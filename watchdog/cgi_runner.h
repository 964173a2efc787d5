// Format cgi (the OpenFaaS classic watchdog, and CGI): each request starts COMMAND in its own
// process group with the RFC 3875 + OpenFaaS environment, streams the request body into its stdin
// while reading stdout (the response) and stderr (the log) concurrently, and waits for it. The
// exec-timeout kills the whole group (SIGTERM, then SIGKILL after 1s). Each program is the subreaper
// of what it starts and dies with the request's thread (and so with a killed watchdog); what it
// leaves behind ends with its request (common/owned_children.h).
#pragma once

#include <atomic>
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
  // Healthy while it runs: a restart cannot install a missing command (a liveness probe on
  // /_/health must not kill it for that), and each request gets the 502 that says why.
  Health health() const override { return {}; }
  // Not ready while the command cannot be started (missing, not executable, no workdir): routing
  // stops sending it requests that would all get 502. Checked on each call, so installing the
  // command later heals it without a restart.
  Health ready() const override { return runnable(); }
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
  Health runnable() const;
  class Tracked;  // RAII: a request's Child in running_ for as long as it may be signalled

  const Options& options_;
  std::vector<std::string> base_env_;
  std::vector<std::string> command_;  // argv[0] resolved in PATH once, at start

  mutable std::mutex mutex_;
  std::set<common::Child*> running_;  // the programs of the requests in flight, for stop_all()
  bool stopping_ = false;
  std::atomic<std::uint64_t> spawns_{0};
  std::atomic<std::uint64_t> timeouts_{0};
  std::atomic<std::uint64_t> spawn_failures_{0};
};

}  // namespace watchdog
