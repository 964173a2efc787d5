#include "gateway/on_demand.h"

#include <doctest/doctest.h>

#include <atomic>
#include <optional>
#include <thread>
#include <vector>

namespace {

using gateway::OnDemand;
using std::chrono::milliseconds;

struct Counts {
  int started = 0;
  int parked = 0;
};

struct Fixture {
  Counts counts;
  OnDemand function{milliseconds(1000), [this] { ++counts.started; }, [this] { ++counts.parked; }};
  OnDemand::Clock::time_point t0 = OnDemand::Clock::now();

  OnDemand::Clock::time_point at(int ms) const { return t0 + milliseconds(ms); }
};

}  // namespace

TEST_CASE("on_demand: cold until the first request, which starts it once") {
  Fixture f;
  CHECK_FALSE(f.function.warm());
  CHECK_FALSE(f.function.park_if_idle(f.at(5000)));
  CHECK(f.counts.parked == 0);
  {
    auto first = f.function.enter(f.at(0));
    auto second = f.function.enter(f.at(1));
    CHECK(f.function.warm());
    CHECK(f.counts.started == 1);
  }
  CHECK(f.counts.started == 1);
}

TEST_CASE("on_demand: parked only after idle_ttl with nothing in flight") {
  Fixture f;
  std::optional<OnDemand::Use> use(f.function.enter(f.at(0)));
  CHECK_FALSE(f.function.park_if_idle(f.at(60'000)));  // a long request is not idleness
  use.reset();  // ends now; idle_ttl counts from here on
  const auto ended = OnDemand::Clock::now();
  CHECK_FALSE(f.function.park_if_idle(ended + milliseconds(999)));
  CHECK(f.function.warm());
  CHECK(f.function.park_if_idle(ended + milliseconds(1000)));
  CHECK(f.counts.parked == 1);
  CHECK_FALSE(f.function.warm());
  CHECK_FALSE(f.function.park_if_idle(ended + milliseconds(5000)));  // parked once
  CHECK(f.counts.parked == 1);
}

TEST_CASE("on_demand: a request after parking starts it again") {
  Fixture f;
  f.function.enter(f.at(0));
  CHECK(f.function.park_if_idle(OnDemand::Clock::now() + milliseconds(1000)));
  f.function.enter(OnDemand::Clock::now());
  CHECK(f.counts.started == 2);
  CHECK(f.function.warm());
}

TEST_CASE("on_demand: concurrent first requests start it once") {
  Counts counts;
  std::atomic<int> starting{0};
  OnDemand function(
      milliseconds(1000),
      [&] {
        ++starting;
        std::this_thread::sleep_for(milliseconds(20));  // a slow spawn: others must wait, not start
        ++counts.started;
      },
      [&] { ++counts.parked; });
  std::vector<std::thread> threads;
  std::atomic<int> warm_seen{0};
  for (int i = 0; i < 8; ++i)
    threads.emplace_back([&] {
      auto use = function.enter(OnDemand::Clock::now());
      warm_seen += counts.started == 1;  // enter() returns only after the start
    });
  for (auto& thread : threads) thread.join();
  CHECK(starting == 1);
  CHECK(counts.started == 1);
  CHECK(warm_seen == 8);
}
