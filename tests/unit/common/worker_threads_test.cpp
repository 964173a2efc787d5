#include "common/worker_threads.h"

#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <stdexcept>
#include <thread>

#include "tests/unit/eventually.h"

using common::WorkerThreads;
using test_support::eventually;
using namespace std::chrono_literals;

namespace {

// Tasks that block until released, counting how many started and finished.
class Gate {
 public:
  std::function<void()> task() {
    return [this] {
      ++started;
      std::unique_lock lock(mutex_);
      open_.wait(lock, [this] { return released_; });
      ++finished;
    };
  }
  void release() {
    std::lock_guard lock(mutex_);
    released_ = true;
    open_.notify_all();
  }
  std::atomic<int> started{0};
  std::atomic<int> finished{0};

 private:
  std::mutex mutex_;
  std::condition_variable open_;
  bool released_ = false;
};

}  // namespace

TEST_CASE("worker_threads: a thread per busy task up to max_threads, the rest queued FIFO") {
  WorkerThreads workers({3, 10min});
  Gate gate;
  CHECK(workers.threads() == 0);  // no work, no thread
  for (int i = 0; i < 5; ++i) REQUIRE(workers.submit(gate.task()));
  REQUIRE(eventually([&] { return gate.started == 3; }));
  CHECK(workers.threads() == 3);
  CHECK(workers.queued() == 2);
  CHECK(gate.started == 3);
  gate.release();
  REQUIRE(eventually([&] { return gate.finished == 5; }));
  CHECK(workers.threads() == 3);
  REQUIRE(eventually([&] { return workers.idle() == 3; }));
  CHECK(workers.queued() == 0);
}

TEST_CASE("worker_threads: an idle thread takes the next task, none is started") {
  WorkerThreads workers({8, 10min});
  std::atomic<int> done{0};
  REQUIRE(workers.submit([&] { ++done; }));
  REQUIRE(eventually([&] { return done == 1 && workers.idle() == 1; }));
  for (int i = 0; i < 20; ++i) {
    REQUIRE(workers.submit([&] { ++done; }));
    REQUIRE(eventually([&] { return done == i + 2 && workers.idle() == 1; }));
  }
  CHECK(workers.threads() == 1);
}

TEST_CASE("worker_threads: idle threads end after idle_exit, and come back for new work") {
  WorkerThreads workers({4, 20ms});
  Gate gate;
  for (int i = 0; i < 4; ++i) REQUIRE(workers.submit(gate.task()));
  REQUIRE(eventually([&] { return workers.threads() == 4 && gate.started == 4; }));
  gate.release();
  REQUIRE(eventually([&] { return workers.threads() == 0; }));
  std::atomic<int> done{0};
  REQUIRE(workers.submit([&] { ++done; }));
  REQUIRE(eventually([&] { return done == 1; }));
  CHECK(workers.threads() <= 1);
}

TEST_CASE("worker_threads: a task that throws ends neither its thread nor the others' work") {
  WorkerThreads workers({1, 10min});
  std::atomic<int> done{0};
  REQUIRE(workers.submit([] { throw std::runtime_error("boom"); }));
  REQUIRE(workers.submit([] { throw 42; }));
  REQUIRE(workers.submit([&] { ++done; }));
  REQUIRE(eventually([&] { return done == 1; }));
  CHECK(workers.threads() == 1);
}

TEST_CASE("worker_threads: stop runs what is queued, joins, then refuses") {
  std::atomic<int> done{0};
  WorkerThreads workers({2, 10min});
  Gate gate;
  REQUIRE(workers.submit(gate.task()));
  REQUIRE(workers.submit(gate.task()));
  for (int i = 0; i < 3; ++i) REQUIRE(workers.submit([&] { ++done; }));
  REQUIRE(eventually([&] { return gate.started == 2; }));
  std::thread stopper([&] { workers.stop(); });
  gate.release();
  stopper.join();
  CHECK(done == 3);
  CHECK(workers.threads() == 0);
  CHECK_FALSE(workers.submit([&] { ++done; }));
  workers.stop();  // idempotent
}
