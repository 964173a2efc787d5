#include "gateway/async_calls.h"

#include <doctest/doctest.h>

#include <atomic>
#include <condition_variable>
#include <mutex>
#include <set>
#include <thread>

#include "gateway/call_store.h"
#include "tests/unit/eventually.h"

using gateway::AsyncCalls;
using gateway::AsyncConfig;
using gateway::CallState;
using gateway::StoredCall;
using test_support::eventually;
using namespace std::chrono_literals;

namespace {

common::HttpReply reply(int status, std::string body = "ok") {
  return common::HttpReply{status, {{"Content-Type", "text/plain"}}, std::move(body), false};
}

StoredCall stored(int attempts) {
  StoredCall call;
  call.call.id = "c1";
  call.call.function = "f";
  call.attempts = attempts;
  return call;
}

gateway::NewCall new_call(const std::string& id, const std::string& function,
                          std::string callback = "") {
  gateway::NewCall call;
  call.id = id;
  call.function = function;
  call.method = "POST";
  call.target = "/" + function;
  call.callback_url = std::move(callback);
  call.now_ms = 1000;
  return call;
}

// A run that holds each call until the test opens the gate, counting those held at once.
class HeldRuns {
 public:
  common::Result<common::HttpReply> run(const StoredCall& call) {
    std::unique_lock lock(mutex_);
    ++held_;
    most_ = std::max(most_, held_);
    started_.insert(call.call.id);
    changed_.notify_all();
    changed_.wait(lock, [this] { return open_; });
    --held_;
    return reply(200);
  }
  void open() {
    std::lock_guard lock(mutex_);
    open_ = true;
    changed_.notify_all();
  }
  int held() {
    std::lock_guard lock(mutex_);
    return held_;
  }
  int most() {
    std::lock_guard lock(mutex_);
    return most_;
  }
  std::set<std::string> started() {
    std::lock_guard lock(mutex_);
    return started_;
  }

 private:
  std::mutex mutex_;
  std::condition_variable changed_;
  bool open_ = false;
  int held_ = 0;
  int most_ = 0;
  std::set<std::string> started_;
};

struct Fixture {
  Fixture() : store(std::move(*gateway::CallStore::open(":memory:", 1 << 20))) {}
  AsyncCalls::Hooks hooks(AsyncCalls::Run run, AsyncCalls::Deliver deliver = nullptr) {
    return {std::move(run),
            deliver ? std::move(deliver)
                    : [](const std::string&, const protocol::Headers&, const std::string&)
                          -> common::Result<common::HttpReply> { return reply(200); },
            [this](const std::string&) { return config; },
            [this] { return now.load(); }};
  }
  CallState state_of(const std::string& id) { return store->get(id)->state; }

  std::unique_ptr<gateway::CallStore> store;
  AsyncConfig config;
  std::atomic<std::int64_t> now{1000};
};

// Runs that `held` holds, but the calls of function "other", done at once.
AsyncCalls::Run held_but_other(HeldRuns& held) {
  return [&held](const StoredCall& call) {
    if (call.call.function == "other") return common::Result<common::HttpReply>(reply(200));
    return held.run(call);
  };
}

// Whether calls PREFIX0 to PREFIX(count - 1) are done.
bool all_done(Fixture& f, const std::string& prefix, int count) {
  for (int i = 0; i < count; ++i)
    if (f.state_of(prefix + std::to_string(i)) != CallState::kDone) return false;
  return true;
}

}  // namespace

TEST_CASE("async_calls: the retry wait doubles from the initial wait up to the longest") {
  AsyncConfig config;
  config.initial_retry_wait = 100ms;
  config.max_retry_wait = 700ms;
  CHECK(gateway::retry_wait(config, 1) == 100ms);
  CHECK(gateway::retry_wait(config, 2) == 200ms);
  CHECK(gateway::retry_wait(config, 3) == 400ms);
  CHECK(gateway::retry_wait(config, 4) == 700ms);
  CHECK(gateway::retry_wait(config, 60) == 700ms);
}

