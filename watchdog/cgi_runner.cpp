#include "watchdog/cgi_runner.h"

#include <signal.h>

#include <cstdlib>

#include "common/logging.h"
#include "common/prometheus.h"
#include "protocol/cgi_env.h"
#include "watchdog/cgi_call.h"
#include "watchdog/cgi_output.h"
#include "watchdog/request_info.h"

namespace watchdog {
namespace {

using common::Error;

constexpr int kMaxLocalRedirects = 5;

std::string path_env(const std::vector<std::string>& env) {
  for (const auto& entry : env)
    if (entry.starts_with("PATH=")) return entry.substr(5);
  return "/usr/local/bin:/usr/bin:/bin";
}

}  // namespace

// Signalling goes through the Child, never by a saved group id: the Child refuses once it has
// reaped (the id may name someone else by then), and it cannot be destroyed while tracked, since
// untracking takes the same lock as stop_all().
class CgiRunner::Tracked {
 public:
  Tracked(CgiRunner& runner, common::Child& child) : runner_(runner), child_(child) {
    std::lock_guard lock(runner_.mutex_);
    runner_.running_.insert(&child_);
    if (runner_.stopping_) child_.signal_group(SIGKILL);  // stop_all() ran while it was spawned
  }
  ~Tracked() {
    std::lock_guard lock(runner_.mutex_);
    runner_.running_.erase(&child_);
  }
  Tracked(const Tracked&) = delete;
  Tracked& operator=(const Tracked&) = delete;

 private:
  CgiRunner& runner_;
  common::Child& child_;
};

CgiRunner::CgiRunner(const Options& options, std::vector<std::string> base_env)
    : options_(options), base_env_(std::move(base_env)), command_(options.command) {
  // Resolve once: posix_spawnp would search PATH on every request. A command that is not there yet
  // is searched again per request, so installing it later works.
  if (auto found = common::find_executable(command_[0], path_env(base_env_)); !found.empty())
    command_[0] = found;
}

std::vector<std::string> CgiRunner::environment(const Invocation& invocation,
                                                const Target& target) const {
  RequestInfo info = request_info(invocation.request, options_.listen);
  protocol::CgiRequest cgi;
  cgi.method = target.method;
  cgi.target = target.target;
  cgi.script_name = info.script_name;
  cgi.server_name = info.server_name;
  cgi.server_port = info.server_port;
  cgi.remote_addr = info.remote_addr;
  cgi.remote_port = info.remote_port;
  cgi.request_id = invocation.request_id;
  cgi.headers = &invocation.request.head().headers;
  // A chunked body has no length to announce: the program reads to EOF (RFC 3875 4.1.2 has no
  // CONTENT_LENGTH without a known length; git's http-backend handles that).
  auto length = invocation.request.content_length();
  cgi.has_body = target.with_body && invocation.request.has_body() && length.has_value();
  cgi.content_length = length.value_or(0);
  cgi.openfaas_variables = options_.openfaas_variables;
  cgi.server_protocol = invocation.request.head().version_minor == 0 ? "HTTP/1.0" : "HTTP/1.1";
  return protocol::build_cgi_env(cgi, base_env_);
}

common::Status CgiRunner::serve(Invocation& invocation) {
  Target target{std::string(invocation.request.method()), std::string(invocation.request.target()),
                true};
  for (int hop = 0;; ++hop) {
    std::optional<std::string> redirect;
    if (auto ran = run_once(invocation, target, &redirect); !ran) return ran;
    if (!redirect) return {};
    if (hop == kMaxLocalRedirects)
      return common::fail(Error::Code::kBadGateway, "too many local redirects");
    // RFC 3875 6.2.2: serve the new path as if it had been requested, with a GET and no body.
    target = Target{"GET", *redirect, false};
  }
}

common::Status CgiRunner::run_once(Invocation& invocation, const Target& target,
                                   std::optional<std::string>* redirect) {
  common::SpawnOptions spawn{command_, environment(invocation, target), options_.workdir};
  spawn.contain_descendants = true;  // what it orphans stays below it, and ends with the request
  // This thread serves the request until the program is reaped, so it outlives it: when the
  // watchdog is killed, the program is killed too instead of running on under init.
  spawn.parent_death_signal = SIGKILL;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return common::fail(Error::Code::kUnavailable, "the watchdog is shutting down");
  }
  auto child = common::Child::spawn(spawn);
  if (!child) {
    spawn_failures_.fetch_add(1, std::memory_order_relaxed);
    return tl::unexpected(child.error());
  }
  spawns_.fetch_add(1, std::memory_order_relaxed);
  Tracked tracked(*this, *child);
  CgiOutput output(invocation.response, {options_.cgi_headers, options_.content_type,
                                         invocation.request_id});
  bool with_body = target.with_body && invocation.request.has_body();
  CgiCall call(*child, with_body ? &invocation.request : nullptr, output,
               {options_.name, invocation.request_id, options_.combine_output, options_.max_body,
                invocation.deadline});
  auto exit = call.run();
  if (!exit) {
    if (exit.error().code == Error::Code::kTimeout) timeouts_.fetch_add(1, std::memory_order_relaxed);
    if (invocation.response.started()) invocation.response.abort();
    return tl::unexpected(exit.error());
  }
  auto finished = output.finish(*exit, call.stderr_text());
  if (!exit->success()) log_failure(invocation, child->pid(), *exit, output);
  if (finished) *redirect = output.local_redirect();
  return finished;
}

