#include "common/deadline_queue.h"

#include <doctest/doctest.h>

#include <vector>

using common::DeadlineQueue;
using namespace std::chrono_literals;

namespace {

const DeadlineQueue::Clock::time_point kT0{};  // a fixed "now": the queue never reads a clock

}  // namespace

TEST_CASE("deadline_queue: empty has no deadline and sleeps forever") {
  DeadlineQueue queue;
  CHECK_FALSE(queue.next().has_value());
  CHECK(queue.wait_ms(kT0) == -1);
  CHECK(queue.take_expired(kT0 + 1h).empty());
}

TEST_CASE("deadline_queue: expired ids come out earliest first, ties by id") {
  DeadlineQueue queue;
  queue.set(3, kT0 + 30ms);
  queue.set(1, kT0 + 10ms);
  queue.set(7, kT0 + 20ms);
  queue.set(2, kT0 + 20ms);
  queue.set(9, kT0 + 50ms);
  CHECK(*queue.next() == kT0 + 10ms);
  CHECK(queue.take_expired(kT0 + 30ms) == std::vector<DeadlineQueue::Id>{1, 2, 7, 3});
  CHECK(queue.size() == 1);
  CHECK(queue.contains(9));
  CHECK(queue.take_expired(kT0 + 49ms).empty());
  CHECK(queue.take_expired(kT0 + 50ms) == std::vector<DeadlineQueue::Id>{9});
  CHECK(queue.size() == 0);
}

TEST_CASE("deadline_queue: set moves an id's one deadline, either way") {
  DeadlineQueue queue;
  queue.set(1, kT0 + 10ms);
  queue.set(2, kT0 + 20ms);
  SUBCASE("later") {
    queue.set(1, kT0 + 30ms);
    CHECK(queue.size() == 2);
    CHECK(queue.take_expired(kT0 + 25ms) == std::vector<DeadlineQueue::Id>{2});
    CHECK(queue.take_expired(kT0 + 30ms) == std::vector<DeadlineQueue::Id>{1});
  }
  SUBCASE("earlier") {
    queue.set(2, kT0 + 5ms);
    CHECK(*queue.next() == kT0 + 5ms);
    CHECK(queue.take_expired(kT0 + 10ms) == std::vector<DeadlineQueue::Id>{2, 1});
  }
  SUBCASE("to the same time") {
    queue.set(1, kT0 + 10ms);
    CHECK(queue.size() == 2);
    CHECK(queue.take_expired(kT0 + 10ms) == std::vector<DeadlineQueue::Id>{1});
  }
}

TEST_CASE("deadline_queue: cancel removes, and is a no-op for an unknown id") {
  DeadlineQueue queue;
  queue.set(1, kT0 + 10ms);
  queue.set(2, kT0 + 20ms);
  queue.cancel(1);
  queue.cancel(42);
  CHECK_FALSE(queue.contains(1));
  CHECK(*queue.next() == kT0 + 20ms);
  CHECK(queue.take_expired(kT0 + 1h) == std::vector<DeadlineQueue::Id>{2});
}

TEST_CASE("deadline_queue: wait_ms rounds up, so a wake-up is never early") {
  DeadlineQueue queue;
  queue.set(1, kT0 + 1500us);
  CHECK(queue.wait_ms(kT0) == 2);
  CHECK(queue.wait_ms(kT0 + 1ms) == 1);
  CHECK(queue.wait_ms(kT0 + 1500us) == 0);
  CHECK(queue.wait_ms(kT0 + 1s) == 0);  // overdue: at once
  queue.set(1, kT0 + std::chrono::hours(24 * 365 * 100));
  CHECK(queue.wait_ms(kT0) == std::numeric_limits<int>::max());
}

TEST_CASE("deadline_queue: ten thousand connections, each moved many times, stay one entry each") {
  DeadlineQueue queue;
  for (DeadlineQueue::Id id = 1; id <= 10'000; ++id)
    for (int move = 0; move < 5; ++move)
      queue.set(id, kT0 + std::chrono::milliseconds((id * 7 + move) % 1000));
  CHECK(queue.size() == 10'000);
  auto expired = queue.take_expired(kT0 + 1s);
  CHECK(expired.size() == 10'000);
  CHECK(queue.size() == 0);
}
