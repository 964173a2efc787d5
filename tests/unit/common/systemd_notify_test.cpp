#include "common/systemd_notify.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <string>
#include <vector>

using namespace std::chrono_literals;

TEST_CASE("systemd_notify: children get no variable of systemd's, and every other one") {
  const std::vector<std::string> env{"PATH=/usr/bin",       "NOTIFY_SOCKET=/run/systemd/notify",
                                     "LISTEN_FDS=1",        "LISTEN_PID=42",
                                     "LISTEN_FDNAMES=http", "WATCHDOG_USEC=30000000",
                                     "WATCHDOG_PID=42",     "NOTIFY_SOCKETS=kept",
                                     "listen=:8080",        "EMPTY="};
  const auto kept = common::without_service_manager_variables(env);
  CHECK(kept ==
        std::vector<std::string>{"PATH=/usr/bin", "NOTIFY_SOCKETS=kept", "listen=:8080", "EMPTY="});
  SUBCASE("an entry without '=' is a name too") {
    CHECK(common::without_service_manager_variables({"LISTEN_FDS", "HOME"}) ==
          std::vector<std::string>{"HOME"});
  }
}

TEST_CASE("systemd_notify: WATCHDOG=1 every half of the watchdog timeout") {
  CHECK(common::watchdog_ping_interval(30s) == 15s);
  CHECK(common::watchdog_ping_interval(3ms) == 1ms);
  SUBCASE("never faster than a millisecond") { CHECK(common::watchdog_ping_interval(1us) == 1ms); }
  SUBCASE("no timeout, no pings") { CHECK_FALSE(common::watchdog_ping_interval(0us).has_value()); }
}