// A program that fails is answered 500, not an error of the watchdog's, so the server logs only
// the access line: say here how it ended, and why its output was not used if it was not.
void CgiRunner::log_failure(const Invocation& invocation, pid_t pid, const common::ExitStatus& exit,
                            const CgiOutput& output) const {
  static const auto log = common::logger("watchdog.cgi");
  if (output.broken())
    log->warn("function failed request_id={} pid={} exit=\"{}\" output=\"{}\"",
              invocation.request_id, pid, exit.describe(), *output.broken());
  else
    log->warn("function failed request_id={} pid={} exit=\"{}\"", invocation.request_id, pid,
              exit.describe());
}

Health CgiRunner::runnable() const {
  auto checked = common::check_executable(command_[0], options_.workdir, path_env(base_env_));
  if (!checked) return {false, checked.error().context};
  return {};
}

void CgiRunner::stop_all() {
  std::lock_guard lock(mutex_);
  stopping_ = true;
  // The requests owning these programs see their pipes close and answer; their Child reaps.
  for (common::Child* child : running_) child->signal_group(SIGKILL);
}

void CgiRunner::render_metrics(std::string& out) const {
  namespace prom = common::prometheus;
  prom::Labels labels{{"function", options_.name}};
  prom::append_header(out, "fastfn_watchdog_spawns_total", "Processes started.", "counter");
  prom::append_sample(out, "fastfn_watchdog_spawns_total", labels,
                      static_cast<double>(spawns_.load()));
  prom::append_header(out, "fastfn_watchdog_spawn_failures_total",
                      "Processes that could not be started.", "counter");
  prom::append_sample(out, "fastfn_watchdog_spawn_failures_total", labels,
                      static_cast<double>(spawn_failures_.load()));
  prom::append_header(out, "fastfn_watchdog_kills_total", "Processes killed, by reason.",
                      "counter");
  prom::Labels timeout_labels{{"function", options_.name}, {"reason", "timeout"}};
  prom::append_sample(out, "fastfn_watchdog_kills_total", timeout_labels,
                      static_cast<double>(timeouts_.load()));
  std::size_t running;
  {
    std::lock_guard lock(mutex_);
    running = running_.size();
  }
  prom::append_header(out, "fastfn_watchdog_processes", "Processes by state.", "gauge");
  prom::Labels busy{{"function", options_.name}, {"state", "busy"}};
  prom::append_sample(out, "fastfn_watchdog_processes", busy, static_cast<double>(running));
}

}  // namespace watchdog
