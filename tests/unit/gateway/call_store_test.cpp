#include "gateway/call_store.h"

#include <doctest/doctest.h>
#include <sqlite3.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/unit/eventually.h"

namespace {

using gateway::CallResult;
using gateway::CallState;
using gateway::CallStore;
using gateway::NewCall;
using gateway::StoredCall;

NewCall new_call(const std::string& id, const std::string& function, std::int64_t now_ms,
                 const std::string& callback_url = "") {
  NewCall call;
  call.id = id;
  call.function = function;
  call.method = "POST";
  call.target = "/" + function + "?id=" + id;
  call.headers = {{"Content-Type", "text/plain"}};
  call.body = "body of " + id;
  call.callback_url = callback_url;
  call.now_ms = now_ms;
  return call;
}

CallResult ended(CallState state, std::int64_t now_ms, std::string body = "ok") {
  CallResult result;
  result.state = state;
  result.status = state == CallState::kDone ? 200 : 503;
  result.duration_seconds = 0.25;
  result.content_type = "text/plain";
  result.body = std::move(body);
  result.now_ms = now_ms;
  return result;
}

CallResult retry_at(std::int64_t now_ms, std::int64_t next_try_ms) {
  CallResult result = ended(CallState::kRetrying, now_ms, "busy");
  result.error = "the function answered 503";
  result.next_try_ms = next_try_ms;
  return result;
}

std::unique_ptr<CallStore> memory_store(std::size_t result_limit = 1024) {
  auto store = CallStore::open(":memory:", result_limit);
  REQUIRE(store.has_value());
  return std::move(*store);
}

std::vector<std::string> ids(const std::vector<StoredCall>& calls) {
  std::vector<std::string> result;
  for (const auto& call : calls) result.push_back(call.call.id);
  return result;
}

// A database file of this test alone, removed with its WAL files even when a check fails.
class TempDatabase {
 public:
  TempDatabase() {
    static int count = 0;
    path_ = "/tmp/fastfn_call_store_test_" + std::to_string(getpid()) + "_" +
            std::to_string(++count) + ".db";
    remove_files();
  }
  ~TempDatabase() { remove_files(); }
  TempDatabase(const TempDatabase&) = delete;
  TempDatabase& operator=(const TempDatabase&) = delete;

  const std::string& path() const { return path_; }

 private:
  void remove_files() {
    for (const char* suffix : {"", "-wal", "-shm", "-journal"}) {
      std::remove((path_ + suffix).c_str());
    }
  }

  std::string path_;
};

// The bytes of the database's write-ahead log: a commit appends to it (nothing in these tests
// makes a checkpoint start it again).
std::uintmax_t wal_bytes(const TempDatabase& file) {
  return std::filesystem::file_size(file.path() + "-wal");
}

}  // namespace

