// The durable queue of asynchronous calls (issue 18): one SQLite database in WAL mode, one row per
// call from its 202 to its result and callback. A call is committed before its 202 is sent, and a
// call or callback that was running when the gateway died is run again at the next open
// (at-least-once, with the same id). Times are unix milliseconds, which stay meaningful across a
// restart. Thread-safe: one connection behind one mutex.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <vector>

#include "common/error.h"
#include "protocol/http_message.h"

struct sqlite3;

namespace gateway {

enum class CallState { kQueued, kRunning, kRetrying, kDone, kFailed };
// "queued", "running", "retrying", "done", "failed": the words of GET /_fn/calls/ID.
const char* call_state_name(CallState state) noexcept;

// What the function is to receive, as the client sent it to /async-function/.
struct NewCall {
  std::string id;
  std::string function;
  std::string method;
  std::string target;  // path and query the function receives
  protocol::Headers headers;
  std::string body;
  std::string callback_url;  // "" without X-Callback-Url
  std::int64_t now_ms = 0;
};

struct StoredCall {
  NewCall call;  // call.now_ms is when it was queued
  CallState state = CallState::kQueued;
  int attempts = 0;              // runs begun
  std::int64_t next_try_ms = 0;  // queued or retrying: when it may run
  std::int64_t finished_ms = 0;  // done or failed
  int status = 0;                // the function's status (the last one while retrying); 0: none
  double duration_seconds = 0;   // of the last run
  std::string error;             // why it failed or is retried; "" otherwise
  std::string content_type;      // the result's
  std::string result;            // its body, at most the store's result limit
  bool result_truncated = false;
  // The callback: none (no URL), pending (due at callback_next_ms), sending, sent, or failed.
  std::string callback_state;
  int callback_attempts = 0;
  std::int64_t callback_next_ms = 0;
};

// How a run ended, for finish().
struct CallResult {
  CallState state = CallState::kDone;  // kDone, kFailed, or kRetrying (then next_try_ms is set)
  int status = 0;
  double duration_seconds = 0;
  std::string error;
  std::string content_type;
  std::string body;  // cut to the result limit by the store
  std::int64_t now_ms = 0;
  std::int64_t next_try_ms = 0;
};

// The counts of /_fn/metrics.
struct QueueCounts {
  std::string function;
  int queued = 0;  // queued and retrying
  int running = 0;
  std::int64_t oldest_queued_ms = 0;  // created time of its oldest queued call; 0 without one
};

class CallStore {
 public:
  // Opens or creates the database at `path` (":memory:" for tests), in WAL mode with
  // synchronous=NORMAL, and makes every call and callback left running by a gateway that died
  // due again. `result_limit`: the bytes of a result body kept.
  static common::Result<std::unique_ptr<CallStore>> open(const std::string& path,
                                                         std::size_t result_limit);
  ~CallStore();
  CallStore(const CallStore&) = delete;
  CallStore& operator=(const CallStore&) = delete;

  // Commits the call, queued and due at once. kBadRequest when its id is already taken,
  // kUnavailable when the database fails.
  common::Status enqueue(const NewCall& call);
  // The functions with a call due at `now_ms` (queued, or retrying with next_try_ms passed).
  std::vector<std::string> due_functions(std::int64_t now_ms);
  // Marks up to `limit` due calls of `function` running (attempts + 1), oldest first, and
  // returns them.
  std::vector<StoredCall> claim(const std::string& function, int limit, std::int64_t now_ms);
  // Ends a run. A final state (done, failed) with a callback URL makes the callback pending, due
  // at once.
  common::Status finish(const std::string& id, const CallResult& result);
  // Marks up to `limit` due callbacks sending (callback_attempts + 1) and returns their calls.
  std::vector<StoredCall> claim_callbacks(int limit, std::int64_t now_ms);
  // A callback delivered (sent), abandoned (failed), or to try again at `next_ms` (pending).
  common::Status callback_sent(const std::string& id);
  common::Status callback_failed(const std::string& id);
  common::Status callback_retry(const std::string& id, std::int64_t next_ms);
  // The earliest time a queued, retrying call or a pending callback is due; nullopt without one.
  std::optional<std::int64_t> next_due_ms();
  std::optional<StoredCall> get(const std::string& id);
  std::vector<QueueCounts> counts();
  // Deletes finished calls whose callback is over (none, sent, failed) that finished before
  // `before_ms`; returns how many.
  int prune(std::int64_t before_ms);

 private:
  CallStore(sqlite3* db, std::size_t result_limit) : db_(db), result_limit_(result_limit) {}

  std::mutex mutex_;
  sqlite3* db_;
  std::size_t result_limit_;
};

}  // namespace gateway
