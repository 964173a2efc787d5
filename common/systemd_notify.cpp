#include "common/systemd_notify.h"

#include <systemd/sd-daemon.h>

#include <algorithm>
#include <cstring>

#include "common/http_server.h"
#include "common/logging.h"

namespace common {
namespace {

// sd_notify: > 0 sent, 0 no $NOTIFY_SOCKET (not under systemd), < 0 failed. A failure is logged
// and otherwise ignored: serving matters more than telling systemd about it.
void send(const std::string& message) {
  int sent = ::sd_notify(/*unset_environment=*/0, message.c_str());
  if (sent < 0)
    logger("systemd")->warn("sd_notify failed message=\"{}\" error=\"{}\"",
                            message.substr(0, message.find('\n')), std::strerror(-sent));
}

std::optional<std::chrono::milliseconds> watchdog_interval() {
  std::uint64_t usec = 0;
  // > 0 only when $WATCHDOG_USEC is set and $WATCHDOG_PID, if set, is this process.
  if (::sd_watchdog_enabled(/*unset_environment=*/0, &usec) <= 0) return std::nullopt;
  return watchdog_ping_interval(std::chrono::microseconds(usec));
}

}  // namespace

std::vector<std::string> without_service_manager_variables(std::vector<std::string> env) {
  std::erase_if(env, [](const std::string& entry) {
    std::string_view name = std::string_view(entry).substr(0, entry.find('='));
    return std::find(std::begin(kServiceManagerVariables), std::end(kServiceManagerVariables),
                     name) != std::end(kServiceManagerVariables);
  });
  return env;
}

std::optional<std::chrono::milliseconds> watchdog_ping_interval(std::chrono::microseconds timeout) {
  if (timeout.count() <= 0) return std::nullopt;
  // At least a millisecond: a timer of 0 would spin the loop.
  return std::max(std::chrono::milliseconds(1),
                  std::chrono::duration_cast<std::chrono::milliseconds>(timeout / 2));
}

void notify_ready(HttpServer& server, std::string_view status) {
  send("READY=1\nSTATUS=" + std::string(status));
  auto interval = watchdog_interval();
  if (!interval) return;
  logger("systemd")->info("watchdog pings interval_ms={}", interval->count());
  server.repeat(*interval, [] { send("WATCHDOG=1"); });
}

void notify_stopping(std::string_view status) { send("STOPPING=1\nSTATUS=" + std::string(status)); }

}  // namespace common
