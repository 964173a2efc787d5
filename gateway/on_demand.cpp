#include "gateway/on_demand.h"

namespace gateway {

OnDemand::OnDemand(std::chrono::milliseconds idle_ttl, std::function<void()> start,
                   std::function<void()> park)
    : idle_ttl_(idle_ttl), start_(std::move(start)), park_(std::move(park)) {}

OnDemand::Use::~Use() {
  if (owner_) owner_->leave(Clock::now());
}

OnDemand::Use OnDemand::enter(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  ++in_flight_;
  last_used_ = now;
  // Under the lock, so concurrent first requests start the watchdogs once and all wait for them.
  if (!warm_) {
    warm_ = true;
    start_();
  }
  return Use(this);
}

void OnDemand::leave(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  --in_flight_;
  last_used_ = now;
}

bool OnDemand::park_if_idle(Clock::time_point now) {
  std::lock_guard lock(mutex_);
  if (!warm_ || in_flight_ > 0 || now - last_used_ < idle_ttl_) return false;
  warm_ = false;
  park_();
  return true;
}

bool OnDemand::warm() const {
  std::lock_guard lock(mutex_);
  return warm_;
}

}  // namespace gateway
