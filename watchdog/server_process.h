// One app server (format server: OpenFaaS of-watchdog's mode=http, Passenger's app processes, Fn's
// http-stream): a long-lived child that listens on a port or unix socket the watchdog gives it, and
// serves HTTP/1.1 there, up to max-concurrency requests at once. It is kStarting until it accepts
// a connection; requests go to it over kept-alive connections, relayed both ways by
// common/upstream_exchange.
#pragma once

#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "common/address.h"
#include "common/connection_pool.h"
#include "watchdog/options.h"
#include "watchdog/pooled_process.h"

namespace watchdog {

class ServerProcess : public PooledProcess {
 public:
  // What every app process of a watchdog shares.
  struct Settings {
    // --upstream-url: the one address the command listens on by itself (no PORT is chosen).
    std::optional<common::Address> upstream;
    bool listen_socket = false;  // a unix socket in FN_LISTENER and SOCKET instead of PORT
    milliseconds start_timeout{30'000};
    int max_concurrency = 1;
    static Settings from(const Options& options);
  };

  // Starts the app: where it listens goes into its environment (PORT and HOST, or FN_LISTENER and
  // SOCKET) and replaces $PORT, $HOST and $SOCKET in its arguments (no shell: the words are
  // replaced as they stand). Its stdout and stderr go to the log. kBadGateway when it cannot be
  // executed, kUnavailable when no port, fd or process can be had.
  static common::Result<std::unique_ptr<PooledProcess>> spawn(const SpawnContext& context,
                                                              const Settings& settings);
  ~ServerProcess() override;

  Served serve(Invocation& invocation, const std::optional<std::string>& held,
               std::uint64_t max_body, const Done& done) override;
  // false (poisoned) once it has exited.
  bool check_idle(bool dispatching) override;
  // true once its address accepts a connection (kept for the first request); an error when it
  // exited first or start-timeout passed.
  common::Result<bool> check_started(Clock::time_point now) override;
  int max_concurrency() const noexcept override { return settings_.max_concurrency; }

 private:
  ServerProcess(common::Child child, std::shared_ptr<LogTag> tag, std::uint64_t generation,
                Clock::time_point now, common::Address address, std::string socket_dir,
                const Settings& settings);
  // Whether it has exited (reaping it then). Thread-safe: the requests it serves at once may
  // each ask.
  bool exited();

  std::shared_ptr<LogTag> tag_;
  const common::Address address_;
  const std::string socket_dir_;  // the private folder of its unix socket, removed with it
  const Settings settings_;
  common::ConnectionPool connections_;
  std::mutex reap_mutex_;
};

}  // namespace watchdog
