#include "common/event_loop.h"

#include <doctest/doctest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <future>
#include <stdexcept>
#include <string>
#include <thread>
#include <vector>

using common::EventLoop;
using common::UniqueFd;
using namespace std::chrono_literals;

namespace {

struct SocketPair {
  UniqueFd a, b;
  SocketPair() {
    int fds[2];
    REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
    a.reset(fds[0]);
    b.reset(fds[1]);
  }
};

// Runs `loop` on a thread of its own for the test's duration.
class Running {
 public:
  explicit Running(EventLoop& loop) : loop_(loop), thread_([&loop] { loop.run(); }) {}
  ~Running() {
    loop_.stop();
    thread_.join();
  }

 private:
  EventLoop& loop_;
  std::thread thread_;
};

}  // namespace

TEST_CASE("event_loop: a oneshot watch fires once per arm") {
  EventLoop loop;
  SocketPair pair;
  std::vector<char> seen;
  EventLoop::WatchId id = 0;
  id = loop.watch(pair.a.get(), EPOLLIN | EPOLLONESHOT, [&](std::uint32_t) {
    char c;
    REQUIRE(::read(pair.a.get(), &c, 1) == 1);
    seen.push_back(c);
    if (seen.size() == 3)
      loop.stop();
    else
      loop.rearm(id, EPOLLIN | EPOLLONESHOT);
  });
  REQUIRE(id != 0);
  REQUIRE(::write(pair.b.get(), "xyz", 3) == 3);
  loop.run();
  CHECK(seen == std::vector<char>{'x', 'y', 'z'});
}

TEST_CASE("event_loop: timers run in deadline order; a disarmed one never runs") {
  EventLoop loop;
  std::vector<int> order;
  auto now = EventLoop::Clock::now();
  auto t1 = loop.add_timer([&] { order.push_back(1); });
  auto t2 = loop.add_timer([&] { order.push_back(2); });
  auto t3 = loop.add_timer([&] { order.push_back(3); });
  auto last = loop.add_timer([&] { loop.stop(); });
  loop.arm(t1, now + 30ms);
  loop.arm(t2, now + 10ms);
  loop.arm(t3, now + 20ms);
  loop.disarm(t3);
  loop.arm(last, now + 40ms);
  loop.run();
  CHECK(order == std::vector<int>{2, 1});
}

TEST_CASE("event_loop: a callback may unwatch itself and remove its own timer") {
  EventLoop loop;
  SocketPair pair;
  int calls = 0;
  EventLoop::WatchId id = 0;
  EventLoop::TimerId timer = 0;
  id = loop.watch(pair.a.get(), EPOLLIN, [&](std::uint32_t) {
    ++calls;
    loop.unwatch(id);  // level-triggered and never read: only the unwatch stops it
    timer = loop.add_timer([&] {
      loop.remove_timer(timer);
      loop.stop();
    });
    loop.arm(timer, EventLoop::Clock::now());
  });
  REQUIRE(::write(pair.b.get(), "x", 1) == 1);
  loop.run();
  CHECK(calls == 1);
}

TEST_CASE("event_loop: posts from other threads run on the loop thread, in order") {
  EventLoop loop;
  std::vector<int> order;
  std::thread::id ran_on;
  {
    Running running(loop);
    std::thread poster([&] {
      for (int i = 0; i < 100; ++i) loop.post([&, i] { order.push_back(i); });
    });
    poster.join();
    loop.run_and_wait([&] { ran_on = std::this_thread::get_id(); });
    CHECK(ran_on != std::this_thread::get_id());
  }
  REQUIRE(order.size() == 100);
  for (int i = 0; i < 100; ++i) CHECK(order[static_cast<std::size_t>(i)] == i);
  CHECK_FALSE(loop.post([] {}));  // ended: dropped
  bool inline_ran = false;
  loop.run_and_wait([&] { inline_ran = true; });  // ended: runs here
  CHECK(inline_ran);
}

TEST_CASE("event_loop: a callback that throws ends neither the loop nor the others") {
  EventLoop loop;
  int after = 0;
  auto boom = loop.add_timer([] { throw std::runtime_error("boom"); });
  auto next = loop.add_timer([&] {
    ++after;
    loop.stop();
  });
  auto now = EventLoop::Clock::now();
  loop.arm(boom, now);
  loop.arm(next, now + 5ms);
  loop.post([] { throw 7; });
  loop.run();
  CHECK(after == 1);
}

TEST_CASE("event_loop: a quiet post runs before the event of the fd re-armed after it") {
  EventLoop loop;
  SocketPair pair;
  std::vector<std::string> order;
  EventLoop::WatchId id = loop.watch(pair.a.get(), EPOLLIN | EPOLLONESHOT, [&](std::uint32_t) {
    order.push_back("ready");
    loop.stop();
  });
  REQUIRE(loop.rearm(id, 0));  // disarmed, as a connection handed to a worker is
  {
    Running running(loop);
    std::thread worker([&] {
      REQUIRE(loop.post_quietly([&] { order.push_back("returned"); }));
      REQUIRE(::write(pair.b.get(), "x", 1) == 1);
      REQUIRE(loop.rearm_fd(pair.a.get(), id, EPOLLIN | EPOLLONESHOT));
    });
    worker.join();
    loop.run_and_wait([] {});
  }
  CHECK(order == std::vector<std::string>{"returned", "ready"});
}

TEST_CASE("event_loop: a post made while the posts run wakes the loop again") {
  // A posted callback that posts again (so does a worker that finishes while the loop serves its
  // posts) must not wait for the longest sleep: here an hour, so a lost wake-up hangs the test.
  EventLoop loop(std::chrono::hours(1));
  std::promise<void> second_ran;
  auto second = second_ran.get_future();
  {
    Running running(loop);
    REQUIRE(loop.post([&] { loop.post([&] { second_ran.set_value(); }); }));
    REQUIRE_MESSAGE(second.wait_for(60s) == std::future_status::ready,
                    "the second post waited for the longest sleep: its wake-up was lost");
  }
}

