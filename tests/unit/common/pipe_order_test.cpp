#include "common/pipe_order.h"

#include <unistd.h>

#include <doctest/doctest.h>

#include "common/unique_fd.h"

namespace {

using common::Pipe;

void put(const common::UniqueFd& fd, const char* bytes) { REQUIRE(::write(fd.get(), bytes, 3) == 3); }
void take(const common::UniqueFd& fd) {
  char buffer[3];
  REQUIRE(::read(fd.get(), buffer, 3) == 3);
}

}  // namespace

TEST_CASE("pipe order: a correct exchange reads the request before it answers") {
  common::PipeOrderState state;
  state.on_read();
  state.on_answer_write();
  state.on_answer_write();
  CHECK(state.answered());
  CHECK_FALSE(state.answered_before_reading());
  CHECK_FALSE(state.read_after_answering());
}

TEST_CASE("pipe order: once a read is seen, the order of the answer is known") {
  // So the caller that has the answer's first bytes waits for no write event after a read.
  common::PipeOrderState state;
  CHECK_FALSE(state.order_known());
  state.on_read();
  CHECK(state.order_known());
  state.on_answer_write();  // whenever it is queued, it comes after the read
  CHECK_FALSE(state.answered_before_reading());

  common::PipeOrderState first_write;
  first_write.on_answer_write();
  CHECK(first_write.order_known());
  CHECK(first_write.answered_before_reading());

  common::PipeOrderState unsettled;
  unsettled.begin(false);
  unsettled.on_answer_write();  // maybe the previous answer's last write: proves nothing
  CHECK_FALSE(unsettled.order_known());
}

TEST_CASE("pipe order: an answer before any read is a late answer to something else") {
  common::PipeOrderState state;
  state.on_answer_write();
  state.on_read();
  CHECK(state.answered_before_reading());
}

TEST_CASE("pipe order: a read after the answer began takes bytes it had not read") {
  common::PipeOrderState state;
  state.on_read();
  state.on_answer_write();
  CHECK_FALSE(state.read_after_answering());
  state.on_read();
  CHECK(state.read_after_answering());
  SUBCASE("begin() starts the next request afresh") {
    state.begin();
    CHECK_FALSE(state.read_after_answering());
    CHECK_FALSE(state.answered());
  }
}

TEST_CASE("pipe order: lost events are never taken for a clean exchange") {
  common::PipeOrderState state;
  state.on_read();
  state.on_lost();
  CHECK(state.read_after_answering());
}

TEST_CASE("pipe watcher: sees the other end's reads and writes in their order") {
  common::PipeWatcher watcher;
  REQUIRE(watcher.available());  // Linux with inotify: what fastfn runs on
  Pipe in = Pipe::create(), out = Pipe::create();
  auto order = watcher.watch(in.write.get(), out.read.get());
  REQUIRE(order != nullptr);
  order->begin();
  put(in.write, "req");  // our own write to its stdin is not its read
  CHECK(order->now().answered() == false);
  take(in.read);
  put(out.write, "ans");
  auto state = order->after_answer_seen();
  CHECK(state.answered());
  CHECK_FALSE(state.answered_before_reading());
  take(out.read);  // our read of its answer is not its read
  CHECK_FALSE(order->now().read_after_answering());

  SUBCASE("a leftover read after the answer shows at the next begin()") {
    put(in.write, "bod");
    take(in.read);
    CHECK(order->begin().read_after_answering());
    CHECK_FALSE(order->now().read_after_answering());
  }
  SUBCASE("an answer before the next request is read is a late one") {
    order->begin();
    put(in.write, "nxt");
    put(out.write, "old");
    CHECK(order->after_answer_seen().answered_before_reading());
  }
}

TEST_CASE("pipe watcher: two processes' events stay apart") {
  common::PipeWatcher watcher;
  REQUIRE(watcher.available());
  Pipe in1 = Pipe::create(), out1 = Pipe::create(), in2 = Pipe::create(), out2 = Pipe::create();
  auto first = watcher.watch(in1.write.get(), out1.read.get());
  auto second = watcher.watch(in2.write.get(), out2.read.get());
  REQUIRE(first != nullptr);
  REQUIRE(second != nullptr);
  put(out2.write, "xyz");
  CHECK(second->after_answer_seen().answered_before_reading());
  CHECK_FALSE(first->now().answered());
}

TEST_CASE("pipe order: unsettled, a write before any read proves nothing") {
  // The process may still be inside the last write of its previous answer: that write's event
  // can land after begin().
  common::PipeOrderState state;
  state.begin(false);
  state.on_answer_write();
  CHECK_FALSE(state.answered());
  state.on_read();
  state.on_answer_write();
  CHECK(state.answered());
  CHECK_FALSE(state.answered_before_reading());
  CHECK_FALSE(state.read_after_answering());
  state.begin(true);
  state.on_answer_write();
  CHECK(state.answered_before_reading());
}
