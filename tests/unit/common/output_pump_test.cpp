#include "common/output_pump.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

namespace {

using Clock = std::chrono::steady_clock;
constexpr auto kBound = std::chrono::seconds(10);  // generous: only reached when broken

// What a pipe's sink saw, shared with the test (the sink itself belongs to the pump).
struct Seen {
  std::mutex mutex;
  std::string bytes;
  int ends = 0;
  std::string text() {
    std::lock_guard lock(mutex);
    return bytes;
  }
  int ended() {
    std::lock_guard lock(mutex);
    return ends;
  }
};

class Recorder : public common::OutputPump::Sink {
 public:
  explicit Recorder(std::shared_ptr<Seen> seen) : seen_(std::move(seen)) {}
  void on_bytes(std::string_view bytes) override {
    std::lock_guard lock(seen_->mutex);
    seen_->bytes.append(bytes);
  }
  void on_end() override {
    std::lock_guard lock(seen_->mutex);
    ++seen_->ends;
  }

 private:
  std::shared_ptr<Seen> seen_;
};

struct Pipe {
  common::UniqueFd read, write;
  Pipe() {
    int fds[2];
    REQUIRE(::pipe2(fds, O_CLOEXEC) == 0);
    read = common::UniqueFd(fds[0]);
    write = common::UniqueFd(fds[1]);
  }
};

template <class F>
bool eventually(F condition) {
  for (auto deadline = Clock::now() + kBound; Clock::now() < deadline;) {
    if (condition()) return true;
    std::this_thread::yield();
  }
  return condition();
}

}  // namespace

TEST_CASE("output_pump: reads every pipe as it is written, and ends each at its EOF") {
  common::OutputPump pump;
  auto first = std::make_shared<Seen>();
  auto second = std::make_shared<Seen>();
  Pipe a, b;
  pump.add(std::move(a.read), std::make_unique<Recorder>(first));
  pump.add(std::move(b.read), std::make_unique<Recorder>(second));
  REQUIRE(::write(a.write.get(), "one\n", 4) == 4);
  REQUIRE(::write(b.write.get(), "two", 3) == 3);
  CHECK(eventually([&] { return first->text() == "one\n" && second->text() == "two"; }));
  CHECK(first->ended() == 0);
  a.write.reset();
  CHECK(eventually([&] { return first->ended() == 1; }));
  CHECK(second->ended() == 0);
}

TEST_CASE("output_pump: stop() gives each sink what its pipe still holds, then ends it") {
  auto seen = std::make_shared<Seen>();
  Pipe pipe;
  {
    common::OutputPump pump;
    pump.stop();  // nothing reads from now on but stop()'s last look, and add()'s own
    REQUIRE(::write(pipe.write.get(), "last words", 10) == 10);
    pump.add(std::move(pipe.read), std::make_unique<Recorder>(seen));
    CHECK(seen->text() == "last words");
    CHECK(seen->ended() == 1);
  }
  auto held = std::make_shared<Seen>();
  Pipe open;
  {
    common::OutputPump pump;
    pump.add(std::move(open.read), std::make_unique<Recorder>(held));
    REQUIRE(::write(open.write.get(), "x", 1) == 1);
    CHECK(eventually([&] { return held->text() == "x"; }));
    REQUIRE(::write(open.write.get(), "y", 1) == 1);
  }  // the writer is still open: stop() reads what is there without waiting for its end
  CHECK(held->text() == "xy");
  CHECK(held->ended() == 1);
}
