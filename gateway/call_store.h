// The embedded queue of asynchronous calls (issue 18): one SQLite database in WAL mode, one row per
// call from its 202 to its result and callback. A call is committed before its 202 is sent, and a
// call or callback that was running when the gateway died is run again at the next open
// (at-least-once, with the same id). Thread-safe: one connection behind one mutex.
#pragma once

#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <vector>

#include "gateway/call_queue.h"

struct sqlite3;

namespace gateway {

class CallStore : public CallQueue {
 public:
  // Opens or creates the database at `path` (":memory:" for tests), in WAL mode with
  // synchronous=NORMAL, and makes every call and callback left running by a gateway that died
  // due again. `result_limit`: the bytes of a result body kept.
  static common::Result<std::unique_ptr<CallStore>> open(const std::string& path,
                                                         std::size_t result_limit);
  ~CallStore() override;
  CallStore(const CallStore&) = delete;
  CallStore& operator=(const CallStore&) = delete;

  common::Status enqueue(const NewCall& call) override;
  // Queued calls, and retrying ones whose next_try_ms has passed.
  std::vector<std::string> due_functions(std::int64_t now_ms) override;
  std::vector<StoredCall> claim(const std::string& function, int limit,
                                std::int64_t now_ms) override;
  common::Status finish(const std::string& id, const CallResult& result) override;
  Finished finish_and_claim(const std::string& id, const CallResult& result,
                            const std::string& function, std::int64_t now_ms) override;
  std::vector<StoredCall> claim_callbacks(int limit, std::int64_t now_ms) override;
  common::Status callback_sent(const std::string& id) override;
  common::Status callback_failed(const std::string& id) override;
  common::Status callback_retry(const std::string& id, std::int64_t next_ms) override;
  std::optional<std::int64_t> next_due_ms() override;
  std::optional<StoredCall> get(const std::string& id) override;
  std::vector<QueueCounts> counts() override;
  int prune(std::int64_t before_ms) override;

 private:
  CallStore(sqlite3* db, std::size_t result_limit) : db_(db), result_limit_(result_limit) {}

  // Runs `work` (statements on db_, each of which fails alone) in one transaction with the work
  // other threads bring meanwhile, and returns once that is committed: a group commit, so that a
  // commit (the WAL's writes, most of a call's cost) is shared by the calls queued or finished at
  // once. The status is the work's, or the commit's failure.
  common::Status in_shared_transaction(const std::function<common::Status()>& work);

  std::mutex mutex_;  // the connection
  sqlite3* db_;
  std::size_t result_limit_;

  struct Work;
  std::mutex batch_mutex_;  // what follows
  std::condition_variable batch_done_;
  std::vector<Work*> batch_;  // waiting for the next commit
  bool committing_ = false;
};

}  // namespace gateway
