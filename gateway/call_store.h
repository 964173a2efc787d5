// The embedded queue of asynchronous calls (issue 18): one SQLite database in WAL mode, one row per
// call from its 202 to its result and callback. A call is committed before its 202 is sent, and a
// call or callback that was running when the gateway died is run again at the next open
// (at-least-once, with the same id). The end of a run and the claim of the function's next call
// (finish_and_claim) are committed right after it returns, by a thread of the store's, so that
// the next run need not wait for the WAL's write; every other change is committed before its call
// returns, and so is the deferred work before it, so that what is read, claimed or called back was
// committed first. A gateway that dies between the two runs that call again, as it runs a call
// that was running when it died. Thread-safe: one connection behind one mutex.
#pragma once

#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

#include "gateway/call_queue.h"

struct sqlite3;

namespace gateway {

class CallStore : public CallQueue {
 public:
  // Opens or creates the database at `path` (":memory:" for tests), in WAL mode with
  // synchronous=NORMAL, and makes every call and callback left running by a gateway that died
  // due again. `result_limit`: the bytes of a result body kept. `commit_delay`: how long the ends
  // of runs gather before one commit (one write of the WAL) takes them all.
  static common::Result<std::unique_ptr<CallStore>> open(
      const std::string& path, std::size_t result_limit,
      std::chrono::microseconds commit_delay = std::chrono::milliseconds(1));
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
  CallStore(sqlite3* db, std::size_t result_limit, std::chrono::microseconds commit_delay);

  // Runs `work` (statements on db_, each of which fails alone) in one transaction with the work
  // other threads bring meanwhile, and returns once that is committed: a group commit, so that a
  // commit (the WAL's writes, most of a call's cost) is shared by the calls queued or finished at
  // once. The status is the work's, or the commit's failure.
  common::Status in_shared_transaction(const std::function<common::Status()>& work);
  // Runs `work` in the open transaction (begun if there is none) and returns without committing
  // it: the committer thread does, commit_delay_ later, with what other runs brought meanwhile.
  common::Status in_deferred_transaction(const std::function<common::Status()>& work);
  // Holding mutex_: the open transaction, or a new one begun.
  common::Status open_locked();
  // Holding mutex_: commits the open transaction; on failure it is rolled back (its calls stay as
  // they were before it) and the error returned.
  common::Status commit_locked();
  // Holding mutex_: commits the deferred work, if any (a failure is logged).
  void settle_locked();
  void commit_loop();

  std::mutex mutex_;  // the connection and what follows
  sqlite3* db_;
  std::size_t result_limit_;
  std::chrono::microseconds commit_delay_;
  bool open_ = false;  // a transaction is open
  bool closing_ = false;
  std::condition_variable commit_wanted_;  // open_ or closing_
  std::thread committer_;

  struct Work;
  std::mutex batch_mutex_;  // what follows
  std::condition_variable batch_done_;
  std::vector<Work*> batch_;  // waiting for the next commit
  bool committing_ = false;
};

}  // namespace gateway
