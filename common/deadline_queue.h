// The timer structure of the event loop (nginx's ngx_event_timer, as an ordered set rather than a
// red-black tree of its own): each id has at most one deadline, the earliest deadline is known in
// O(1) so that epoll_wait can sleep exactly until it, and setting, moving or cancelling one is
// O(log n). Ten thousand connections each with a keep-alive or head deadline cost one entry each.
// Pure: no clock is read here, the caller passes "now". Not thread-safe: the loop thread owns it.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

namespace common {

class DeadlineQueue {
 public:
  using Clock = std::chrono::steady_clock;
  using Id = std::uint64_t;

  // Gives `id` the deadline `when`, replacing the one it had.
  void set(Id id, Clock::time_point when);
  // Removes `id`'s deadline; a no-op when it has none.
  void cancel(Id id);
  bool contains(Id id) const { return by_id_.count(id) != 0; }
  std::size_t size() const noexcept { return by_id_.size(); }

  // The earliest deadline, nullopt when there is none.
  std::optional<Clock::time_point> next() const;
  // How long epoll_wait may sleep at `now`: -1 (no deadline), 0 (one is due), else the
  // milliseconds until the earliest, rounded up so that the wake-up is never early.
  int wait_ms(Clock::time_point now) const;
  // Removes the ids whose deadline is at or before `now` and returns them, earliest first (ties in
  // the order of their ids).
  std::vector<Id> take_expired(Clock::time_point now);

 private:
  std::set<std::pair<Clock::time_point, Id>> ordered_;
  std::unordered_map<Id, Clock::time_point> by_id_;
};

}  // namespace common
