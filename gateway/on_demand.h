// A function whose watchdogs run only while it is used (worker_pool.min_warm 0, as FastFN's): they
// start with the first request and are parked once no request has run for idle_ttl (Passenger's
// pool_idle_time), so a gateway can hold a thousand functions and run only the busy ones. Pure
// state: starting and parking are the callbacks' job; time is passed in.
#pragma once

#include <chrono>
#include <cstddef>
#include <functional>
#include <mutex>
#include <utility>

namespace gateway {

class OnDemand {
 public:
  using Clock = std::chrono::steady_clock;

  OnDemand(std::chrono::milliseconds idle_ttl, std::function<void()> start,
           std::function<void()> park);

  // One request using the function: starts it if it is cold; leaves on destruction.
  class Use {
   public:
    explicit Use(OnDemand* owner) : owner_(owner) {}
    Use(Use&& other) noexcept : owner_(std::exchange(other.owner_, nullptr)) {}
    Use& operator=(Use&&) = delete;
    Use(const Use&) = delete;
    ~Use();

   private:
    OnDemand* owner_;
  };
  Use enter(Clock::time_point now);

  // Parks the function when it is warm, nothing is in flight and the last request ended at least
  // idle_ttl before `now`. Returns true when it parked it.
  bool park_if_idle(Clock::time_point now);
  bool warm() const;

 private:
  void leave(Clock::time_point now);

  const std::chrono::milliseconds idle_ttl_;
  const std::function<void()> start_, park_;
  mutable std::mutex mutex_;
  bool warm_ = false;
  std::size_t in_flight_ = 0;
  Clock::time_point last_used_{};
};

}  // namespace gateway
