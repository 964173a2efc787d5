#include "watchdog/server_process.h"

#include <netinet/in.h>
#include <poll.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <system_error>

#include "common/connect.h"
#include "common/forwarded_head.h"
#include "common/logging.h"
#include "common/upstream_exchange.h"

namespace watchdog {
namespace {

using common::Error;

constexpr std::chrono::milliseconds kConnectTimeout{1000};

std::shared_ptr<spdlog::logger> server_log() {
  static const auto log = common::logger("watchdog.server");
  return log;
}

// A loopback port nobody listens on now, for the app to bind. The kernel hands out ephemeral ports
// in turn, so another process taking it before the app binds is unlikely; the app then fails to
// bind and exits, which is a failed start like any other.
common::Result<std::uint16_t> free_loopback_port() {
  common::UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return common::fail(Error::Code::kUnavailable, std::string("socket: ") + std::strerror(errno));
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t length = sizeof(address);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&address), length) != 0 ||
      ::getsockname(fd.get(), reinterpret_cast<sockaddr*>(&address), &length) != 0)
    return common::fail(Error::Code::kUnavailable,
                        std::string("no free loopback port: ") + std::strerror(errno));
  return ntohs(address.sin_port);
}

// A 0700 folder of its own for the app's unix socket, so that no other user can reach it.
common::Result<std::string> private_socket_dir() {
  const char* tmp = std::getenv("TMPDIR");
  std::string pattern = std::string(tmp && *tmp ? tmp : "/tmp") + "/fastfn-app-XXXXXX";
  if (::mkdtemp(pattern.data()) == nullptr)
    return common::fail(Error::Code::kUnavailable,
                        "cannot make a folder for the app's socket: " + std::string(std::strerror(errno)));
  return pattern;
}

void replace_all(std::string& text, std::string_view from, std::string_view to) {
  for (auto at = text.find(from); at != std::string::npos; at = text.find(from, at + to.size()))
    text.replace(at, from.size(), to);
}

// The app's argv and environment with where it listens.
common::SpawnOptions app_spawn_options(const common::SpawnOptions& base,
                                       const std::vector<std::pair<std::string, std::string>>& vars) {
  common::SpawnOptions options = base;
  options.stdin_mode = common::Stdio::kNull;
  for (auto& arg : options.argv)
    for (const auto& [name, value] : vars) {
      replace_all(arg, "${" + name + "}", value);
      replace_all(arg, "$" + name, value);
    }
  std::erase_if(options.env, [&vars](const std::string& entry) {
    for (const auto& [name, value] : vars)
      if (entry.starts_with(name + "=")) return true;
    return false;
  });
  for (const auto& [name, value] : vars) options.env.push_back(name + "=" + value);
  return options;
}

// The target as the app is to see it: without the route the gateway matched (X-Forwarded-Prefix,
// which it still gets), so that an app written for "/" serves its "/" at /route/, as behind
// OpenFaaS's gateway or a Passenger sub-URI.
std::string app_target(const common::ClientRequest& request) {
  std::string_view prefix = protocol::header_value(request.head().headers, "X-Forwarded-Prefix");
  std::string_view target = request.target();
  if (prefix.empty() || prefix == "/" || !target.starts_with(prefix)) return std::string(target);
  std::string_view rest = target.substr(prefix.size());
  if (rest.empty() || rest.front() == '?') return "/" + std::string(rest);
  if (rest.front() != '/') return std::string(target);  // /site2 is not below /site
  return std::string(rest);
}

// What the exchange's end means for an app process: it is replaced only when it died, or when a
// request ran out of time on a process that serves one at a time (it is stuck); with more at
// once it may be serving others, and only the connection is dropped.
std::optional<StopReason> stop_reason(const common::UpstreamResult& result, bool exited,
                                      int max_concurrency) {
  if (exited) return StopReason::kExited;
  if (result.state == common::UpstreamState::kTimedOut && max_concurrency == 1)
    return StopReason::kTimeout;
  return std::nullopt;
}

// A kept-alive connection the app closed meanwhile fails before reading anything: the request
// may go again on a fresh one.
bool may_retry(const common::UpstreamResult& result, const common::ClientRequest& request,
               bool held) {
  return result.state == common::UpstreamState::kClosed && result.request_unread &&
         !result.response_started && (held || request.body_bytes_read() == 0);
}

}  // namespace

ServerProcess::Settings ServerProcess::Settings::from(const Options& options) {
  Settings settings;
  settings.upstream = options.upstream_url;
  settings.listen_socket = options.listen_socket;
  settings.start_timeout = options.start_timeout;
  settings.max_concurrency = options.max_concurrency;
  return settings;
}

