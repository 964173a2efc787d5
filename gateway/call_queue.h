// The queue of asynchronous calls (issue 18), as AsyncCalls and the edge see it: a call from its
// 202 to its result and callback. Two implementations: CallStore (SQLite, one machine) and
// NatsCallQueue (NATS JetStream, shared by several gateways). Both are at-least-once: a call or a
// callback whose gateway died is run again with the same id. Times are unix milliseconds, which
// stay meaningful across a restart and between machines. Implementations are thread-safe.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.h"
#include "protocol/http_message.h"

namespace gateway {

enum class CallState { kQueued, kRunning, kRetrying, kDone, kFailed };
// "queued", "running", "retrying", "done", "failed": the words of GET /_fn/calls/ID.
const char* call_state_name(CallState state) noexcept;
// The state named `word`; failed for a word that names none.
CallState parse_call_state(std::string_view word) noexcept;

// Headers as the queues keep them: one "Name: value\r\n" per header (names and values never hold
// CR or LF), and back.
std::string headers_text(const protocol::Headers& headers);
protocol::Headers parse_headers_text(std::string_view text);

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
  std::optional<int> exit_code;  // the function's exit code, where its answer had X-Fn-Exit-Code
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
  std::optional<int> exit_code;
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

class CallQueue {
 public:
  virtual ~CallQueue() = default;

  // Commits the call, queued and due at once. kBadRequest when its id is already taken,
  // kBodyTooLarge when the queue cannot hold it, kUnavailable when the queue fails.
  virtual common::Status enqueue(const NewCall& call) = 0;
  // The functions with a call that may be due at `now_ms`.
  virtual std::vector<std::string> due_functions(std::int64_t now_ms) = 0;
  // Marks up to `limit` due calls of `function` running (attempts + 1), oldest first, and
  // returns them.
  virtual std::vector<StoredCall> claim(const std::string& function, int limit,
                                        std::int64_t now_ms) = 0;
  // Ends a run. A final state (done, failed) with a callback URL makes the callback pending, due
  // at once.
  virtual common::Status finish(const std::string& id, const CallResult& result) = 0;
  // finish(), then claim(function, 1, now_ms): the next call for the slot the run held, in one
  // transaction where the queue has them.
  struct Finished {
    common::Status recorded;
    std::optional<StoredCall> next;
  };
  virtual Finished finish_and_claim(const std::string& id, const CallResult& result,
                                    const std::string& function, std::int64_t now_ms);
  // Marks up to `limit` due callbacks sending (callback_attempts + 1) and returns their calls.
  virtual std::vector<StoredCall> claim_callbacks(int limit, std::int64_t now_ms) = 0;
  // A callback delivered (sent), abandoned (failed), or to try again at `next_ms` (pending).
  virtual common::Status callback_sent(const std::string& id) = 0;
  virtual common::Status callback_failed(const std::string& id) = 0;
  virtual common::Status callback_retry(const std::string& id, std::int64_t next_ms) = 0;
  // The earliest time a call or a callback may be due; nullopt without one known. The dispatcher
  // looks again within a second in any case.
  virtual std::optional<std::int64_t> next_due_ms() = 0;
  virtual std::optional<StoredCall> get(const std::string& id) = 0;
  virtual std::vector<QueueCounts> counts() = 0;
  // Forgets finished calls whose callback is over (none, sent, failed) that finished before
  // `before_ms`; returns how many.
  virtual int prune(std::int64_t before_ms) = 0;
};

}  // namespace gateway