TEST_CASE("async_calls: 429, 502, 503, 504 and no answer are retried until the last attempt") {
  AsyncConfig config;
  config.initial_retry_wait = 100ms;
  config.max_retry_attempts = 3;
  for (int status : {429, 502, 503, 504}) {
    CHECK(gateway::is_retried_status(status));
    auto again = gateway::result_of_run(stored(1), reply(status), config, 0.5, 5000);
    CHECK(again.state == CallState::kRetrying);
    CHECK(again.next_try_ms == 5100);
    CHECK(again.status == status);
    auto last = gateway::result_of_run(stored(3), reply(status), config, 0.5, 5000);
    CHECK(last.state == CallState::kFailed);
    CHECK(last.error == "the function answered " + std::to_string(status));
  }
  auto none = gateway::result_of_run(
      stored(2), common::fail(common::Error::Code::kBadGateway, "the edge broke"), config, 0, 5000);
  CHECK(none.state == CallState::kRetrying);
  CHECK(none.next_try_ms == 5200);
  CHECK(none.status == 0);
  CHECK(none.error == "the edge broke");
  for (int status : {200, 201, 400, 404, 500}) {
    CHECK_FALSE(gateway::is_retried_status(status));
    auto done = gateway::result_of_run(stored(1), reply(status, "body"), config, 0.25, 5000);
    CHECK(done.state == CallState::kDone);
    CHECK(done.body == "body");
    CHECK(done.content_type == "text/plain");
    CHECK(done.duration_seconds == 0.25);
  }
}

TEST_CASE("async_calls: a callback carries OpenFaaS's headers; no answer is reported as 502") {
  StoredCall call = stored(1);
  call.status = 201;
  call.duration_seconds = 0.5;
  call.content_type = "application/json";
  auto headers = gateway::callback_headers(call);
  CHECK(protocol::header_value(headers, "X-Call-Id") == "c1");
  CHECK(protocol::header_value(headers, "X-Function-Name") == "f");
  CHECK(protocol::header_value(headers, "X-Function-Status") == "201");
  CHECK(protocol::header_value(headers, "X-Duration-Seconds") == "0.500000");
  CHECK(protocol::header_value(headers, "Content-Type") == "application/json");
  call.status = 0;
  call.error = "no socket is up";
  CHECK(protocol::header_value(gateway::callback_headers(call), "X-Function-Status") == "502");
  CHECK(protocol::header_value(gateway::callback_headers(call), "X-Call-Error") ==
        "no socket is up");
}

TEST_CASE("async_calls: a run keeps the exit code its answer reports, in a header or trailer") {
  AsyncConfig config;
  auto coded = reply(500, "no such file");
  coded.headers.push_back({"X-Fn-Exit-Code", "2"});
  auto result = gateway::result_of_run(stored(1), coded, config, 0.1, 5000);
  CHECK(result.exit_code == 2);
  CHECK(result.state == CallState::kDone);
  for (const char* garbage : {"", "-1", "256", "2x", " 2"}) {
    auto odd = reply(200);
    odd.headers.push_back({"X-Fn-Exit-Code", garbage});
    CHECK_FALSE(gateway::result_of_run(stored(1), odd, config, 0.1, 5000).exit_code.has_value());
  }
  CHECK_FALSE(gateway::result_of_run(stored(1), reply(200), config, 0.1, 5000).exit_code);
  StoredCall call = stored(1);
  call.status = 500;
  CHECK(protocol::find_header(gateway::callback_headers(call), "X-Fn-Exit-Code") == nullptr);
  call.exit_code = 2;
  CHECK(protocol::header_value(gateway::callback_headers(call), "X-Fn-Exit-Code") == "2");
}

