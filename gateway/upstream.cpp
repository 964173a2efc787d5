#include "gateway/upstream.h"

#include <thread>

#include "common/connect.h"

namespace gateway {

Upstream::Upstream(std::string function, int index, common::Address address, bool supervised)
    : function_(std::move(function)), index_(index), address_(std::move(address)),
      supervised_(supervised) {}

Upstream::~Upstream() = default;

common::Result<UpstreamConnection> Upstream::checkout(std::chrono::milliseconds connect_timeout) {
  if (auto idle = connections_.take_idle()) return std::move(*idle);
  auto fd = common::connect_to(address_, connect_timeout);
  // A watchdog that is starting has not bound its socket yet: wait for it rather than fail. It
  // binds within a few milliseconds of its spawn, which a request starting it on demand waits for.
  for (auto pause = std::chrono::milliseconds(1); !fd && in_startup();
       pause = std::min(pause * 2, std::chrono::milliseconds(10))) {
    std::this_thread::sleep_for(pause);
    fd = common::connect_to(address_, connect_timeout);
  }
  if (!fd) {
    mark(State::kDown, "connect to " + address_.to_string() + " failed: " + fd.error().context);
    return tl::unexpected(fd.error());
  }
  return UpstreamConnection{std::move(*fd), {}, {}};
}

void Upstream::checkin(UpstreamConnection connection) { connections_.checkin(std::move(connection)); }

void Upstream::drop_idle() { connections_.drop_idle(); }

void Upstream::mark(State state, std::optional<std::string> error) {
  std::lock_guard lock(mutex_);
  // A probe or a connect that raced with parking must not make a parked watchdog look up or down.
  if (state_.load(std::memory_order_relaxed) == State::kCold) return;
  state_.store(state, std::memory_order_relaxed);
  if (state == State::kUp) last_error_.reset();
  else if (error) last_error_ = std::move(error);
  if (state == State::kDown) connections_.drop_idle();
}

void Upstream::starting(Clock::time_point until) {
  std::lock_guard lock(mutex_);
  startup_until_ = until;
  state_.store(State::kStarting, std::memory_order_relaxed);
  problem_.reset();
  connections_.drop_idle();
}

void Upstream::park() {
  std::lock_guard lock(mutex_);
  state_.store(State::kCold, std::memory_order_relaxed);
  last_error_.reset();
  connections_.drop_idle();
}

bool Upstream::in_startup(Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  return state() == State::kStarting && now < startup_until_;
}

std::optional<std::string> Upstream::last_error() const {
  std::lock_guard lock(mutex_);
  return problem_ ? problem_ : last_error_;
}

void Upstream::set_problem(std::optional<std::string> problem) {
  std::lock_guard lock(mutex_);
  problem_ = std::move(problem);
}

std::optional<std::string> Upstream::problem() const {
  std::lock_guard lock(mutex_);
  return problem_;
}

}  // namespace gateway
