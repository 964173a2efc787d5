#include "gateway/admission.h"

#include <algorithm>

namespace gateway {

Admission::Ticket::~Ticket() {
  if (owner_) owner_->leave();
}

tl::expected<Admission::Ticket, Refusal> Admission::enter(Clock::time_point deadline) {
  std::unique_lock lock(mutex_);
  bool limited = config_.enabled && config_.max_workers > 0;
  if (!limited || (in_flight_ < static_cast<int>(config_.max_workers) && queue_.empty())) {
    ++in_flight_;
    return Ticket(this);
  }
  if (queue_.size() >= config_.max_queue)
    return tl::unexpected(refuse("max_queue", "worker pool queue is full (max_queue=" +
                                                  std::to_string(config_.max_queue) + ")"));
  if (config_.queue_timeout.count() > 0)
    deadline = std::min(deadline, Clock::now() + config_.queue_timeout);
  std::uint64_t me = next_ticket_++;
  queue_.push_back(me);
  bool admitted = freed_.wait_until(lock, deadline, [&] {
    return queue_.front() == me && in_flight_ < static_cast<int>(config_.max_workers);
  });
  queue_.erase(std::find(queue_.begin(), queue_.end(), me));
  freed_.notify_all();  // the next in line may be able to go now
  if (!admitted)
    return tl::unexpected(refuse("queue_timeout_ms",
                                 "timed out waiting in the worker pool queue (queue_timeout_ms=" +
                                     std::to_string(config_.queue_timeout.count()) + ")"));
  ++in_flight_;
  return Ticket(this);
}

void Admission::leave() {
  std::lock_guard lock(mutex_);
  --in_flight_;
  freed_.notify_all();
}

Refusal Admission::refuse(std::string limit, std::string why) const {
  auto code = config_.overflow_status == 503 ? common::Error::Code::kUnavailable
                                             : common::Error::Code::kTooBusy;
  return Refusal{common::Error{code, std::move(why)}, std::move(limit)};
}

int Admission::in_flight() const {
  std::lock_guard lock(mutex_);
  return in_flight_;
}

int Admission::queued() const {
  std::lock_guard lock(mutex_);
  return static_cast<int>(queue_.size());
}

}  // namespace gateway
