// The hot pool's seam for time (leveldb's Env::NowMicros): the pool and its processes read "now"
// through a PoolClock, so that tests drive backoff, idle stops and the startup window in fake time,
// seconds of it in microseconds of real time. Production reads steady_clock. Waits on condition
// variables (a request in the queue until its deadline) stay on the real clock: a deadline is the
// client's, and fake time only has to decide what the pool does, not when a thread wakes.
#pragma once

#include <chrono>
#include <functional>

namespace watchdog {

// Returns the current time; called under the pool's lock, so it must not block or take that lock.
using PoolClock = std::function<std::chrono::steady_clock::time_point()>;

inline PoolClock steady_pool_clock() {
  return [] { return std::chrono::steady_clock::now(); };
}

}  // namespace watchdog
