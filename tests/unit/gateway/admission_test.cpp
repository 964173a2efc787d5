#include "gateway/admission.h"

#include <doctest/doctest.h>

#include <atomic>
#include <mutex>
#include <optional>
#include <thread>
#include <vector>

using gateway::Admission;

namespace {

gateway::WorkerPoolConfig pool(std::uint32_t workers, std::uint32_t queue, int overflow = 429) {
  gateway::WorkerPoolConfig config;
  config.enabled = true;
  config.max_workers = workers;
  config.max_queue = queue;
  config.overflow_status = overflow;
  return config;
}

Admission::Clock::time_point later() { return Admission::Clock::now() + std::chrono::seconds(60); }
Admission::Clock::time_point already_past() {
  return Admission::Clock::now() - std::chrono::milliseconds(1);
}

// Waits (bounded) until `admission` has `count` requests queued: the only wall-clock wait here, a
// condition polled, never a guess at how long a thread takes.
void wait_queued(const Admission& admission, int count) {
  auto give_up = Admission::Clock::now() + std::chrono::seconds(20);
  while (admission.queued() != count && Admission::Clock::now() < give_up) std::this_thread::yield();
  REQUIRE(admission.queued() == count);
}

}  // namespace

TEST_CASE("admission: disabled admits everything and counts it") {
  Admission admission(gateway::WorkerPoolConfig{});
  std::vector<Admission::Ticket> held;
  for (int i = 0; i < 50; ++i) held.push_back(std::move(*admission.enter(already_past())));
  CHECK(admission.in_flight() == 50);
  held.clear();
  CHECK(admission.in_flight() == 0);
}

TEST_CASE("admission: beyond max_workers with no queue is refused with the overflow status") {
  SUBCASE("429 by default") {
    Admission admission(pool(1, 0));
    auto first = admission.enter(later());
    REQUIRE(first);
    auto second = admission.enter(later());
    REQUIRE_FALSE(second);
    CHECK(second.error().limit == "max_queue");
    CHECK(second.error().error.code == common::Error::Code::kTooBusy);
  }
  SUBCASE("503 as FastFN allows") {
    Admission admission(pool(1, 0, 503));
    auto first = admission.enter(later());
    auto second = admission.enter(later());
    REQUIRE_FALSE(second);
    CHECK(second.error().error.code == common::Error::Code::kUnavailable);
  }
}

TEST_CASE("admission: a wait that cannot end in time is refused as a queue timeout at once") {
  Admission admission(pool(1, 4));
  auto held = admission.enter(later());
  REQUIRE(held);
  auto waited = admission.enter(already_past());  // the request's own deadline is gone
  REQUIRE_FALSE(waited);
  CHECK(waited.error().limit == "queue_timeout_ms");
  CHECK(admission.queued() == 0);  // it left the queue
  CHECK(admission.in_flight() == 1);
}

TEST_CASE("admission: waiters are admitted first in, first out, one per freed slot") {
  Admission admission(pool(1, 2));
  std::optional<Admission::Ticket> held(std::move(*admission.enter(later())));
  std::mutex mutex;
  std::vector<char> order;
  std::atomic<bool> release_b{false};
  auto waiter = [&](char name, std::atomic<bool>* hold) {
    auto ticket = admission.enter(later());
    REQUIRE(ticket);
    {
      std::lock_guard lock(mutex);
      order.push_back(name);
    }
    while (hold && !hold->load()) std::this_thread::yield();
  };
  std::thread b(waiter, 'b', &release_b);
  wait_queued(admission, 1);
  std::thread c(waiter, 'c', nullptr);
  wait_queued(admission, 2);
  CHECK(admission.enter(later()).error().limit == "max_queue");  // the queue is full
  held.reset();  // frees the slot: b, queued first, takes it; c waits for b
  auto admitted = [&] {
    std::lock_guard lock(mutex);
    return order.size();
  };
  auto give_up = Admission::Clock::now() + std::chrono::seconds(20);
  while (admitted() == 0 && Admission::Clock::now() < give_up) std::this_thread::yield();
  {
    std::lock_guard lock(mutex);
    CHECK(order == std::vector<char>{'b'});  // c still waits: b holds the only slot
  }
  CHECK(admission.queued() == 1);
  release_b = true;
  b.join();
  c.join();
  CHECK(order == std::vector<char>{'b', 'c'});
  CHECK(admission.in_flight() == 0);
  CHECK(admission.queued() == 0);
}
