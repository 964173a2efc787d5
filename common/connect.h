// Connecting to an upstream: a watchdog's unix socket behind the gateway, or an app server behind
// a watchdog (format server). Every fd is O_CLOEXEC and non-blocking; tcp sockets get TCP_NODELAY.
#pragma once

#include <chrono>

#include "common/address.h"
#include "common/error.h"
#include "common/unique_fd.h"

namespace common {

// A connect begun on a non-blocking socket: done, or (in_progress) done once the fd is writable,
// when connect_result() says how it went.
struct PendingConnect {
  UniqueFd fd;
  bool in_progress = false;
};
// Begins connecting to `address` without waiting (a tcp host name is still resolved first).
// kUnavailable with the reason when it failed at once.
Result<PendingConnect> begin_connect(const Address& address);
// The outcome of an in-progress connect on `fd`, once poll() said it is writable.
Status connect_result(int fd);

// Connects to `address` (unix or tcp, bounded by `timeout`). kUnavailable with the reason on
// failure.
Result<UniqueFd> connect_to(const Address& address, std::chrono::milliseconds timeout);

}  // namespace common
