// The hot pool's scheduling in fake time: backoff, the startup window, idle stops, max-instances,
// the queue, failed spawns and recycling. The clock is a FakeClock advanced by the test and the
// maintenance thread is off (the test calls maintain()), so seconds of pool time pass in
// microseconds. Processes are real and tiny: /bin/cat stays alive and silent (an idle handler),
// /bin/true exits at once (a handler that crashes at start). No request is served: acquire() and
// release() are reached through HotPoolProbe, because what is tested is which process a request
// gets and when, not the exchange with it.
#include "watchdog/hot_pool.h"

#include <doctest/doctest.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <future>
#include <mutex>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>

#include "common/unique_fd.h"
#include "protocol/http_parser.h"
#include "tests/unit/eventually.h"
#include "watchdog/hot_process.h"

namespace watchdog {

class HotPoolProbe {
 public:
  static common::Result<PooledProcess*> acquire(HotPool& pool, HotPool::Clock::time_point deadline) {
    return pool.acquire(deadline);
  }
  static void release(HotPool& pool, PooledProcess* process) { pool.release(process, nullptr); }
  static std::size_t alive(const HotPool& pool) {
    std::lock_guard lock(pool.mutex_);
    return pool.processes_.size();
  }
  static std::size_t waiting(const HotPool& pool) {
    std::lock_guard lock(pool.mutex_);
    return pool.waiters_.size();
  }
  static HotPool::Clock::time_point next_spawn_at(const HotPool& pool) {
    std::lock_guard lock(pool.mutex_);
    return pool.next_spawn_at_;
  }
  static std::uint64_t kills(const HotPool& pool, StopReason reason) {
    return pool.kills_[static_cast<std::size_t>(reason)].load();
  }
};

}  // namespace watchdog

namespace {

using test_support::eventually;
using namespace std::chrono_literals;
using watchdog::HotPool;
using watchdog::HotPoolProbe;
using watchdog::HotProcess;
using watchdog::PooledProcess;
using watchdog::StopReason;
using Clock = std::chrono::steady_clock;
using Error = common::Error;

// Fake time: starts far from the clock's epoch (a default time_point means "no backoff" to the
// pool) and moves only when the test says. Atomic: waiting requests read it from their threads.
class FakeClock {
 public:
  watchdog::PoolClock clock() {
    return [this] { return now(); };
  }
  Clock::time_point now() const { return kBase + std::chrono::microseconds(offset_us_.load()); }
  void advance(std::chrono::microseconds by) { offset_us_ += by.count(); }

 private:
  static constexpr Clock::time_point kBase = Clock::time_point{} + 1000h;
  std::atomic<std::int64_t> offset_us_{0};
};

// Counts spawns and does each as told: run `argv`, or fail with `failure`, or throw.
class FakeSpawner {
 public:
  watchdog::HotSpawner spawner() {
    return [this](const PooledProcess::SpawnContext& context) { return spawn(context); };
  }
  // The handler exits at once (/bin/true). Each spawn waits for that exit, so that the pool's next
  // maintain() sees it dead: the exit is a real process's, the wait polls its pidfd.
  void run_exiting() { set({"/bin/true"}, std::nullopt, true); }
  void run_silent() { set({"/bin/cat"}, std::nullopt, false); }
  void run(std::vector<std::string> argv) { set(std::move(argv), std::nullopt, false); }
  void fail(Error failure) { set({}, std::move(failure), false); }
  void throw_on_spawn() {
    std::lock_guard lock(mutex_);
    throw_ = true;
  }
  int calls() const { return calls_.load(); }

 private:
  void set(std::vector<std::string> argv, std::optional<Error> failure, bool wait_exit) {
    std::lock_guard lock(mutex_);
    argv_ = std::move(argv);
    failure_ = std::move(failure);
    wait_exit_ = wait_exit;
    throw_ = false;
  }