common::Result<std::unique_ptr<PooledProcess>> ServerProcess::spawn(const SpawnContext& context,
                                                                    const Settings& settings) {
  try {
    common::Address address;
    std::string socket_dir;
    std::vector<std::pair<std::string, std::string>> vars;
    if (settings.upstream) {
      address = *settings.upstream;
    } else if (settings.listen_socket) {
      auto dir = private_socket_dir();
      if (!dir) return tl::unexpected(dir.error());
      socket_dir = *dir;
      address = {common::Address::Kind::kUnix, socket_dir + "/app.sock", "", 0};
      vars = {{"SOCKET", address.path}, {"FN_LISTENER", "unix:" + address.path}};
    } else {
      auto port = free_loopback_port();
      if (!port) return tl::unexpected(port.error());
      address = {common::Address::Kind::kTcp, "", "127.0.0.1", *port};
      vars = {{"PORT", std::to_string(*port)}, {"HOST", "127.0.0.1"}};
    }
    auto child = common::Child::spawn(app_spawn_options(context.options, vars));
    if (!child) {
      if (!socket_dir.empty()) ::rmdir(socket_dir.c_str());
      return tl::unexpected(child.error());
    }
    auto tag = std::make_shared<LogTag>(child->pid());
    context.pump.add(std::move(child->stderr_fd()), tag);
    context.pump.add(std::move(child->stdout_fd()), tag);
    server_log()->debug("app started pid={} address={}", child->pid(), address.to_string());
    return std::unique_ptr<PooledProcess>(
        new ServerProcess(std::move(*child), std::move(tag), context.generation, context.clock(),
                          std::move(address), std::move(socket_dir), settings));
  } catch (const std::system_error& error) {  // no fd or process to be had: EMFILE, EAGAIN
    return common::fail(Error::Code::kUnavailable, std::string("cannot start the app: ") + error.what());
  }
}

ServerProcess::ServerProcess(common::Child child, std::shared_ptr<LogTag> tag,
                             std::uint64_t generation, Clock::time_point now,
                             common::Address address, std::string socket_dir,
                             const Settings& settings)
    : PooledProcess(std::move(child), generation, now, State::kStarting),
      tag_(std::move(tag)),
      address_(std::move(address)),
      socket_dir_(std::move(socket_dir)),
      settings_(settings) {}

ServerProcess::~ServerProcess() {
  if (socket_dir_.empty()) return;
  ::unlink(address_.path.c_str());
  ::rmdir(socket_dir_.c_str());
}

bool ServerProcess::exited() {
  std::lock_guard lock(reap_mutex_);
  pollfd pfd{child_.exit_fd(), POLLIN, 0};
  return !child_.running() || (::poll(&pfd, 1, 0) > 0 && child_.try_reap());
}

bool ServerProcess::check_idle(bool) {
  if (poisoned()) return false;
  if (!exited()) return true;
  poison(StopReason::kExited);
  return false;
}

common::Result<bool> ServerProcess::check_started(Clock::time_point now) {
  if (exited())
    return common::fail(Error::Code::kBadGateway,
                        "the app exited before it listened on " + address_.to_string() + " (" +
                            child_.status()->describe() + ")");
  auto fd = common::connect_to(address_, std::chrono::milliseconds(50));
  if (fd) {
    connections_.checkin({std::move(*fd), {}, {}, false});
    server_log()->debug("app serving pid={} address={}", pid(), address_.to_string());
    return true;
  }
  if (now - spawned_at() < settings_.start_timeout) return false;
  return common::fail(Error::Code::kBadGateway,
                      "the app did not listen on " + address_.to_string() + " within " +
                          std::to_string(settings_.start_timeout.count()) + " ms (start-timeout)");
}

ServerProcess::Served ServerProcess::serve(Invocation& invocation,
                                           const std::optional<std::string>& held,
                                           std::uint64_t max_body, const Done& done) {
  auto& client = invocation.request;
  std::optional<std::uint64_t> held_length;
  if (held) held_length = held->size();
  std::string target = app_target(client);
  std::string head = common::forwarded_request_head(
      client, {invocation.request_id, "", true, held_length, target});
  tag_->set_request(invocation.request_id);
  for (bool retried = false;; retried = true) {
    auto connection = retried ? std::nullopt : connections_.take_idle();
    if (!connection) {
      auto fd = common::connect_to(address_, kConnectTimeout);
      if (!fd) {
        bool gone = exited();
        done({false, gone ? std::optional(StopReason::kExited) : std::nullopt});
        return {common::fail(Error::Code::kBadGateway, "cannot connect to the app at " +
                                                           address_.to_string() + ": " +
                                                           fd.error().context),
                held.has_value()};
      }
      connection = common::PooledConnection{std::move(*fd), {}, {}, false};
    }
    common::UpstreamRequest request{head,
                                    held ? common::RequestBody::kNone : common::forwarded_body(client),
                                    client.method(),
                                    max_body,
                                    invocation.deadline,
                                    64 * 1024,
                                    {{"X-Fn-Request-Id", invocation.request_id}},
                                    {},
                                    held ? std::string_view(*held) : std::string_view()};
    auto result = common::exchange_with_upstream(
        {connection->fd.get(), connection->fd.get(), connection->buffer}, request, client,
        invocation.response);
    if (connection->reused && !retried && may_retry(result, client, held.has_value())) continue;
    if (result.state == common::UpstreamState::kReusable) connections_.checkin(std::move(*connection));
    auto stop = stop_reason(result, result.state != common::UpstreamState::kReusable && exited(),
                            settings_.max_concurrency);
    if (result.state == common::UpstreamState::kBroken)
      server_log()->error("app response broken pid={} request_id={} reason=\"{}\"", pid(),
                          invocation.request_id, result.detail);
    done({result.status.has_value(), stop});  // the process is not touched after this
    return {result.status, result.request_unread && held && !invocation.response.started()};
  }
}

}  // namespace watchdog
