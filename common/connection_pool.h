// The idle keep-alive connections to one upstream, so that a request costs no connect: checked in
// after an exchange that left them in step, taken again while they are young and still open.
// Thread-safe.
#pragma once

#include <chrono>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/unique_fd.h"

namespace common {

// A connection to an upstream and its one reader buffer, for its whole life.
struct PooledConnection {
  UniqueFd fd;
  std::string buffer;
  std::chrono::steady_clock::time_point idle_since;
  bool reused = false;  // it carried an exchange before: the upstream may have closed it meanwhile
};

class ConnectionPool {
 public:
  // An idle connection that is younger than the upstream's own keep-alive timeout is likely to be
  // and is still open (it reads nothing: no close, nothing out of turn), marked reused; or nullopt.
  std::optional<PooledConnection> take_idle();
  void checkin(PooledConnection connection);
  void drop_idle();

 private:
  std::mutex mutex_;
  std::vector<PooledConnection> idle_;
};

}  // namespace common
