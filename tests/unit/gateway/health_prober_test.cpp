#include "gateway/health_prober.h"

#include <doctest/doctest.h>

#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <atomic>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>

#include "tests/unit/gateway/unix_listener.h"

namespace {

using gateway::Probe;
using gateway::ProbePolicy;
using gateway::ProbeResult;
using gateway::Upstream;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

std::shared_ptr<Upstream> make_upstream(const std::string& path = "/nonexistent.sock",
                                        bool supervised = false) {
  return std::make_shared<Upstream>(
      "f", 0, common::Address{common::Address::Kind::kUnix, path, "", 0}, supervised);
}

struct Listener : test_support::UnixListener {
  void answer(const std::string& response) const {
    UnixListener::answer("GET /_/health HTTP/1.1\r\n", response);
  }
};

// Runs `probe` to its end on the real clock, as the prober's loop does.
ProbeResult run(Probe& probe, milliseconds timeout) {
  while (!probe.done()) {
    if (Clock::now() >= probe.deadline()) {
      probe.expire(timeout);
      break;
    }
    pollfd entry = probe.poll_entry();
    if (::poll(&entry, 1, 10) > 0) probe.advance(entry.revents);
  }
  return *probe.result();
}

}  // namespace

TEST_CASE("health_prober: a probe's deadline is half an interval, never below the floor") {
  ProbePolicy policy{milliseconds(2000)};
  CHECK(policy.timeout() == milliseconds(1000));
  policy.interval = milliseconds(1000);
  CHECK(policy.timeout() == ProbePolicy::kMinTimeout);
  policy.interval = milliseconds(250);
  CHECK(policy.timeout() == ProbePolicy::kMinTimeout);
}

TEST_CASE("health_prober: two missed deadlines in a row mark the socket down, an answer up again") {
  ProbePolicy policy{milliseconds(1000)};
  auto upstream = make_upstream();
  auto t0 = Clock::now();
  upstream->mark(Upstream::State::kUp);
  int missed = 0;
  ProbeResult late{false, "no answer within 500 ms", true};

  // Answered at t0, hung just after: probed at t0 + 1 interval, which misses its deadline. Once
  // is not enough (a busy machine): still up and routed, and asked again at once.
  auto t1 = t0 + policy.interval;
  auto next = policy.apply(*upstream, late, t1, t1 + policy.timeout(), missed);
  CHECK(upstream->state() == Upstream::State::kUp);
  CHECK(upstream->routable());
  CHECK(next == t1 + policy.timeout());
  // The second miss marks it down with the reason, within two intervals of its last answer.
  next = policy.apply(*upstream, late, next, next + policy.timeout(), missed);
  CHECK(upstream->state() == Upstream::State::kDown);
  CHECK_FALSE(upstream->routable());
  CHECK(upstream->last_error() == "no answer within 500 ms");
  CHECK(t1 + 2 * policy.timeout() - t0 <= 2 * policy.interval);

  // It answers again: up, the error cleared, probed once per interval from the probe's start.
  auto t2 = next;
  next = policy.apply(*upstream, {true, ""}, t2, t2 + milliseconds(3), missed);
  CHECK(upstream->state() == Upstream::State::kUp);
  CHECK(upstream->routable());
  CHECK(upstream->last_error() == std::nullopt);
  CHECK(next == t2 + milliseconds(1000));
  CHECK(missed == 0);
}

TEST_CASE("health_prober: a late answer between two misses starts the count again") {
  ProbePolicy policy{milliseconds(1000)};
  auto upstream = make_upstream();
  auto t0 = Clock::now();
  upstream->mark(Upstream::State::kUp);
  int missed = 0;
  ProbeResult late{false, "no answer within 500 ms", true};
  for (int round = 0; round < 3; ++round) {
    policy.apply(*upstream, late, t0, t0 + policy.timeout(), missed);
    policy.apply(*upstream, {true, ""}, t0, t0 + milliseconds(3), missed);
  }
  policy.apply(*upstream, late, t0, t0 + policy.timeout(), missed);
  CHECK(upstream->state() == Upstream::State::kUp);
}

TEST_CASE("health_prober: a refusal or a bad status marks an up socket down at once") {
  ProbePolicy policy{milliseconds(1000)};
  auto upstream = make_upstream();
  auto t0 = Clock::now();
  int missed = 0;
  upstream->mark(Upstream::State::kUp);
  policy.apply(*upstream, {false, "connect: Connection refused"}, t0, t0 + milliseconds(1), missed);
  CHECK(upstream->state() == Upstream::State::kDown);
  upstream->mark(Upstream::State::kUp);
  policy.apply(*upstream, {false, "health 503: draining"}, t0, t0 + milliseconds(1), missed);
  CHECK(upstream->state() == Upstream::State::kDown);
  CHECK(upstream->last_error() == "health 503: draining");
}

