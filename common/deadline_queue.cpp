#include "common/deadline_queue.h"

#include <limits>

namespace common {

void DeadlineQueue::set(Id id, Clock::time_point when) {
  auto [it, inserted] = by_id_.try_emplace(id, when);
  if (!inserted) {
    if (it->second == when) return;
    ordered_.erase({it->second, id});
    it->second = when;
  }
  ordered_.emplace(when, id);
}

void DeadlineQueue::cancel(Id id) {
  auto it = by_id_.find(id);
  if (it == by_id_.end()) return;
  ordered_.erase({it->second, id});
  by_id_.erase(it);
}

std::optional<DeadlineQueue::Clock::time_point> DeadlineQueue::next() const {
  if (ordered_.empty()) return std::nullopt;
  return ordered_.begin()->first;
}

int DeadlineQueue::wait_ms(Clock::time_point now) const {
  auto earliest = next();
  if (!earliest) return -1;
  if (*earliest <= now) return 0;
  auto left = std::chrono::ceil<std::chrono::milliseconds>(*earliest - now).count();
  return left > std::numeric_limits<int>::max() ? std::numeric_limits<int>::max()
                                                : static_cast<int>(left);
}

std::vector<DeadlineQueue::Id> DeadlineQueue::take_expired(Clock::time_point now) {
  std::vector<Id> expired;
  while (!ordered_.empty() && ordered_.begin()->first <= now) {
    Id id = ordered_.begin()->second;
    ordered_.erase(ordered_.begin());
    by_id_.erase(id);
    expired.push_back(id);
  }
  return expired;
}

}  // namespace common
