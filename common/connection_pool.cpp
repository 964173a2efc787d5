#include "common/connection_pool.h"

#include <poll.h>

namespace common {
namespace {

// Idle connections older than this are closed rather than reused: servers close idle keep-alive
// connections after a while (the watchdog after 30 s, Node after 5 s), and reusing one the
// upstream is closing would cost the request a retry.
constexpr std::chrono::seconds kMaxIdle{4};
constexpr std::size_t kMaxIdleConnections = 64;

// An idle connection the upstream has closed (or wrote to, out of turn) reads ready.
bool still_open(const PooledConnection& connection) {
  pollfd pfd{connection.fd.get(), POLLIN, 0};
  return ::poll(&pfd, 1, 0) == 0;
}

}  // namespace

std::optional<PooledConnection> ConnectionPool::take_idle() {
  std::lock_guard lock(mutex_);
  auto now = std::chrono::steady_clock::now();
  while (!idle_.empty()) {
    PooledConnection connection = std::move(idle_.back());
    idle_.pop_back();
    if (now - connection.idle_since < kMaxIdle && still_open(connection)) {
      connection.reused = true;
      return connection;
    }
  }
  return std::nullopt;
}

void ConnectionPool::checkin(PooledConnection connection) {
  std::lock_guard lock(mutex_);
  if (idle_.size() >= kMaxIdleConnections) return;
  connection.idle_since = std::chrono::steady_clock::now();
  idle_.push_back(std::move(connection));
}

void ConnectionPool::drop_idle() {
  std::lock_guard lock(mutex_);
  idle_.clear();
}

}  // namespace common