TEST_SUITE("call_store") {
  TEST_CASE("enqueue then get round-trips every field") {
    auto store = memory_store();
    NewCall call = new_call("id-1", "hello", 1000, "http://example.test/hook");
    call.method = "PUT";
    call.target = "/hello/x?a=1&b=2";
    // Order and repeats matter to a function; a value may hold ": " and may be empty.
    call.headers = {{"X-B", "2"}, {"X-A", "1"}, {"X-B", "3"}, {"X-Data", "a: b"}, {"X-Empty", ""}};
    call.body = std::string("a\0b\x01\xff\0", 6);
    REQUIRE(store->enqueue(call).has_value());

    auto stored = store->get("id-1");
    REQUIRE(stored.has_value());
    CHECK(stored->call.id == "id-1");
    CHECK(stored->call.function == "hello");
    CHECK(stored->call.method == "PUT");
    CHECK(stored->call.target == "/hello/x?a=1&b=2");
    REQUIRE(stored->call.headers.size() == 5);
    for (std::size_t i = 0; i < call.headers.size(); ++i) {
      CHECK(stored->call.headers[i].name == call.headers[i].name);
      CHECK(stored->call.headers[i].value == call.headers[i].value);
    }
    CHECK(stored->call.body.size() == 6);
    CHECK(stored->call.body == call.body);
    CHECK(stored->call.callback_url == "http://example.test/hook");
    CHECK(stored->call.now_ms == 1000);
    CHECK(stored->state == CallState::kQueued);
    CHECK(stored->attempts == 0);
    CHECK(stored->next_try_ms == 1000);
    CHECK(stored->finished_ms == 0);
    CHECK(stored->status == 0);
    CHECK(stored->duration_seconds == 0);
    CHECK(stored->error.empty());
    CHECK(stored->content_type.empty());
    CHECK(stored->result.empty());
    CHECK_FALSE(stored->result_truncated);
    CHECK(stored->callback_state == "none");
    CHECK(stored->callback_attempts == 0);
    CHECK(stored->callback_next_ms == 0);

    CHECK_FALSE(store->get("id-2").has_value());
  }

  TEST_CASE("an empty body and no headers round-trip") {
    auto store = memory_store();
    NewCall call = new_call("bare", "f", 1000);
    call.headers.clear();
    call.body.clear();
    REQUIRE(store->enqueue(call).has_value());
    auto stored = store->get("bare");
    REQUIRE(stored.has_value());
    CHECK(stored->call.headers.empty());
    CHECK(stored->call.body.empty());
  }

  TEST_CASE("a duplicate id is refused") {
    auto store = memory_store();
    REQUIRE(store->enqueue(new_call("same", "f", 1000)).has_value());
    auto again = store->enqueue(new_call("same", "g", 2000));
    REQUIRE_FALSE(again.has_value());
    CHECK(again.error().code == common::Error::Code::kBadRequest);
    CHECK(again.error().context == "call id is already taken");
    // The first call is untouched.
    CHECK(store->get("same")->call.function == "f");
  }

  TEST_CASE("open fails on a path that is no database") {
    auto missing = CallStore::open("/nonexistent-fastfn-dir/calls.db", 1024);
    REQUIRE_FALSE(missing.has_value());
    CHECK(missing.error().code == common::Error::Code::kUnavailable);
    CHECK(missing.error().context.starts_with("the call queue could not be opened: "));

    TempDatabase file;
    std::ofstream(file.path()) << "this is not an sqlite database, just text long enough";
    auto garbage = CallStore::open(file.path(), 1024);
    REQUIRE_FALSE(garbage.has_value());
    CHECK(garbage.error().code == common::Error::Code::kUnavailable);
    CHECK(garbage.error().context.find("not a database") != std::string::npos);
  }

  TEST_CASE("enqueues from many threads at once share commits and fail alone") {
    TempDatabase file;
    auto store = std::move(*CallStore::open(file.path(), 1024));
    constexpr int kThreads = 8, kEach = 40;
    REQUIRE(store->enqueue(new_call("taken", "g", 1)));
    std::atomic<int> taken{0};
    std::vector<std::thread> threads;
    for (int t = 0; t < kThreads; ++t)
      threads.emplace_back([&, t] {
        for (int i = 0; i < kEach; ++i) {
          REQUIRE(store->enqueue(new_call(std::to_string(t) + "-" + std::to_string(i), "f", 1)));
          // Beside each call, one whose id is taken: refused, and refused alone.
          auto again = store->enqueue(new_call("taken", "f", 1));
          if (!again && again.error().code == common::Error::Code::kBadRequest) ++taken;
        }
      });
    for (auto& thread : threads) thread.join();
    CHECK(taken == kThreads * kEach);
    auto queued_of_f = [](CallStore& calls) {
      for (const auto& count : calls.counts())
        if (count.function == "f") return count.queued;
      return 0;
    };
    CHECK(queued_of_f(*store) == kThreads * kEach);
    // Committed: a store opened after this one closed sees every call.
    store.reset();
    auto reopened = std::move(*CallStore::open(file.path(), 1024));
    CHECK(queued_of_f(*reopened) == kThreads * kEach);
  }

  TEST_CASE("finish_and_claim records the end and takes the function's next due call") {
    auto store = memory_store();
    for (const char* id : {"a", "b"}) REQUIRE(store->enqueue(new_call(id, "f", 1000)));
    REQUIRE(store->enqueue(new_call("g1", "g", 1000)));
    REQUIRE(ids(store->claim("f", 1, 1000)) == std::vector<std::string>{"a"});
    auto finished = store->finish_and_claim("a", ended(CallState::kDone, 1100), "f", 1100);
    REQUIRE(finished.recorded);
    CHECK(store->get("a")->state == CallState::kDone);
    REQUIRE(finished.next);
    CHECK(finished.next->call.id == "b");  // not g's call: the slot is f's
    CHECK(finished.next->state == CallState::kRunning);
    CHECK(finished.next->attempts == 1);
    CHECK(finished.next->call.body == "body of b");
    CHECK(store->get("b")->state == CallState::kRunning);
    auto last = store->finish_and_claim("b", ended(CallState::kDone, 1200), "f", 1200);
    REQUIRE(last.recorded);
    CHECK_FALSE(last.next);
    CHECK(store->get("g1")->state == CallState::kQueued);
    auto unknown = store->finish_and_claim("nope", ended(CallState::kDone, 1300), "g", 1300);
    CHECK_FALSE(unknown.recorded);
    CHECK_FALSE(unknown.next);  // nothing committed, nothing claimed
    CHECK(store->get("g1")->state == CallState::kQueued);
  }

  TEST_CASE("the end of a run is committed after finish_and_claim returns, and before it is read") {
    TempDatabase file;
    // The committer waits an hour: only what must commit first does, deterministically.
    auto opened = CallStore::open(file.path(), 1024, std::chrono::hours(1));
    REQUIRE(opened.has_value());
    auto& store = *opened;
    for (const char* id : {"a", "b", "c"})
      REQUIRE(store->enqueue(new_call(id, "f", 1000, "http://127.0.0.1:9/cb")));
    REQUIRE(ids(store->claim("f", 1, 1000)) == std::vector<std::string>{"a"});
    auto written = wal_bytes(file);  // the claim is committed
    auto finished = store->finish_and_claim("a", ended(CallState::kDone, 1100), "f", 1100);
    REQUIRE(finished.recorded);
    REQUIRE(finished.next);
    CHECK(finished.next->call.id == "b");
    CHECK(wal_bytes(file) == written);  // returned before its commit
    // The claim's own transaction can begin only once the end is committed.
    CHECK(ids(store->claim_callbacks(10, 1100)) == std::vector<std::string>{"a"});
    written = wal_bytes(file);
    REQUIRE(store->finish_and_claim("b", ended(CallState::kDone, 1200), "f", 1200).next);
    CHECK(wal_bytes(file) == written);
    CHECK(store->get("b")->state == CallState::kDone);
    CHECK(wal_bytes(file) > written);  // committed before it was read
    REQUIRE(store->finish_and_claim("c", ended(CallState::kDone, 1300), "f", 1300).recorded);
    store.reset();  // committed at the close
    auto reopened = CallStore::open(file.path(), 1024);
    REQUIRE(reopened.has_value());
    CHECK((*reopened)->get("c")->state == CallState::kDone);
    CHECK((*reopened)->get("c")->callback_state == "pending");
  }

  TEST_CASE("the committer commits the end of a run by itself") {
    TempDatabase file;
    auto store = CallStore::open(file.path(), 1024);
    REQUIRE(store.has_value());
    REQUIRE((*store)->enqueue(new_call("a", "f", 1000)));
    REQUIRE((*store)->claim("f", 1, 1000).size() == 1);
    auto written = wal_bytes(file);
    REQUIRE((*store)->finish_and_claim("a", ended(CallState::kDone, 1100), "f", 1100).recorded);
    CHECK(test_support::eventually([&] { return wal_bytes(file) > written; }));
  }

  TEST_CASE("a second store cannot open the file a store has open") {
    TempDatabase file;
    auto first = CallStore::open(file.path(), 1024);
    REQUIRE(first.has_value());
    REQUIRE((*first)->enqueue(new_call("a", "f", 1000)));
    auto second = CallStore::open(file.path(), 1024);
    REQUIRE_FALSE(second.has_value());
    CHECK(second.error().context.find("locked") != std::string::npos);
    first->reset();
    CHECK(CallStore::open(file.path(), 1024).has_value());  // free once the first is closed
  }

  TEST_CASE("a function's exit code is kept with its result; a run without one keeps none") {
    auto store = memory_store();
    REQUIRE(store->enqueue(new_call("coded", "f", 1000)));
    REQUIRE(store->enqueue(new_call("plain", "f", 1000)));
    REQUIRE(store->claim("f", 2, 1000).size() == 2);
    CallResult coded = ended(CallState::kDone, 2000);
    coded.exit_code = 3;
    REQUIRE(store->finish("coded", coded));
    REQUIRE(store->finish("plain", ended(CallState::kDone, 2000)));
    CHECK(store->get("coded")->exit_code == 3);
    CHECK_FALSE(store->get("plain")->exit_code.has_value());
  }

  TEST_CASE("a database made before exit codes were kept opens, and its calls run and keep one") {
    TempDatabase file;
    {  // the table as stop 31's gateway made it, with a call queued
      sqlite3* db = nullptr;
      REQUIRE(sqlite3_open(file.path().c_str(), &db) == SQLITE_OK);
      const char* old_schema =
          "CREATE TABLE calls (seq INTEGER PRIMARY KEY, id TEXT NOT NULL UNIQUE,"
          " function TEXT NOT NULL, method TEXT NOT NULL, target TEXT NOT NULL,"
          " headers TEXT NOT NULL, body BLOB NOT NULL, callback_url TEXT NOT NULL,"
          " created_ms INTEGER NOT NULL, state TEXT NOT NULL, attempts INTEGER NOT NULL DEFAULT 0,"
          " next_try_ms INTEGER NOT NULL, finished_ms INTEGER NOT NULL DEFAULT 0,"
          " status INTEGER NOT NULL DEFAULT 0, duration_seconds REAL NOT NULL DEFAULT 0,"
          " error TEXT NOT NULL DEFAULT '', content_type TEXT NOT NULL DEFAULT '',"
          " result BLOB NOT NULL DEFAULT x'', result_truncated INTEGER NOT NULL DEFAULT 0,"
          " callback_state TEXT NOT NULL, callback_attempts INTEGER NOT NULL DEFAULT 0,"
          " callback_next_ms INTEGER NOT NULL DEFAULT 0);"
          "INSERT INTO calls (id, function, method, target, headers, body, callback_url,"
          " created_ms, state, next_try_ms, callback_state)"
          " VALUES ('old', 'f', 'POST', '/f', '', x'', '', 1000, 'queued', 1000, 'none');";
      CHECK(sqlite3_exec(db, old_schema, nullptr, nullptr, nullptr) == SQLITE_OK);
      sqlite3_close(db);
    }
    auto store = CallStore::open(file.path(), 1024);
    REQUIRE(store.has_value());
    CHECK_FALSE((*store)->get("old")->exit_code.has_value());
    REQUIRE(ids((*store)->claim("f", 1, 1000)) == std::vector<std::string>{"old"});
    CallResult result = ended(CallState::kDone, 2000);
    result.exit_code = 0;
    REQUIRE((*store)->finish("old", result));
    CHECK((*store)->get("old")->exit_code == 0);
    store->reset();
    auto reopened = CallStore::open(file.path(), 1024);  // the column is added once
    REQUIRE(reopened.has_value());
    CHECK((*reopened)->get("old")->exit_code == 0);
  }

  TEST_CASE("claim respects the limit and FIFO order") {
    auto store = memory_store();
    for (const char* id : {"a", "b", "c"}) REQUIRE(store->enqueue(new_call(id, "f", 1000)));
    REQUIRE(store->enqueue(new_call("other", "g", 1000)));

    auto first = store->claim("f", 2, 1000);
    CHECK(ids(first) == std::vector<std::string>{"a", "b"});
    for (const auto& call : first) {
      CHECK(call.state == CallState::kRunning);
      CHECK(call.attempts == 1);
      CHECK(call.call.body == "body of " + call.call.id);
    }
    // The claim is in the database, not only in what it returned.
    CHECK(store->get("a")->state == CallState::kRunning);
    CHECK(store->get("a")->attempts == 1);
    CHECK(store->get("c")->state == CallState::kQueued);

    CHECK(ids(store->claim("f", 2, 1000)) == std::vector<std::string>{"c"});
    CHECK(store->claim("f", 2, 1000).empty());
    CHECK(store->claim("f", 0, 1000).empty());
    CHECK(store->get("other")->state == CallState::kQueued);
  }

  TEST_CASE("claim takes the earliest due time before the order of arrival") {
    auto store = memory_store();
    REQUIRE(store->enqueue(new_call("late", "f", 2000)));
    REQUIRE(store->enqueue(new_call("early", "f", 1000)));
    // Both are due: the one due first goes first although it came second.
    CHECK(ids(store->claim("f", 1, 2000)) == std::vector<std::string>{"early"});
    CHECK(ids(store->claim("f", 5, 2000)) == std::vector<std::string>{"late"});
  }

  TEST_CASE("calls not yet due are not seen until they are due") {
    auto store = memory_store();
    CHECK_FALSE(store->next_due_ms().has_value());
    REQUIRE(store->enqueue(new_call("r", "f", 1000)));
    REQUIRE(store->enqueue(new_call("later", "g", 3000)));
    CHECK(store->due_functions(1000) == std::vector<std::string>{"f"});
    CHECK(store->next_due_ms() == std::optional<std::int64_t>(1000));

    REQUIRE(store->claim("f", 1, 1000).size() == 1);
    // A running call is nobody's due time.
    CHECK(store->next_due_ms() == std::optional<std::int64_t>(3000));
    REQUIRE(store->finish("r", retry_at(1100, 5000)));
    CHECK(store->get("r")->state == CallState::kRetrying);

    CHECK(store->due_functions(2999).empty());
    CHECK(store->due_functions(3000) == std::vector<std::string>{"g"});
    REQUIRE(store->claim("g", 1, 3000).size() == 1);
    CHECK(store->next_due_ms() == std::optional<std::int64_t>(5000));
    CHECK(store->due_functions(4999).empty());
    CHECK(store->claim("f", 5, 4999).empty());
    CHECK(store->due_functions(5000) == std::vector<std::string>{"f"});
  }

  TEST_CASE("a retried call is due again at its next try") {
    auto store = memory_store();
    REQUIRE(store->enqueue(new_call("r", "f", 1000, "http://example.test/hook")));
    REQUIRE(store->claim("f", 1, 1000).size() == 1);
    REQUIRE(store->finish("r", retry_at(1200, 4000)));

    auto retrying = store->get("r");
    REQUIRE(retrying.has_value());
    CHECK(retrying->state == CallState::kRetrying);
    CHECK(retrying->next_try_ms == 4000);
    CHECK(retrying->status == 503);
    CHECK(retrying->error == "the function answered 503");
    CHECK(retrying->finished_ms == 0);
    // Not final: the callback waits for the last run.
    CHECK(retrying->callback_state == "none");
    CHECK(store->claim_callbacks(10, 9000).empty());

    CHECK(store->claim("f", 1, 3999).empty());
    auto again = store->claim("f", 1, 4000);
    REQUIRE(again.size() == 1);
    CHECK(again[0].call.id == "r");
    CHECK(again[0].attempts == 2);
    CHECK(again[0].state == CallState::kRunning);
    CHECK(store->get("r")->attempts == 2);
  }

  TEST_CASE("a final finish makes the callback pending until it is sent") {
    auto store = memory_store();
    REQUIRE(store->enqueue(new_call("cb", "f", 1000, "http://example.test/hook")));
    REQUIRE(store->enqueue(new_call("plain", "f", 1000)));
    REQUIRE(store->claim("f", 2, 1000).size() == 2);
    CHECK(store->claim_callbacks(10, 1000).empty());

    CallResult result = ended(CallState::kDone, 2000, "the result");
    result.content_type = "application/json";
    REQUIRE(store->finish("cb", result));
    REQUIRE(store->finish("plain", ended(CallState::kFailed, 2000)));

    auto done = store->get("cb");
    REQUIRE(done.has_value());
    CHECK(done->state == CallState::kDone);
    CHECK(done->status == 200);
    CHECK(done->duration_seconds == 0.25);
    CHECK(done->content_type == "application/json");
    CHECK(done->result == "the result");
    CHECK(done->finished_ms == 2000);
    CHECK(done->callback_state == "pending");
    CHECK(done->callback_next_ms == 2000);
    CHECK(store->get("plain")->state == CallState::kFailed);
    CHECK(store->get("plain")->callback_state == "none");
    CHECK(store->next_due_ms() == std::optional<std::int64_t>(2000));

    CHECK(store->claim_callbacks(10, 1999).empty());
    auto sending = store->claim_callbacks(10, 2000);
    REQUIRE(sending.size() == 1);
    CHECK(sending[0].call.id == "cb");
    CHECK(sending[0].callback_state == "sending");
    CHECK(sending[0].callback_attempts == 1);
    CHECK(sending[0].result == "the result");
    CHECK(store->get("cb")->callback_state == "sending");
    CHECK(store->claim_callbacks(10, 2000).empty());

    REQUIRE(store->callback_retry("cb", 9000));
    CHECK(store->get("cb")->callback_state == "pending");
    CHECK(store->next_due_ms() == std::optional<std::int64_t>(9000));
    CHECK(store->claim_callbacks(10, 8999).empty());
    auto retried = store->claim_callbacks(10, 9000);
    REQUIRE(retried.size() == 1);
    CHECK(retried[0].callback_attempts == 2);
    CHECK(store->get("cb")->callback_attempts == 2);

    REQUIRE(store->callback_sent("cb"));
    CHECK(store->get("cb")->callback_state == "sent");
    CHECK_FALSE(store->next_due_ms().has_value());
    CHECK(store->claim_callbacks(10, 100000).empty());
  }

  TEST_CASE("an abandoned callback is failed and never claimed again") {
    auto store = memory_store();
    REQUIRE(store->enqueue(new_call("cb", "f", 1000, "http://example.test/hook")));
    REQUIRE(store->finish("cb", ended(CallState::kFailed, 1500)));
    REQUIRE(store->claim_callbacks(1, 1500).size() == 1);
    REQUIRE(store->callback_failed("cb"));
    CHECK(store->get("cb")->callback_state == "failed");
    CHECK(store->claim_callbacks(10, 100000).empty());
  }

  TEST_CASE("an unknown id is not found") {
    auto store = memory_store();
    auto finished = store->finish("nope", ended(CallState::kDone, 1000));
    REQUIRE_FALSE(finished.has_value());
    CHECK(finished.error().code == common::Error::Code::kNotFound);
    CHECK(store->callback_sent("nope").error().code == common::Error::Code::kNotFound);
    CHECK(store->callback_failed("nope").error().code == common::Error::Code::kNotFound);
    CHECK(store->callback_retry("nope", 5).error().code == common::Error::Code::kNotFound);
  }

  TEST_CASE("a result beyond the limit is cut and flagged") {
    auto store = memory_store(4);
    for (const char* id : {"long", "exact"}) REQUIRE(store->enqueue(new_call(id, "f", 1000)));
    REQUIRE(store->finish("long", ended(CallState::kDone, 2000, std::string("ab\0cdefgh", 9))));
    REQUIRE(store->finish("exact", ended(CallState::kDone, 2000, "wxyz")));

    auto cut = store->get("long");
    REQUIRE(cut.has_value());
    CHECK(cut->result == std::string("ab\0c", 4));
    CHECK(cut->result_truncated);
    auto whole = store->get("exact");
    REQUIRE(whole.has_value());
    CHECK(whole->result == "wxyz");
    CHECK_FALSE(whole->result_truncated);
  }

  TEST_CASE("counts per function") {
    auto store = memory_store();
    REQUIRE(store->enqueue(new_call("f-run", "f", 500)));
    REQUIRE(store->claim("f", 1, 500).size() == 1);
    REQUIRE(store->enqueue(new_call("f-1", "f", 1000)));
    REQUIRE(store->enqueue(new_call("f-2", "f", 1500)));
    REQUIRE(store->enqueue(new_call("g-retry", "g", 700)));
    REQUIRE(store->claim("g", 1, 700).size() == 1);
    REQUIRE(store->finish("g-retry", retry_at(800, 9000)));
    REQUIRE(store->enqueue(new_call("h-done", "h", 600)));
    REQUIRE(store->finish("h-done", ended(CallState::kDone, 900)));
    REQUIRE(store->enqueue(new_call("k-run", "k", 300)));
    REQUIRE(store->claim("k", 1, 300).size() == 1);

    auto counts = store->counts();
    REQUIRE(counts.size() == 3);
    CHECK(counts[0].function == "f");
    CHECK(counts[0].queued == 2);
    CHECK(counts[0].running == 1);
    CHECK(counts[0].oldest_queued_ms == 1000);
    CHECK(counts[1].function == "g");
    CHECK(counts[1].queued == 1);
    CHECK(counts[1].running == 0);
    CHECK(counts[1].oldest_queued_ms == 700);
    CHECK(counts[2].function == "k");
    CHECK(counts[2].queued == 0);
    CHECK(counts[2].running == 1);
    CHECK(counts[2].oldest_queued_ms == 0);
  }

  TEST_CASE("prune removes only finished calls whose callback is over") {
    auto store = memory_store();
    const std::string hook = "http://example.test/hook";
    auto finished = [&](const std::string& id, CallState state, std::int64_t at,
                        const std::string& url) {
      REQUIRE(store->enqueue(new_call(id, "f", 100, url)));
      REQUIRE(store->finish(id, ended(state, at)));
    };
    finished("done", CallState::kDone, 1000, "");
    finished("failed", CallState::kFailed, 1000, "");
    finished("at-limit", CallState::kDone, 2000, "");
    finished("recent", CallState::kDone, 3000, "");
    finished("pending", CallState::kDone, 1000, hook);
    finished("sending", CallState::kDone, 1000, hook);
    finished("sent", CallState::kDone, 1000, hook);
    finished("gave-up", CallState::kDone, 1000, hook);
    REQUIRE(store->callback_sent("sent"));
    REQUIRE(store->callback_failed("gave-up"));
    // Claimed callbacks come in order of due time, then arrival: "pending" first.
    auto sending = store->claim_callbacks(2, 1000);
    REQUIRE(ids(sending) == std::vector<std::string>{"pending", "sending"});
    REQUIRE(store->callback_retry("pending", 5000));
    finished("retrying", CallState::kRetrying, 1000, "");
    REQUIRE(store->enqueue(new_call("queued", "f", 100)));
    REQUIRE(store->enqueue(new_call("running", "g", 100)));
    REQUIRE(store->claim("g", 1, 100).size() == 1);

    CHECK(store->prune(2000) == 4);
    for (const char* gone : {"done", "failed", "sent", "gave-up"}) {
      CHECK_MESSAGE(!store->get(gone).has_value(), gone);
    }
    for (const char* kept :
         {"at-limit", "recent", "pending", "sending", "retrying", "queued", "running"}) {
      CHECK_MESSAGE(store->get(kept).has_value(), kept);
    }
    CHECK(store->prune(2000) == 0);
  }

  TEST_CASE("a reopened store runs again what was running") {
    TempDatabase file;
    {
      auto opened = CallStore::open(file.path(), 1024);
      REQUIRE(opened.has_value());
      auto& store = *opened;
      REQUIRE(store->enqueue(new_call("one", "f", 1000)));
      REQUIRE(store->enqueue(new_call("two", "f", 1000)));
      REQUIRE(store->enqueue(new_call("three", "f", 1000, "http://example.test/hook")));
      // The journal is a write-ahead log.
      CHECK(std::filesystem::exists(file.path() + "-wal"));
      REQUIRE(ids(store->claim("f", 2, 1000)) == std::vector<std::string>{"one", "two"});
      REQUIRE(store->claim("f", 1, 1000).size() == 1);
      REQUIRE(store->finish("three", ended(CallState::kDone, 1500)));
      REQUIRE(store->claim_callbacks(10, 1500).size() == 1);
      CHECK(store->get("three")->callback_state == "sending");
    }

    auto reopened = CallStore::open(file.path(), 1024);
    REQUIRE(reopened.has_value());
    auto& store = *reopened;
    for (const char* id : {"one", "two", "three"}) REQUIRE_MESSAGE(store->get(id).has_value(), id);
    CHECK(store->get("one")->state == CallState::kQueued);
    CHECK(store->get("two")->state == CallState::kQueued);
    CHECK(store->get("three")->state == CallState::kDone);
    CHECK(store->get("three")->callback_state == "pending");
    CHECK(store->due_functions(1000) == std::vector<std::string>{"f"});
    // The calls are due at their claim time, before the callback's.
    CHECK(store->next_due_ms() == std::optional<std::int64_t>(1000));

    auto again = store->claim("f", 10, 2000);
    REQUIRE(ids(again) == std::vector<std::string>{"one", "two"});
    CHECK(again[0].attempts == 2);
    CHECK(again[1].attempts == 2);
    CHECK(store->get("one")->attempts == 2);
    auto callbacks = store->claim_callbacks(10, 2000);
    REQUIRE(callbacks.size() == 1);
    CHECK(callbacks[0].call.id == "three");
    CHECK(callbacks[0].callback_attempts == 2);
  }

  TEST_CASE("call_state_name gives the words of the API") {
    CHECK(std::string(gateway::call_state_name(CallState::kQueued)) == "queued");
    CHECK(std::string(gateway::call_state_name(CallState::kRunning)) == "running");
    CHECK(std::string(gateway::call_state_name(CallState::kRetrying)) == "retrying");
    CHECK(std::string(gateway::call_state_name(CallState::kDone)) == "done");
    CHECK(std::string(gateway::call_state_name(CallState::kFailed)) == "failed");
  }
}