  common::Result<std::unique_ptr<PooledProcess>> spawn(const PooledProcess::SpawnContext& context) {
    std::lock_guard lock(mutex_);
    ++calls_;
    if (throw_) throw std::runtime_error("spawner broke");
    if (failure_) return tl::unexpected(*failure_);
    common::SpawnOptions options = context.options;
    options.argv = argv_;
    auto process = HotProcess::spawn(
        {options, context.pump, context.pipes, context.generation, context.clock});
    if (process && wait_exit_) {
      // No doctest assertion here: it would throw through the pool (it runs on the pool's threads).
      pollfd exited{(*process)->child().exit_fd(), POLLIN, 0};
      if (::poll(&exited, 1, 10'000) != 1)
        return common::fail(Error::Code::kUnavailable, "test: /bin/true did not exit within 10 s");
    }
    return process;
  }

  std::mutex mutex_;
  std::atomic<int> calls_{0};
  std::vector<std::string> argv_{"/bin/cat"};
  std::optional<Error> failure_;
  bool wait_exit_ = false;
  bool throw_ = false;
};

watchdog::Options pool_options(int min_instances, int max_instances) {
  watchdog::Options options;
  options.format = watchdog::Format::kHttp;
  options.name = "hot_pool_test";
  options.command = {"/bin/cat"};
  options.min_instances = min_instances;
  options.max_instances = max_instances;
  options.max_queue = 2;
  options.idle_timeout = 10s;
  return options;
}

// A pool on fake time and the fake spawner, with no maintenance thread.
struct Fixture {
  explicit Fixture(watchdog::Options pool_options, bool exiting = false)
      : options(std::move(pool_options)) {
    if (exiting) spawner.run_exiting();
    pool.emplace(options, std::vector<std::string>{"PATH=/usr/bin:/bin"},
                 watchdog::HotPoolSeams{clock.clock(), spawner.spawner(), false});
  }
  common::Result<PooledProcess*> acquire() {
    return HotPoolProbe::acquire(*pool, Clock::now() + 60s);  // a real deadline nobody reaches
  }
  void release(PooledProcess* process) { HotPoolProbe::release(*pool, process); }
  void step(std::chrono::microseconds by) {
    clock.advance(by);
    pool->maintain();
  }

  watchdog::Options options;  // outlives the pool
  FakeClock clock;
  FakeSpawner spawner;
  std::optional<HotPool> pool;
};

// A request waiting in the queue on its own thread.
struct Waiting {
  template <typename PoolFixture>
  explicit Waiting(PoolFixture& fixture)
      : thread([this, &fixture] {
          auto got = fixture.acquire();
          std::lock_guard lock(mutex);
          result = got;
        }) {}
  ~Waiting() { thread.join(); }
  std::optional<common::Result<PooledProcess*>> get() {
    std::lock_guard lock(mutex);
    return result;
  }
  std::mutex mutex;
  std::optional<common::Result<PooledProcess*>> result;
  std::thread thread;
};

void enqueue(Fixture& fixture, std::optional<Waiting>& slot, std::size_t expected_waiting) {
  slot.emplace(fixture);
  REQUIRE(eventually([&] { return HotPoolProbe::waiting(*fixture.pool) == expected_waiting; }));
}

// A silent process (/bin/cat) whose first idle check for a request waits until the test opens the
// gate, as the check of a handler still inside the last write of its answer waits for it.
struct Gate {
  std::atomic<int> checks{0};
  std::atomic<bool> entered{false};
  std::atomic<bool> open{false};
  void let_through() {
    open = true;
    open.notify_all();
  }
};

class GatedProcess final : public PooledProcess {
 public:
  GatedProcess(common::Child child, const SpawnContext& context, Gate& gate)
      : PooledProcess(std::move(child), context.generation, context.clock(), State::kIdle),
        gate_(gate) {}
  Served serve(watchdog::Invocation&, const std::optional<std::string>&, std::uint64_t,
               const Done&) override {
    return {common::fail(Error::Code::kInternal, "test: not served")};
  }
  bool check_idle(bool dispatching) override {
    if (dispatching && gate_.checks++ == 0) {
      gate_.entered = true;
      gate_.open.wait(false);
    }
    return true;
  }
  common::Result<bool> check_started(Clock::time_point) override { return true; }

 private:
  Gate& gate_;
};

watchdog::HotSpawner gated_spawner(Gate& gate) {
  return [&gate](const PooledProcess::SpawnContext& context)
             -> common::Result<std::unique_ptr<PooledProcess>> {
    auto child = common::Child::spawn(context.options);
    if (!child) return tl::unexpected(child.error());
    return std::make_unique<GatedProcess>(std::move(*child), context, gate);
  };
}

// A hot handler in sh: answers "ok" to each request once its head has been read. sh reads its
// stdin a byte at a time, so it never takes bytes of a next request.
const std::vector<std::string> kAnsweringHandler = {
    "/bin/sh", "-c",
    "cr=$(printf '\\r'); while IFS= read -r line; do if [ \"$line\" = \"$cr\" ]; then "
    "printf 'HTTP/1.1 200 OK\\r\\nContent-Length: 2\\r\\n\\r\\nok'; fi; done"};

// Serves one GET through the pool over a socketpair, as a connection thread would; returns the
// status and what the client received.
std::pair<common::Status, std::string> serve_get(HotPool& pool, std::string_view target) {
  int fds[2];
  REQUIRE(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds) == 0);
  common::UniqueFd server(fds[0]), client(fds[1]);
  std::string buffer = "GET " + std::string(target) + " HTTP/1.1\r\nHost: x\r\n\r\n";
  auto parsed = protocol::parse_request_head(buffer);
  REQUIRE(parsed.status == protocol::ParseStatus::kComplete);
  auto framing = protocol::request_framing(parsed.head);
  common::PeerInfo peer{"", "", true};
  common::ClientRequest request(server.get(), buffer, parsed.consumed, std::move(parsed.head),
                                framing.framing, peer, 5s);
  common::ClientResponse response(server.get(), request, true);
  std::string id = "hot-pool-test";
  watchdog::Invocation invocation{request, response, id, Clock::now() + 30s, 0};
  auto status = pool.serve(invocation);
  server.reset();  // the answer is small: it waits whole in the socket
  std::string received;
  char piece[4096];
  for (ssize_t n; (n = ::read(client.get(), piece, sizeof piece)) > 0;) received.append(piece, n);
  return {status, received};
}

}  // namespace

TEST_CASE("hot pool: a crash loop backs off from 100 ms, doubling up to 5 s") {
  Fixture fixture(pool_options(1, 1), true);  // the constructor's spawn exits at once
  fixture.pool->maintain();                   // and is seen dead: the first failure
  int spawns = 1;
  REQUIRE(fixture.spawner.calls() == spawns);
  int failures = 1;
  for (auto backoff : {100ms, 200ms, 400ms, 800ms, 1600ms, 3200ms, 5000ms, 5000ms}) {
    CAPTURE(backoff.count());
    CHECK(HotPoolProbe::next_spawn_at(*fixture.pool) == fixture.clock.now() + backoff);
    auto health = fixture.pool->health();
    CHECK(health.ok == (failures < 2));  // unhealthy from the second failure in a row
    if (!health.ok) {
      CHECK(health.reason.find("the handler exited at start") != std::string::npos);
      CHECK(health.reason.find("(" + std::to_string(failures) + " times)") != std::string::npos);
      CHECK(health.reason.find("next try in " + std::to_string(backoff.count()) + "ms") !=
            std::string::npos);
    }
    fixture.step(backoff - 1ms);
    CHECK(fixture.spawner.calls() == spawns);  // nothing before next_spawn_at
    fixture.step(1ms);
    CHECK(fixture.spawner.calls() == ++spawns);
    fixture.pool->maintain();  // sees the new one dead
    ++failures;
  }
  CHECK(HotPoolProbe::kills(*fixture.pool, StopReason::kExited) == static_cast<unsigned>(spawns));
}

TEST_CASE("hot pool: a request whose spawns crash gets 503, and the loop probes on its own") {
  Fixture fixture(pool_options(0, 1), true);
  CHECK(fixture.spawner.calls() == 0);  // min-instances 0: nothing to warm
  std::optional<Waiting> request;
  enqueue(fixture, request, 1);  // its spawn exited at once: it waits for the retry
  CHECK(fixture.spawner.calls() == 1);
  fixture.step(100ms);  // the retry exits too: a crash loop, and waiting would only time out
  REQUIRE(eventually([&] { return request->get().has_value(); }));
  auto got = *request->get();
  REQUIRE_FALSE(got);
  CHECK(common::http_status(got.error().code) == 503);
  CHECK(got.error().context.find("the handler exited at start") != std::string::npos);
  CHECK(fixture.spawner.calls() == 2);

  fixture.step(199ms);
  CHECK(fixture.spawner.calls() == 2);
  fixture.step(1ms);  // nobody asks, but a probe must find out whether it recovered
  CHECK(fixture.spawner.calls() == 3);
  fixture.pool->maintain();
  CHECK(HotPoolProbe::next_spawn_at(*fixture.pool) == fixture.clock.now() + 400ms);
}

TEST_CASE("hot pool: a process alive through the startup window ends the crash loop") {
  Fixture fixture(pool_options(1, 1), true);
  fixture.pool->maintain();
  fixture.step(100ms);
  fixture.pool->maintain();  // the second failure: unhealthy, next try in 200 ms
  REQUIRE_FALSE(fixture.pool->health().ok);

  fixture.spawner.run_silent();
  fixture.step(200ms);  // the backoff's probe: alive, but not yet for long
  REQUIRE(fixture.spawner.calls() == 3);
  fixture.step(999ms);
  CHECK_FALSE(fixture.pool->health().ok);
  fixture.step(1ms);  // one second alive: recovered
  CHECK(fixture.pool->health().ok);
  CHECK(fixture.pool->ready().ok);

  SUBCASE("a crash after the recovery starts the backoff anew at 100 ms") {
    fixture.spawner.run_exiting();
    auto process = fixture.acquire();
    REQUIRE(process);
    (*process)->child().signal_group(SIGKILL);
    pollfd exited{(*process)->child().exit_fd(), POLLIN, 0};
    REQUIRE(::poll(&exited, 1, 10'000) == 1);
    fixture.release(*process);
    fixture.pool->maintain();
    CHECK(HotPoolProbe::next_spawn_at(*fixture.pool) == fixture.clock.now() + 100ms);
    CHECK(fixture.pool->health().ok);  // one failure is not a loop yet
  }
}

TEST_CASE("hot pool: a probe's answer ends the crash loop at once") {
  Fixture fixture(pool_options(1, 1), true);
  fixture.pool->maintain();
  fixture.step(100ms);
  fixture.pool->maintain();
  REQUIRE_FALSE(fixture.pool->health().ok);

  fixture.spawner.run(kAnsweringHandler);
  fixture.step(200ms);  // the backoff's probe, young: idling would need the whole startup window
  REQUIRE(fixture.spawner.calls() == 3);
  auto [status, received] = serve_get(*fixture.pool, "/probe");
  CHECK(status.has_value());
  CHECK(received.rfind("HTTP/1.1 200", 0) == 0);
  CHECK(received.find("\r\n\r\nok") != std::string::npos);
  CHECK(fixture.pool->health().ok);  // no time passed: the answer itself ended the loop
  auto [again, answer] = serve_get(*fixture.pool, "/again");
  CHECK(again.has_value());
  CHECK(fixture.spawner.calls() == 3);  // the same process serves on
}

TEST_CASE("hot pool: idle processes beyond min-instances stop after idle-timeout") {
  Fixture fixture(pool_options(1, 3));
  REQUIRE(HotPoolProbe::alive(*fixture.pool) == 1);  // warmed by the constructor at 0 s
  auto first = fixture.acquire();
  fixture.step(5s);
  auto second = fixture.acquire();  // spawned at 5 s
  auto third = fixture.acquire();
  REQUIRE((first && second && third));
  CHECK(fixture.spawner.calls() == 3);
  for (auto* process : {*first, *second, *third}) fixture.release(process);

  fixture.step(5s - 1ms);
  CHECK(HotPoolProbe::alive(*fixture.pool) == 3);
  fixture.step(1ms);  // 10 s: the first one has idled its idle-timeout
  CHECK(HotPoolProbe::alive(*fixture.pool) == 2);
  fixture.step(5s);  // 15 s: so has the second; the third stays for min-instances
  CHECK(HotPoolProbe::alive(*fixture.pool) == 1);
  fixture.step(1h);
  CHECK(HotPoolProbe::alive(*fixture.pool) == 1);
  CHECK(HotPoolProbe::kills(*fixture.pool, StopReason::kIdle) == 2);
  CHECK(fixture.spawner.calls() == 3);
  auto kept = fixture.acquire();  // the one released last, the most recently used
  REQUIRE(kept);
  CHECK(*kept == *third);
  fixture.release(*kept);
}

TEST_CASE("hot pool: min-instances 0 scales to zero after idle-timeout and back on a request") {
  Fixture fixture(pool_options(0, 1));
  CHECK(HotPoolProbe::alive(*fixture.pool) == 0);
  CHECK(fixture.pool->ready().ok);  // nothing warm is needed
  auto first = fixture.acquire();
  REQUIRE(first);
  fixture.release(*first);
  fixture.step(10s - 1ms);
  CHECK(HotPoolProbe::alive(*fixture.pool) == 1);
  fixture.step(1ms);
  CHECK(HotPoolProbe::alive(*fixture.pool) == 0);
  CHECK(fixture.spawner.calls() == 1);
  auto second = fixture.acquire();  // a fresh spawn
  REQUIRE(second);
  CHECK(fixture.spawner.calls() == 2);
  CHECK(HotPoolProbe::kills(*fixture.pool, StopReason::kIdle) == 1);
  fixture.release(*second);
}

TEST_CASE("hot pool: max-instances bounds spawns and requests queue FIFO up to max-queue") {
  Fixture fixture(pool_options(0, 2));
  auto a = fixture.acquire();
  auto b = fixture.acquire();
  REQUIRE((a && b));
  std::optional<Waiting> first, second;
  enqueue(fixture, first, 1);
  enqueue(fixture, second, 2);

  auto refused = fixture.acquire();  // the queue is full
  REQUIRE_FALSE(refused);
  CHECK(refused.error().code == Error::Code::kTooBusy);
  CHECK(common::http_status(refused.error().code) == 429);
  CHECK_FALSE(fixture.pool->ready().ok);
  fixture.step(1s);
  fixture.step(1h);
  CHECK(fixture.spawner.calls() == 2);  // waiters never spawn past max-instances

  fixture.release(*a);  // the first in the queue gets it, the second still waits
  REQUIRE(eventually([&] { return first->get().has_value(); }));
  CHECK(**first->get() == *a);
  CHECK_FALSE(second->get());
  CHECK(HotPoolProbe::waiting(*fixture.pool) == 1);

  fixture.release(*b);
  REQUIRE(eventually([&] { return second->get().has_value(); }));
  CHECK(**second->get() == *b);
  fixture.release(*a);
  fixture.release(*b);
  CHECK(fixture.spawner.calls() == 2);
}

TEST_CASE("hot pool: a request that waits past its deadline is a timeout") {
  Fixture fixture(pool_options(0, 1));
  auto a = fixture.acquire();
  REQUIRE(a);
  auto late = HotPoolProbe::acquire(*fixture.pool, Clock::now());  // already due
  REQUIRE_FALSE(late);
  CHECK(late.error().code == Error::Code::kTimeout);
  CHECK(HotPoolProbe::waiting(*fixture.pool) == 0);
  fixture.release(*a);
}

TEST_CASE("hot pool: a failed spawn is an error value, never an exception") {
  Fixture fixture(pool_options(0, 1));
  SUBCASE("cannot execute: 502 for the request that asked") {
    fixture.spawner.fail({Error::Code::kBadGateway, "cannot execute \"/nope\": No such file"});
    auto got = fixture.acquire();
    REQUIRE_FALSE(got);
    CHECK(common::http_status(got.error().code) == 502);
    CHECK(got.error().context.find("cannot execute") != std::string::npos);
  }
  SUBCASE("a spawner that throws: 503 with its reason") {
    fixture.spawner.throw_on_spawn();
    common::Result<PooledProcess*> got = nullptr;
    CHECK_NOTHROW(got = fixture.acquire());
    REQUIRE_FALSE(got);
    CHECK(common::http_status(got.error().code) == 503);
    CHECK(got.error().context.find("spawner broke") != std::string::npos);
    CHECK_NOTHROW(fixture.step(1h));
  }
}

TEST_CASE("hot pool: a failed spawn while requests wait answers them 503 with the reason") {
  Fixture fixture(pool_options(0, 1));
  auto a = fixture.acquire();
  REQUIRE(a);
  std::optional<Waiting> first, second;
  enqueue(fixture, first, 1);
  enqueue(fixture, second, 2);
  fixture.spawner.fail(
      {Error::Code::kUnavailable, "cannot start the handler: pipe2: Too many open files"});

  (*a)->poison(StopReason::kTimeout);  // retired at release, which spawns for the waiters
  CHECK_NOTHROW(fixture.release(*a));
  CHECK(fixture.spawner.calls() == 2);
  CHECK(HotPoolProbe::waiting(*fixture.pool) == 2);  // one failure: they wait for the retry
  fixture.step(100ms);                               // the retry fails too: a crash loop
  CHECK(fixture.spawner.calls() == 3);

  for (auto* waiting : {&first, &second}) {
    REQUIRE(eventually([&] { return (*waiting)->get().has_value(); }));
    auto got = *(*waiting)->get();
    REQUIRE_FALSE(got);
    CHECK(common::http_status(got.error().code) == 503);
    CHECK(got.error().context.find("Too many open files") != std::string::npos);
    CHECK(got.error().context.find("next try in 200ms") != std::string::npos);
  }
  auto later = fixture.acquire();  // nothing alive to probe with: refused at once, not queued
  REQUIRE_FALSE(later);
  CHECK(later.error().code == Error::Code::kUnavailable);
}

TEST_CASE("hot pool: a process is checked outside the lock, so a slow check delays nobody else") {
  Gate gate;
  FakeClock clock;
  auto options = pool_options(2, 2);
  HotPool pool(options, {"PATH=/usr/bin:/bin"}, {clock.clock(), gated_spawner(gate), false});
  REQUIRE(HotPoolProbe::alive(pool) == 2);
  auto first = std::async(std::launch::async,
                          [&] { return HotPoolProbe::acquire(pool, Clock::now() + 60s); });
  REQUIRE(eventually([&] { return gate.entered.load(); }));
  // The other process is free: its request must not wait for the first one's check. A generous
  // bound: under the lock it waits until the gate opens, which is never on its own.
  auto second = std::async(std::launch::async,
                           [&] { return HotPoolProbe::acquire(pool, Clock::now() + 60s); });
  bool served_meanwhile = second.wait_for(10s) == std::future_status::ready;
  gate.let_through();
  auto got_first = first.get();
  auto got_second = second.get();
  CHECK(served_meanwhile);
  REQUIRE(got_first);
  REQUIRE(got_second);
  CHECK(*got_first != *got_second);
  HotPoolProbe::release(pool, *got_first);
  HotPoolProbe::release(pool, *got_second);
}

TEST_CASE("hot pool: recycle retires idle processes and new requests get new ones") {
  Fixture fixture(pool_options(1, 2));
  auto busy = fixture.acquire();
  auto idle = fixture.acquire();
  REQUIRE((busy && idle));
  fixture.release(*idle);
  REQUIRE(fixture.spawner.calls() == 2);

  fixture.pool->recycle();  // the idle one goes now; the busy one finishes its request first
  CHECK(HotPoolProbe::kills(*fixture.pool, StopReason::kRecycle) == 1);
  CHECK(HotPoolProbe::alive(*fixture.pool) == 1);
  fixture.release(*busy);
  CHECK(HotPoolProbe::kills(*fixture.pool, StopReason::kRecycle) == 2);

  fixture.pool->maintain();  // min-instances: a new one
  CHECK(fixture.spawner.calls() == 3);
  auto fresh = fixture.acquire();
  REQUIRE(fresh);
  CHECK((*fresh)->generation() == 1);
  CHECK((*fresh)->requests() == 0);
  fixture.release(*fresh);
}

namespace {

// An app process as the pool sees it (format server): serves `concurrency` requests at once and
// is kStarting until the test says it listens. A real, silent /bin/cat stands behind it.
class FakeServer : public PooledProcess {
 public:
  static common::Result<std::unique_ptr<PooledProcess>> spawn(const SpawnContext& context,
                                                              int concurrency,
                                                              std::atomic<bool>& listening) {
    common::SpawnOptions options = context.options;
    options.argv = {"/bin/cat"};
    auto child = common::Child::spawn(options);
    if (!child) return tl::unexpected(child.error());
    return std::unique_ptr<PooledProcess>(
        new FakeServer(std::move(*child), context, concurrency, listening));
  }
  Served serve(watchdog::Invocation&, const std::optional<std::string>&, std::uint64_t,
               const Done& done) override {
    done({true, std::nullopt});
    return {};
  }
  bool check_idle(bool) override { return true; }
  common::Result<bool> check_started(Clock::time_point) override { return listening_.load(); }
  int max_concurrency() const noexcept override { return concurrency_; }

 private:
  FakeServer(common::Child child, const SpawnContext& context, int concurrency,
             std::atomic<bool>& listening)
      : PooledProcess(std::move(child), context.generation, context.clock(), State::kStarting),
        concurrency_(concurrency),
        listening_(listening) {}
  int concurrency_;
  std::atomic<bool>& listening_;
};

struct ServerFixture {
  explicit ServerFixture(int concurrency, int min_instances = 0)
      : options(pool_options(min_instances, 2)) {
    options.format = watchdog::Format::kServer;
    auto spawn = [this, concurrency](const PooledProcess::SpawnContext& context) {
      ++spawns;
      return FakeServer::spawn(context, concurrency, listening);
    };
    pool.emplace(options, std::vector<std::string>{"PATH=/usr/bin:/bin"},
                 watchdog::HotPoolSeams{clock.clock(), spawn, false});
  }
  common::Result<PooledProcess*> acquire() { return HotPoolProbe::acquire(*pool, Clock::now() + 60s); }

  watchdog::Options options;
  FakeClock clock;
  std::atomic<bool> listening{false};
  std::atomic<int> spawns{0};
  std::optional<HotPool> pool;
};

TEST_CASE("pool of app servers: least busy below max concurrency, a spawn only when all are full") {
  ServerFixture fixture(2);
  auto waiting = [&fixture] { return HotPoolProbe::waiting(*fixture.pool); };
  // The first request spawns a process and waits for it to listen, not for more spawns.
  std::optional<Waiting> first(std::in_place, fixture);
  REQUIRE(eventually([&] { return waiting() == 1; }));
  fixture.pool->maintain();
  CHECK(fixture.spawns == 1);
  CHECK(waiting() == 1);
  fixture.listening = true;
  fixture.pool->maintain();  // it listens: the waiter gets it
  REQUIRE(eventually([&] { return first->get().has_value(); }));
  PooledProcess* a = first->get()->value();
  first.reset();
  CHECK(a->in_flight() == 1);
  // Room left in a: the second request shares it, with no spawn.
  auto second = fixture.acquire();
  REQUIRE(second);
  CHECK(*second == a);
  CHECK(a->in_flight() == 2);
  CHECK(fixture.spawns == 1);
  // Every process full: the third spawns b and gets it once b listens.
  std::optional<Waiting> third(std::in_place, fixture);
  REQUIRE(eventually([&] { return fixture.spawns == 2; }));
  fixture.pool->maintain();
  REQUIRE(eventually([&] { return third->get().has_value(); }));
  PooledProcess* b = third->get()->value();
  third.reset();
  CHECK(b != a);
  // b has room and a has none: the fourth goes to b; at max-instances the fifth waits.
  auto fourth = fixture.acquire();
  REQUIRE(fourth);
  CHECK(*fourth == b);
  std::optional<Waiting> fifth(std::in_place, fixture);
  REQUIRE(eventually([&] { return waiting() == 1; }));
  CHECK(fixture.spawns == 2);
  // A slot freeing in a goes to the waiter; then a free slot goes to the least busy process.
  HotPoolProbe::release(*fixture.pool, a);
  REQUIRE(eventually([&] { return fifth->get().has_value(); }));
  CHECK(fifth->get()->value() == a);
  fifth.reset();
  HotPoolProbe::release(*fixture.pool, a);
  HotPoolProbe::release(*fixture.pool, a);
  CHECK(a->in_flight() == 0);
  auto next = fixture.acquire();
  REQUIRE(next);
  CHECK(*next == a);  // a idle, b with 2 in flight
  for (PooledProcess* process : {a, b, b}) HotPoolProbe::release(*fixture.pool, process);
}

TEST_CASE("pool of app servers: the metrics say starting until an app listens, then idle") {
  ServerFixture fixture(4, 1);
  auto processes = [&fixture](const std::string& state) {
    std::string text;
    fixture.pool->render_metrics(text);
    return text.find("fastfn_watchdog_processes{function=\"" + fixture.options.name +
                     "\",state=\"" + state + "\"} 1") != std::string::npos;
  };
  fixture.pool->maintain();  // the warm process
  REQUIRE(fixture.spawns == 1);
  CHECK(processes("starting"));
  fixture.listening = true;
  fixture.pool->maintain();
  // Started, and no request yet: idle (it counted as starting until its first request before).
  CHECK(processes("idle"));
  CHECK_FALSE(processes("starting"));
}

TEST_CASE("pool of app servers: an app slower to start than idle-timeout serves its waiter") {
  // min-instances 0: the request spawns the app, which listens only after idle-timeout has
  // passed since its spawn. It must serve that request, not be stopped as idle first.
  ServerFixture fixture(1);
  std::optional<Waiting> first(std::in_place, fixture);
  REQUIRE(eventually([&] { return HotPoolProbe::waiting(*fixture.pool) == 1; }));
  fixture.pool->maintain();
  REQUIRE(fixture.spawns == 1);
  fixture.clock.advance(fixture.options.idle_timeout + 1s);
  fixture.listening = true;
  fixture.pool->maintain();
  REQUIRE(eventually([&] { return first->get().has_value(); }));
  REQUIRE(first->get()->has_value());
  PooledProcess* app = first->get()->value();
  first.reset();
  CHECK(HotPoolProbe::kills(*fixture.pool, StopReason::kIdle) == 0);
  CHECK(fixture.spawns == 1);
  HotPoolProbe::release(*fixture.pool, app);
}

}  // namespace
