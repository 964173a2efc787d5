// What both binaries tell systemd through sd_notify(3) when they run as a Type=notify service
// (deploy/systemd/): READY=1 once they serve, STOPPING=1 when SIGTERM begins the drain, and
// WATCHDOG=1 every half of WatchdogSec. Every call is a no-op without $NOTIFY_SOCKET, so outside
// systemd nothing changes. The variables by which systemd speaks to its main process are the
// main process's alone: without_service_manager_variables() takes them out of what children get.
#pragma once

#include <chrono>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace common {

class HttpServer;

// The variables of sd_notify(3), sd_listen_fds(3) and sd_watchdog_enabled(3).
inline constexpr std::string_view kServiceManagerVariables[] = {
    "NOTIFY_SOCKET", "LISTEN_FDS", "LISTEN_PID", "LISTEN_FDNAMES", "WATCHDOG_USEC", "WATCHDOG_PID"};

// `env` ("NAME=value" entries) without kServiceManagerVariables: the environment of a child, which
// must neither answer for this process (a watchdog daemon sending READY=1 for the gateway) nor take
// its sockets. Pure.
std::vector<std::string> without_service_manager_variables(std::vector<std::string> env);

// How often to send WATCHDOG=1 for a watchdog timeout of `timeout`: half of it, as
// sd_watchdog_enabled(3) recommends; nullopt for a zero timeout. Pure.
std::optional<std::chrono::milliseconds> watchdog_ping_interval(std::chrono::microseconds timeout);

// READY=1 with STATUS=`status`, and, when systemd watches this process (WatchdogSec, i.e.
// $WATCHDOG_USEC for our pid), WATCHDOG=1 at once and then every half of it from a timer on
// `server`'s event loop: the pings stop when the loop that accepts and reads requests stops
// turning, so a server whose loop is stuck is restarted. REQUIRES: `server` outlives its loop
// (the timer goes with it); call once, after server.start().
void notify_ready(HttpServer& server, std::string_view status);

// STOPPING=1 with STATUS=`status`: systemd sees the stop under way (the drain may take
// shutdown_timeout) instead of a service that stopped answering.
void notify_stopping(std::string_view status);

}  // namespace common