TEST_CASE("async_calls: no more than max_concurrency calls of a function run at once") {
  Fixture f;
  f.config.max_concurrency = 2;
  HeldRuns held;
  AsyncCalls calls(*f.store, f.hooks(held_but_other(held)));
  for (int i = 0; i < 6; ++i) REQUIRE(f.store->enqueue(new_call("f" + std::to_string(i), "f")));
  calls.start();
  REQUIRE(eventually([&] { return held.held() == 2; }));
  // A call of another function done after them: the dispatcher has looked again meanwhile.
  REQUIRE(f.store->enqueue(new_call("o", "other")));
  calls.poke();
  REQUIRE(eventually([&] { return f.state_of("o") == CallState::kDone; }));
  CHECK(held.started() == std::set<std::string>{"f0", "f1"});  // the oldest first
  // "o" is recorded done a moment before its slot is given back.
  CHECK(eventually([&] { return calls.running() == 2; }));
  held.open();
  REQUIRE(eventually([&] { return all_done(f, "f", 6); }));
  CHECK(held.most() == 2);
  CHECK(calls.counters().completed.at(200) == 7);
}

TEST_CASE("async_calls: calls queued while a function is at its limit run as its runs end") {
  Fixture f;
  f.config.max_concurrency = 2;
  HeldRuns held;
  AsyncCalls calls(*f.store, f.hooks(held_but_other(held)));
  calls.start();
  for (int i = 0; i < 2; ++i) {
    REQUIRE(f.store->enqueue(new_call("f" + std::to_string(i), "f")));
    calls.queued("f");
  }
  REQUIRE(eventually([&] { return held.held() == 2; }));
  // At its limit: these wake no dispatcher, and are left to the runs of f that end.
  for (int i = 2; i < 6; ++i) {
    REQUIRE(f.store->enqueue(new_call("f" + std::to_string(i), "f")));
    calls.queued("f");
  }
  REQUIRE(f.store->enqueue(new_call("o", "other")));  // below its limit: run at once
  calls.queued("other");
  REQUIRE(eventually([&] { return f.state_of("o") == CallState::kDone; }));
  CHECK(f.state_of("f5") == CallState::kQueued);
  held.open();
  REQUIRE(eventually([&] { return all_done(f, "f", 6); }));
  CHECK(held.most() == 2);
}

TEST_CASE("async_calls: a backlog runs on one thread, call after call") {
  Fixture f;
  f.config.max_concurrency = 1;
  int runs = 0;
  std::set<std::thread::id> threads;
  AsyncCalls calls(*f.store, f.hooks([&](const StoredCall&) {
    threads.insert(std::this_thread::get_id());
    ++runs;  // max_concurrency 1: one run at a time, no race on these counts
    return common::Result<common::HttpReply>(reply(200));
  }));
  for (int i = 0; i < 10; ++i) REQUIRE(f.store->enqueue(new_call("c" + std::to_string(i), "f")));
  calls.start();
  REQUIRE(eventually([&] { return f.state_of("c9") == CallState::kDone; }));
  calls.stop();
  CHECK(runs == 10);
  // Queued before the first ended: one claim, then each run's end takes the next on its thread.
  CHECK(threads.size() == 1);
}