TEST_CASE("health_prober: a watchdog in its startup allowance stays starting and is probed often") {
  ProbePolicy policy{milliseconds(1000)};
  auto upstream = make_upstream();
  auto t0 = Clock::now();
  upstream->starting(t0 + milliseconds(5000));
  int missed = 0;
  auto next = policy.apply(*upstream, {false, "connect refused"}, t0, t0 + milliseconds(1), missed);
  CHECK(upstream->state() == Upstream::State::kStarting);
  CHECK(next == t0 + ProbePolicy::kStartingInterval);
  // Past the allowance a failed probe is a failure.
  auto late = t0 + milliseconds(6000);
  policy.apply(*upstream, {false, "connect refused"}, late, late + milliseconds(1), missed);
  CHECK(upstream->state() == Upstream::State::kDown);
  CHECK(upstream->last_error() == "connect refused");
}

TEST_CASE("health_prober: parked sockets and supervised ones with no watchdog running are not probed") {
  auto external = make_upstream();
  CHECK(ProbePolicy::probed(*external));
  external->park();
  CHECK_FALSE(ProbePolicy::probed(*external));
  auto supervised = make_upstream("/nonexistent.sock", true);
  CHECK_FALSE(ProbePolicy::probed(*supervised));  // pid 0: the supervisor's reason stays
  supervised->set_pid(12345);
  CHECK(ProbePolicy::probed(*supervised));
}

TEST_CASE("health_prober: a listener that never answers misses its deadline; the reason says where") {
  Listener hung;
  auto timeout = milliseconds(50);
  Probe probe(hung.address(), Clock::now() + timeout);
  CHECK_FALSE(probe.done());  // the kernel accepted the connection into the backlog
  auto result = run(probe, timeout);
  CHECK_FALSE(result.up);
  CHECK(result.reason.find("no answer within 50 ms (read)") != std::string::npos);
  CHECK(result.reason.find(hung.path) != std::string::npos);
  CHECK(result.timed_out);
}

TEST_CASE("health_prober: 200 is up, another status is down with the body, a refusal is down") {
  Listener listener;
  SUBCASE("200") {
    std::thread server([&] { listener.answer("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); });
    Probe probe(listener.address(), Clock::now() + milliseconds(10'000));
    auto result = run(probe, milliseconds(10'000));
    server.join();
    CHECK(result.up);
  }
  SUBCASE("503") {
    std::thread server([&] {
      listener.answer("HTTP/1.1 503 Service Unavailable\r\nContent-Length: 9\r\n\r\nbusy here");
    });
    Probe probe(listener.address(), Clock::now() + milliseconds(10'000));
    auto result = run(probe, milliseconds(10'000));
    server.join();
    CHECK_FALSE(result.up);
    CHECK(result.reason == "health 503: busy here");
  }
  SUBCASE("closed without an answer") {
    std::thread server([&] { listener.answer(""); });
    Probe probe(listener.address(), Clock::now() + milliseconds(10'000));
    auto result = run(probe, milliseconds(10'000));
    server.join();
    CHECK_FALSE(result.up);
    CHECK(result.reason.find("closed without an answer") != std::string::npos);
  }
  SUBCASE("refused") {
    Probe probe({common::Address::Kind::kUnix, listener.dir + "/none.sock", "", 0},
                Clock::now() + milliseconds(10'000));
    CHECK(probe.done());
    CHECK_FALSE(probe.result()->up);
    CHECK(probe.result()->reason.find("connect") != std::string::npos);
  }
}

TEST_CASE("health_prober: a hung socket does not hold up the probes of the others") {
  Listener hung;
  Listener good;
  auto hung_upstream = std::make_shared<Upstream>("a", 0, hung.address(), false);
  auto good_upstream = std::make_shared<Upstream>("b", 0, good.address(), false);
  std::atomic<bool> stop{false};
  std::atomic<int> answered{0};
  // Answers every probe of the good socket, for as long as the test runs.
  std::thread server([&] {
    while (!stop) {
      pollfd entry{good.fd, POLLIN, 0};
      if (::poll(&entry, 1, 20) > 0) {
        good.answer("HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n");
        ++answered;
      }
    }
  });
  {
    // An interval of 10 minutes: probes of the hung socket would block everything for that long if
    // they ran one after another. poke() asks for more passes.
    gateway::HealthProber prober([&] { return std::vector{hung_upstream, good_upstream}; },
                                 milliseconds(600'000));
    auto deadline = Clock::now() + std::chrono::seconds(30);
    while (answered < 3 && Clock::now() < deadline) {
      prober.poke();
      std::this_thread::sleep_for(milliseconds(5));
    }
    CHECK(answered >= 3);
    CHECK(good_upstream->state() == Upstream::State::kUp);
    // The hung one is still waiting for its (10 minute) deadline: neither up nor failed.
    CHECK(hung_upstream->state() == Upstream::State::kStarting);
  }
  stop = true;
  server.join();
}
