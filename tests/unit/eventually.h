// Waiting in the unit tests that run real threads, sockets or processes: they wait for a count or
// a state, polled, never for a duration; the bound is far beyond what any machine's speed needs.
#pragma once

#include <chrono>
#include <thread>

namespace test_support {

// Polls `condition` every millisecond until it holds (true) or 30 s have passed (its last value).
template <class Condition>
bool eventually(Condition condition) {
  using namespace std::chrono_literals;
  for (auto deadline = std::chrono::steady_clock::now() + 30s;
       std::chrono::steady_clock::now() < deadline;) {
    if (condition()) return true;
    std::this_thread::sleep_for(1ms);
  }
  return condition();
}

}  // namespace test_support