TEST_CASE("async_calls: a retried call runs again once its time has come") {
  Fixture f;
  f.config.initial_retry_wait = 60s;  // far beyond the test: only the fake clock makes it due
  std::atomic<int> runs{0};
  AsyncCalls calls(*f.store, f.hooks([&](const StoredCall&) {
    return common::Result<common::HttpReply>(reply(++runs == 1 ? 503 : 200));
  }));
  REQUIRE(f.store->enqueue(new_call("r", "f")));
  calls.start();
  REQUIRE(eventually([&] { return f.state_of("r") == CallState::kRetrying; }));
  CHECK(f.store->get("r")->next_try_ms == 1000 + 60'000);
  f.now = 1000 + 60'000;
  calls.poke();
  REQUIRE(eventually([&] { return f.state_of("r") == CallState::kDone; }));
  CHECK(runs == 2);
  CHECK(f.store->get("r")->attempts == 2);
  CHECK(calls.counters().retries == 1);
}

TEST_CASE("async_calls: a failing callback is retried, then given up after the last attempt") {
  Fixture f;
  f.config.initial_retry_wait = 1ms;
  f.config.max_callback_attempts = 3;
  std::atomic<int> deliveries{0};
  std::string posted;
  std::mutex posted_mutex;
  AsyncCalls calls(
      *f.store,
      f.hooks([](const StoredCall&) { return common::Result<common::HttpReply>(reply(200, "r")); },
              [&](const std::string& url, const protocol::Headers& headers,
                  const std::string& body) -> common::Result<common::HttpReply> {
                std::lock_guard lock(posted_mutex);
                posted = url + " " + std::string(protocol::header_value(headers, "X-Call-Id")) +
                         " " + body;
                if (url.ends_with("/fails")) ++deliveries;
                if (url.ends_with("/fails")) return reply(500);
                return reply(204);
              }));
  REQUIRE(f.store->enqueue(new_call("good", "f", "http://h/ok")));
  calls.start();
  REQUIRE(eventually([&] { return f.store->get("good")->callback_state == "sent"; }));
  {
    std::lock_guard lock(posted_mutex);
    CHECK(posted == "http://h/ok good r");
  }
  REQUIRE(f.store->enqueue(new_call("bad", "f", "http://h/fails")));
  calls.poke();
  // Each retry is 1 ms of the fake clock away: the test moves it on until the receiver gave up.
  REQUIRE(eventually([&] {
    f.now += 1000;
    calls.poke();
    return f.store->get("bad")->callback_state == "failed";
  }));
  CHECK(deliveries == 3);
  CHECK(f.store->get("bad")->callback_attempts == 3);
  CHECK(calls.counters().callback_failures == 3);
  CHECK(calls.counters().callbacks_sent == 1);
}

TEST_CASE("async_calls: a run cut by a stop is left running in the store, to run again") {
  Fixture f;
  HeldRuns held;
  std::atomic<bool> cut{false};
  AsyncCalls calls(*f.store, f.hooks([&](const StoredCall& call) {
    held.run(call);
    cut = true;
    return common::Result<common::HttpReply>(
        common::fail(common::Error::Code::kBadGateway, "the connection closed"));
  }));
  REQUIRE(f.store->enqueue(new_call("s", "f")));
  calls.start();
  REQUIRE(eventually([&] { return held.held() == 1; }));
  calls.stop_claiming();
  held.open();
  calls.stop();
  CHECK(cut);
  CHECK(f.state_of("s") == CallState::kRunning);
  CHECK(calls.counters().completed.empty());
}

TEST_CASE("async_calls: a finished call is forgotten a day after it finished, not before") {
  Fixture f;
  AsyncCalls calls(*f.store, f.hooks([](const StoredCall&) {
    return common::Result<common::HttpReply>(reply(200));
  }));
  REQUIRE(f.store->enqueue(new_call("old", "f")));
  calls.start();
  REQUIRE(eventually([&] { return f.state_of("old") == CallState::kDone; }));
  // A later call run after a day less a minute: the dispatcher pruned meanwhile, and kept it.
  f.now = 1000 + gateway::kKeepFinishedMs - 60'000;
  REQUIRE(f.store->enqueue(new_call("later", "f")));
  calls.poke();
  REQUIRE(eventually([&] { return f.state_of("later") == CallState::kDone; }));
  CHECK(f.store->get("old"));
  f.now = 1000 + gateway::kKeepFinishedMs + 60'000;
  REQUIRE(eventually([&] {
    calls.poke();
    return !f.store->get("old");
  }));
  CHECK(f.store->get("later"));  // finished a minute before: kept
}
