#include "gateway/call_store.h"

#include <sqlite3.h>

#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/logging.h"

namespace gateway {
namespace {

using common::Error;

// The rowid (seq) is the order of arrival: without AUTOINCREMENT a new row still gets a rowid above
// every row left, which is all FIFO needs.
constexpr const char* kSchema =
    "CREATE TABLE IF NOT EXISTS calls ("
    " seq INTEGER PRIMARY KEY,"
    " id TEXT NOT NULL UNIQUE,"
    " function TEXT NOT NULL,"
    " method TEXT NOT NULL,"
    " target TEXT NOT NULL,"
    " headers TEXT NOT NULL,"
    " body BLOB NOT NULL,"
    " callback_url TEXT NOT NULL,"
    " created_ms INTEGER NOT NULL,"
    " state TEXT NOT NULL,"
    " attempts INTEGER NOT NULL DEFAULT 0,"
    " next_try_ms INTEGER NOT NULL,"
    " finished_ms INTEGER NOT NULL DEFAULT 0,"
    " status INTEGER NOT NULL DEFAULT 0,"
    " duration_seconds REAL NOT NULL DEFAULT 0,"
    " error TEXT NOT NULL DEFAULT '',"
    " content_type TEXT NOT NULL DEFAULT '',"
    " result BLOB NOT NULL DEFAULT x'',"
    " result_truncated INTEGER NOT NULL DEFAULT 0,"
    " callback_state TEXT NOT NULL,"
    " callback_attempts INTEGER NOT NULL DEFAULT 0,"
    " callback_next_ms INTEGER NOT NULL DEFAULT 0,"
    " exit_code INTEGER);"
    "CREATE INDEX IF NOT EXISTS calls_due ON calls (state, next_try_ms);"
    // The waiting calls of a function in the order they are claimed (the rowid, seq, ends every
    // index): a claim reads the rows it takes, not every waiting one, and the counts of
    // /_fn/metrics read the index alone (it holds the state), not the calls.
    "CREATE INDEX IF NOT EXISTS calls_waiting ON calls (function, next_try_ms, seq, state)"
    " WHERE state IN ('queued', 'retrying');"
    // The callbacks to send, in the order they are claimed. Partial, so that the end of a call
    // without a callback (most of them) writes no page of this index; the queries name the state
    // exactly as the index does, which is what lets SQLite use it.
    "DROP INDEX IF EXISTS calls_callback_due;"
    "CREATE INDEX IF NOT EXISTS calls_callbacks_pending ON calls (callback_next_ms, seq)"
    " WHERE callback_state = 'pending';";

// A checkpoint copies the WAL's pages into the database and syncs both: with SQLite's default of
// every 1,000 pages (4 MiB) its fdatasync was up to a tenth of the queue's time, while holding it.
// The pages a queue rewrites are few (the ends of the table and of its indexes), so a checkpoint of
// a WAL ten times as long copies about as many pages, ten times less often.
constexpr const char* kCheckpointEvery = "PRAGMA wal_autocheckpoint=10000";

// A database made before the exit code was kept (stop 31's) gains its column; every call in it
// has none.
constexpr const char* kExitCodeColumn =
    "SELECT 1 FROM pragma_table_info('calls') WHERE name = 'exit_code'";
constexpr const char* kAddExitCode = "ALTER TABLE calls ADD COLUMN exit_code INTEGER";

// A gateway that died left these mid-run; their due times are already past, so they run at once.
constexpr const char* kRecovery =
    "UPDATE calls SET state = 'queued' WHERE state = 'running';"
    "UPDATE calls SET callback_state = 'pending' WHERE callback_state = 'sending';";

// The columns of a StoredCall, in the order of Column.
constexpr std::string_view kSelect =
    "SELECT id, function, method, target, headers, body, callback_url, created_ms, state,"
    " attempts, next_try_ms, finished_ms, status, duration_seconds, error, content_type, result,"
    " result_truncated, callback_state, callback_attempts, callback_next_ms, exit_code FROM calls ";

enum Column {
  kId,
  kFunction,
  kMethod,
  kTarget,
  kHeaders,
  kBody,
  kCallbackUrl,
  kCreatedMs,
  kState,
  kAttempts,
  kNextTryMs,
  kFinishedMs,
  kStatus,
  kDurationSeconds,
  kError,
  kContentType,
  kResult,
  kResultTruncated,
  kCallbackState,
  kCallbackAttempts,
  kCallbackNextMs,
  kExitCode,
};

// One prepared statement, its parameters bound in order. The first failure of preparing or
// binding is kept and returned by step(), so a caller checks once. Prepared once per connection
// and kept: parsing the SQL of each statement again was a quarter of the gateway's CPU while a
// backlog ran. A statement is reused when it is not running; no caller holds two of the same SQL
// at once, the second of which would take the first's.
class Statement {
 public:
  Statement(sqlite3* db, std::string_view sql) {
    for (stmt_ = sqlite3_next_stmt(db, nullptr); stmt_ != nullptr;
         stmt_ = sqlite3_next_stmt(db, stmt_))
      if (!sqlite3_stmt_busy(stmt_) && sql == sqlite3_sql(stmt_)) return;
    rc_ = sqlite3_prepare_v3(db, sql.data(), static_cast<int>(sql.size()),
                             SQLITE_PREPARE_PERSISTENT, &stmt_, nullptr);
  }
  ~Statement() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
  }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;

  Statement& text(std::string_view value) {
    // Bound values outlive the step in every caller, so SQLite need not copy them.
    keep(sqlite3_bind_text(stmt_, next_++, value.data(), static_cast<int>(value.size()),
                           SQLITE_STATIC));
    return *this;
  }
  Statement& blob(std::string_view value) {
    keep(sqlite3_bind_blob(stmt_, next_++, value.data(), static_cast<int>(value.size()),
                           SQLITE_STATIC));
    return *this;
  }
  Statement& integer(std::int64_t value) {
    keep(sqlite3_bind_int64(stmt_, next_++, value));
    return *this;
  }
  Statement& real(double value) {
    keep(sqlite3_bind_double(stmt_, next_++, value));
    return *this;
  }
  // NULL for none.
  Statement& maybe_integer(std::optional<int> value) {
    keep(value ? sqlite3_bind_int64(stmt_, next_++, *value) : sqlite3_bind_null(stmt_, next_++));
    return *this;
  }
  // SQLITE_ROW, SQLITE_DONE, or the first error.
  int step() { return rc_ == SQLITE_OK ? sqlite3_step(stmt_) : rc_; }
  // Ready to be bound and run again.
  void reset() {
    sqlite3_reset(stmt_);
    sqlite3_clear_bindings(stmt_);
    next_ = 1;
  }
  sqlite3_stmt* get() const { return stmt_; }

 private:
  void keep(int rc) {
    if (rc_ == SQLITE_OK) rc_ = rc;
  }

  sqlite3_stmt* stmt_ = nullptr;
  int rc_ = SQLITE_OK;
  int next_ = 1;
};

// Closes `db` with the statements Statement kept.
void close_db(sqlite3* db) {
  while (sqlite3_stmt* stmt = sqlite3_next_stmt(db, nullptr)) sqlite3_finalize(stmt);
  sqlite3_close_v2(db);
}

// BEGIN IMMEDIATE takes the write lock up front, so a claim never fails half-way on an upgrade.
// Rolled back unless committed.
class Transaction {
 public:
  explicit Transaction(sqlite3* db) : db_(db) {
    began_ = sqlite3_exec(db, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) == SQLITE_OK;
  }
  ~Transaction() {
    if (began_ && !committed_) sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  }
  Transaction(const Transaction&) = delete;
  Transaction& operator=(const Transaction&) = delete;

  bool began() const { return began_; }
  bool commit() {
    committed_ = sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK;
    return committed_;
  }

 private:
  sqlite3* db_;
  bool began_ = false;
  bool committed_ = false;
};

// Built before any rollback, which would replace the message.
Error db_error(sqlite3* db, std::string_view doing) {
  return Error{Error::Code::kUnavailable,
               "the call queue could not " + std::string(doing) + ": " + sqlite3_errmsg(db)};
}

void log_error(std::string_view operation, const Error& error) {
  common::logger("gateway.queue")
      ->error("call queue failed op={} error=\"{}\"", operation, error.context);
}

std::string column_text(sqlite3_stmt* stmt, int column) {
  const auto* text = reinterpret_cast<const char*>(sqlite3_column_text(stmt, column));
  if (text == nullptr) return {};
  return std::string(text, static_cast<std::size_t>(sqlite3_column_bytes(stmt, column)));
}

// A zero-length blob reads back as a null pointer.
std::string column_blob(sqlite3_stmt* stmt, int column) {
  const auto* data = static_cast<const char*>(sqlite3_column_blob(stmt, column));
  if (data == nullptr) return {};
  return std::string(data, static_cast<std::size_t>(sqlite3_column_bytes(stmt, column)));
}

StoredCall read_call(sqlite3_stmt* stmt) {
  StoredCall stored;
  NewCall& call = stored.call;
  call.id = column_text(stmt, kId);
  call.function = column_text(stmt, kFunction);
  call.method = column_text(stmt, kMethod);
  call.target = column_text(stmt, kTarget);
  call.headers = parse_headers_text(column_text(stmt, kHeaders));
  call.body = column_blob(stmt, kBody);
  call.callback_url = column_text(stmt, kCallbackUrl);
  call.now_ms = sqlite3_column_int64(stmt, kCreatedMs);
  stored.state = parse_call_state(column_text(stmt, kState));
  stored.attempts = sqlite3_column_int(stmt, kAttempts);
  stored.next_try_ms = sqlite3_column_int64(stmt, kNextTryMs);
  stored.finished_ms = sqlite3_column_int64(stmt, kFinishedMs);
  stored.status = sqlite3_column_int(stmt, kStatus);
  stored.duration_seconds = sqlite3_column_double(stmt, kDurationSeconds);
  stored.error = column_text(stmt, kError);
  stored.content_type = column_text(stmt, kContentType);
  stored.result = column_blob(stmt, kResult);
  stored.result_truncated = sqlite3_column_int(stmt, kResultTruncated) != 0;
  stored.callback_state = column_text(stmt, kCallbackState);
  stored.callback_attempts = sqlite3_column_int(stmt, kCallbackAttempts);
  stored.callback_next_ms = sqlite3_column_int64(stmt, kCallbackNextMs);
  if (sqlite3_column_type(stmt, kExitCode) != SQLITE_NULL)
    stored.exit_code = sqlite3_column_int(stmt, kExitCode);
  return stored;
}

// Every row of a statement whose parameters are bound.
common::Result<std::vector<StoredCall>> read_calls(sqlite3* db, Statement& select,
                                                   std::string_view doing) {
  std::vector<StoredCall> calls;
  int rc;
  while ((rc = select.step()) == SQLITE_ROW) calls.push_back(read_call(select.get()));
  if (rc != SQLITE_DONE) return tl::unexpected(db_error(db, doing));
  return calls;
}

// Runs an UPDATE of one row by id for each call, in the caller's transaction.
common::Status update_each(sqlite3* db, std::string_view sql, const std::vector<StoredCall>& calls,
                           std::string_view doing) {
  Statement update(db, sql);
  for (const auto& stored : calls) {
    update.text(stored.call.id);
    if (update.step() != SQLITE_DONE) return tl::unexpected(db_error(db, doing));
    update.reset();
  }
  return {};
}

// The common end of a statement that changes one call by id.
common::Status change_one(sqlite3* db, Statement& statement, std::string_view doing) {
  if (statement.step() != SQLITE_DONE) return tl::unexpected(db_error(db, doing));
  if (sqlite3_changes(db) == 0) return common::fail(Error::Code::kNotFound, "no call has this id");
  return {};
}

common::Status open_schema(sqlite3* db) {
  // One gateway owns the file: a second one on it would run the first one's calls again at its
  // recovery. Held from the first access to the close, the lock also spares the file locks and
  // the shared-memory index of every transaction (set before WAL, so that none is made). A
  // ":memory:" database keeps its own journal mode, which is no error.
  if (sqlite3_exec(db, "PRAGMA locking_mode=EXCLUSIVE", nullptr, nullptr, nullptr) != SQLITE_OK ||
      sqlite3_exec(db, "PRAGMA journal_mode=WAL", nullptr, nullptr, nullptr) != SQLITE_OK ||
      sqlite3_exec(db, "PRAGMA synchronous=NORMAL", nullptr, nullptr, nullptr) != SQLITE_OK ||
      sqlite3_exec(db, kCheckpointEvery, nullptr, nullptr, nullptr) != SQLITE_OK ||
      sqlite3_busy_timeout(db, 5000) != SQLITE_OK) {
    return tl::unexpected(db_error(db, "be configured"));
  }
  Transaction transaction(db);
  if (!transaction.began() || sqlite3_exec(db, kSchema, nullptr, nullptr, nullptr) != SQLITE_OK)
    return tl::unexpected(db_error(db, "be opened"));
  bool has_exit_code = false;
  {
    Statement column(db, kExitCodeColumn);
    int rc = column.step();
    if (rc != SQLITE_ROW && rc != SQLITE_DONE) return tl::unexpected(db_error(db, "be opened"));
    has_exit_code = rc == SQLITE_ROW;
  }
  if ((!has_exit_code && sqlite3_exec(db, kAddExitCode, nullptr, nullptr, nullptr) != SQLITE_OK) ||
      sqlite3_exec(db, kRecovery, nullptr, nullptr, nullptr) != SQLITE_OK ||
      !transaction.commit()) {
    return tl::unexpected(db_error(db, "be opened"));
  }
  return {};
}

// claim()'s work, in the caller's transaction.
common::Result<std::vector<StoredCall>> mark_claimed(sqlite3* db, const std::string& function,
                                                     int limit, std::int64_t now_ms) {
  Statement select(db, std::string(kSelect) +
                           "INDEXED BY calls_waiting WHERE function = ? AND"
                           " state IN ('queued', 'retrying') AND next_try_ms <= ?"
                           " ORDER BY next_try_ms, seq LIMIT ?");
  select.text(function).integer(now_ms).integer(limit);
  auto calls = read_calls(db, select, "claim calls");
  if (!calls) return calls;
  auto updated =
      update_each(db, "UPDATE calls SET state = 'running', attempts = attempts + 1 WHERE id = ?",
                  *calls, "claim calls");
  if (!updated) return tl::unexpected(updated.error());
  for (auto& stored : *calls) {
    stored.state = CallState::kRunning;
    ++stored.attempts;
  }
  return calls;
}

common::Result<std::vector<StoredCall>> claim_calls(sqlite3* db, const std::string& function,
                                                    int limit, std::int64_t now_ms) {
  Transaction transaction(db);
  if (!transaction.began()) return tl::unexpected(db_error(db, "claim calls"));
  auto calls = mark_claimed(db, function, limit, now_ms);
  if (calls && !transaction.commit()) return tl::unexpected(db_error(db, "claim calls"));
  return calls;
}

common::Result<std::vector<StoredCall>> claim_due_callbacks(sqlite3* db, int limit,
                                                            std::int64_t now_ms) {
  Transaction transaction(db);
  if (!transaction.began()) return tl::unexpected(db_error(db, "claim callbacks"));
  Statement select(db, std::string(kSelect) +
                           "WHERE callback_state = 'pending' AND callback_next_ms <= ?"
                           " ORDER BY callback_next_ms, seq LIMIT ?");
  select.integer(now_ms).integer(limit);
  auto calls = read_calls(db, select, "claim callbacks");
  if (!calls) return calls;
  auto updated = update_each(db,
                             "UPDATE calls SET callback_state = 'sending',"
                             " callback_attempts = callback_attempts + 1 WHERE id = ?",
                             *calls, "claim callbacks");
  if (!updated) return tl::unexpected(updated.error());
  if (!transaction.commit()) return tl::unexpected(db_error(db, "claim callbacks"));
  for (auto& stored : *calls) {
    stored.callback_state = "sending";
    ++stored.callback_attempts;
  }
  return calls;
}

common::Status set_callback_state(sqlite3* db, const std::string& id, std::string_view state) {
  Statement update(db, "UPDATE calls SET callback_state = ? WHERE id = ?");
  update.text(state).text(id);
  return change_one(db, update, "record a callback");
}

// finish()'s work: one UPDATE, in the caller's transaction if there is one.
common::Status record_end(sqlite3* db, const std::string& id, const CallResult& result,
                          std::size_t result_limit) {
  bool retrying = result.state == CallState::kRetrying;
  if (!retrying && result.state != CallState::kDone && result.state != CallState::kFailed) {
    return common::fail(Error::Code::kInternal, "a run can only end done, failed or retrying");
  }
  std::string sql =
      "UPDATE calls SET state = ?, status = ?, exit_code = ?, duration_seconds = ?, error = ?,"
      " content_type = ?, result = ?, result_truncated = ?, ";
  sql += retrying ? "next_try_ms = ? WHERE id = ?"
                  : "finished_ms = ?,"
                    " callback_state = CASE WHEN callback_url <> '' THEN 'pending'"
                    " ELSE callback_state END,"
                    " callback_next_ms = CASE WHEN callback_url <> '' THEN ?"
                    " ELSE callback_next_ms END WHERE id = ?";
  bool truncated = result.body.size() > result_limit;
  std::string_view body = std::string_view(result.body).substr(0, result_limit);
  Statement update(db, sql);
  update.text(call_state_name(result.state))
      .integer(result.status)
      .maybe_integer(result.exit_code)
      .real(result.duration_seconds)
      .text(result.error)
      .text(result.content_type)
      .blob(body)
      .integer(truncated ? 1 : 0);
  if (retrying) {
    update.integer(result.next_try_ms);
  } else {
    update.integer(result.now_ms).integer(result.now_ms);
  }
  update.text(id);
  return change_one(db, update, "record the end of a run");
}

}  // namespace

common::Result<std::unique_ptr<CallStore>> CallStore::open(
    const std::string& path, std::size_t result_limit, std::chrono::microseconds commit_delay) {
  sqlite3* db = nullptr;
  // NOMUTEX: the store's own mutex already serialises every use of the connection.
  int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  common::Status opened =
      rc == SQLITE_OK ? open_schema(db) : tl::unexpected(db_error(db, "be opened"));
  if (!opened) {
    // Even a failed open can leave a handle to free.
    close_db(db);
    return tl::unexpected(opened.error());
  }
  return std::unique_ptr<CallStore>(new CallStore(db, result_limit, commit_delay));
}

CallStore::CallStore(sqlite3* db, std::size_t result_limit,
                     std::chrono::microseconds commit_delay)
    : db_(db),
      result_limit_(result_limit),
      commit_delay_(commit_delay),
      committer_([this] { commit_loop(); }) {}

CallStore::~CallStore() {
  {
    std::lock_guard lock(mutex_);
    closing_ = true;
  }
  commit_wanted_.notify_one();
  committer_.join();  // after committing what was deferred
  close_db(db_);
}

struct CallStore::Work {
  const std::function<common::Status()>* run;
  common::Status status;
  bool done = false;
};

common::Status CallStore::in_shared_transaction(const std::function<common::Status()>& work) {
  Work mine{&work, {}};
  std::unique_lock batch_lock(batch_mutex_);
  batch_.push_back(&mine);
  // Another thread commits: the next commit, this thread's or another's, takes this work.
  batch_done_.wait(batch_lock, [&] { return mine.done || !committing_; });
  if (mine.done) return mine.status;
  committing_ = true;
  std::vector<Work*> taken;
  taken.swap(batch_);
  batch_lock.unlock();
  {
    // The deferred work still open is committed with this batch's.
    std::lock_guard lock(mutex_);
    common::Status committed = open_locked();
    if (committed) {
      for (Work* each : taken) each->status = (*each->run)();
      committed = commit_locked();
    }
    if (!committed)
      for (Work* each : taken) each->status = committed;
  }
  batch_lock.lock();
  for (Work* each : taken) each->done = true;
  committing_ = false;
  batch_done_.notify_all();
  return mine.status;
}

common::Status CallStore::in_deferred_transaction(const std::function<common::Status()>& work) {
  common::Status status;
  bool begun;
  {
    std::lock_guard lock(mutex_);
    begun = !open_;
    if (auto opened = open_locked(); !opened) return opened;
    status = work();
  }
  // Once per transaction: the committer, woken, waits out the delay whatever comes meanwhile.
  if (begun) commit_wanted_.notify_one();
  return status;
}

common::Status CallStore::open_locked() {
  if (open_) return {};
  if (sqlite3_exec(db_, "BEGIN IMMEDIATE", nullptr, nullptr, nullptr) != SQLITE_OK)
    return tl::unexpected(db_error(db_, "begin a transaction"));
  open_ = true;
  return {};
}

common::Status CallStore::commit_locked() {
  open_ = false;
  if (sqlite3_exec(db_, "COMMIT", nullptr, nullptr, nullptr) == SQLITE_OK) return {};
  Error failed = db_error(db_, "commit");
  sqlite3_exec(db_, "ROLLBACK", nullptr, nullptr, nullptr);
  return tl::unexpected(failed);
}

void CallStore::settle_locked() {
  if (!open_) return;
  if (auto committed = commit_locked(); !committed) log_error("commit", committed.error());
}

void CallStore::commit_loop() {
  std::unique_lock lock(mutex_);
  for (;;) {
    commit_wanted_.wait(lock, [this] { return open_ || closing_; });
    commit_wanted_.wait_for(lock, commit_delay_, [this] { return closing_; });
    settle_locked();
    if (closing_) return;
  }
}

common::Status CallStore::enqueue(const NewCall& call) {
  return in_shared_transaction([&]() -> common::Status {
    Statement insert(db_,
                     "INSERT INTO calls (id, function, method, target, headers, body, callback_url,"
                     " created_ms, state, next_try_ms, callback_state)"
                     " VALUES (?, ?, ?, ?, ?, ?, ?, ?, 'queued', ?, 'none')");
    const std::string headers = headers_text(call.headers);
    insert.text(call.id)
        .text(call.function)
        .text(call.method)
        .text(call.target)
        .text(headers)
        .blob(call.body)
        .text(call.callback_url)
        .integer(call.now_ms)
        .integer(call.now_ms);
    if (insert.step() == SQLITE_DONE) return {};
    if (sqlite3_extended_errcode(db_) == SQLITE_CONSTRAINT_UNIQUE) {
      return common::fail(Error::Code::kBadRequest, "call id is already taken");
    }
    return tl::unexpected(db_error(db_, "queue the call"));
  });
}

std::vector<std::string> CallStore::due_functions(std::int64_t now_ms) {
  std::lock_guard lock(mutex_);
  Statement select(db_,
                   // One index seek per function with waiting calls, not a read of each call.
                   "WITH RECURSIVE waiting(name) AS ("
                   " SELECT (SELECT MIN(function) FROM calls INDEXED BY calls_waiting"
                   "  WHERE state IN ('queued', 'retrying'))"
                   " UNION ALL SELECT (SELECT MIN(function) FROM calls INDEXED BY calls_waiting"
                   "  WHERE state IN ('queued', 'retrying') AND function > name)"
                   " FROM waiting WHERE name IS NOT NULL)"
                   " SELECT name FROM waiting WHERE name IS NOT NULL AND EXISTS ("
                   "  SELECT 1 FROM calls INDEXED BY calls_waiting WHERE function = name AND"
                   "  state IN ('queued', 'retrying') AND next_try_ms <= ?)");
  select.integer(now_ms);
  std::vector<std::string> functions;
  int rc;
  while ((rc = select.step()) == SQLITE_ROW) functions.push_back(column_text(select.get(), 0));
  if (rc != SQLITE_DONE) {
    log_error("due_functions", db_error(db_, "list the due functions"));
    return {};
  }
  return functions;
}

std::vector<StoredCall> CallStore::claim(const std::string& function, int limit,
                                         std::int64_t now_ms) {
  // SQLite reads a negative LIMIT as no limit at all.
  if (limit <= 0) return {};
  std::lock_guard lock(mutex_);
  settle_locked();
  auto calls = claim_calls(db_, function, limit, now_ms);
  if (!calls) {
    log_error("claim", calls.error());
    return {};
  }
  return std::move(*calls);
}

common::Status CallStore::finish(const std::string& id, const CallResult& result) {
  std::lock_guard lock(mutex_);
  settle_locked();
  return record_end(db_, id, result, result_limit_);
}

CallQueue::Finished CallStore::finish_and_claim(const std::string& id, const CallResult& result,
                                                const std::string& function, std::int64_t now_ms) {
  Finished finished;
  finished.recorded = in_deferred_transaction([&]() -> common::Status {
    if (auto recorded = record_end(db_, id, result, result_limit_); !recorded) return recorded;
    auto next = mark_claimed(db_, function, 1, now_ms);
    if (!next) {
      log_error("claim", next.error());
    } else if (!next->empty()) {
      finished.next = std::move(next->front());
    }
    return {};
  });
  if (!finished.recorded) finished.next.reset();  // not begun: not claimed
  return finished;
}

std::vector<StoredCall> CallStore::claim_callbacks(int limit, std::int64_t now_ms) {
  // SQLite reads a negative LIMIT as no limit at all.
  if (limit <= 0) return {};
  std::lock_guard lock(mutex_);
  settle_locked();  // a callback is sent for an end that was committed
  auto calls = claim_due_callbacks(db_, limit, now_ms);
  if (!calls) {
    log_error("claim_callbacks", calls.error());
    return {};
  }
  return std::move(*calls);
}

common::Status CallStore::callback_sent(const std::string& id) {
  std::lock_guard lock(mutex_);
  settle_locked();
  return set_callback_state(db_, id, "sent");
}

common::Status CallStore::callback_failed(const std::string& id) {
  std::lock_guard lock(mutex_);
  settle_locked();
  return set_callback_state(db_, id, "failed");
}

common::Status CallStore::callback_retry(const std::string& id, std::int64_t next_ms) {
  std::lock_guard lock(mutex_);
  settle_locked();
  Statement update(
      db_, "UPDATE calls SET callback_state = 'pending', callback_next_ms = ? WHERE id = ?");
  update.integer(next_ms).text(id);
  return change_one(db_, update, "postpone a callback");
}

std::optional<std::int64_t> CallStore::next_due_ms() {
  std::lock_guard lock(mutex_);
  // Each MIN is read from its own index; MIN over no row is NULL, and so is their MIN.
  Statement select(db_,
                   "SELECT MIN(due) FROM ("
                   " SELECT MIN(next_try_ms) AS due FROM calls WHERE state = 'queued'"
                   " UNION ALL SELECT MIN(next_try_ms) FROM calls WHERE state = 'retrying'"
                   " UNION ALL SELECT MIN(callback_next_ms) FROM calls"
                   " WHERE callback_state = 'pending')");
  if (select.step() != SQLITE_ROW) {
    log_error("next_due_ms", db_error(db_, "find the next due time"));
    return std::nullopt;
  }
  if (sqlite3_column_type(select.get(), 0) == SQLITE_NULL) return std::nullopt;
  return sqlite3_column_int64(select.get(), 0);
}

std::optional<StoredCall> CallStore::get(const std::string& id) {
  std::lock_guard lock(mutex_);
  settle_locked();  // what a client is told was committed
  Statement select(db_, std::string(kSelect) + "WHERE id = ?");
  select.text(id);
  auto calls = read_calls(db_, select, "read a call");
  if (!calls) {
    log_error("get", calls.error());
    return std::nullopt;
  }
  if (calls->empty()) return std::nullopt;
  return std::move(calls->front());
}

std::vector<QueueCounts> CallStore::counts() {
  std::lock_guard lock(mutex_);
  std::map<std::string, QueueCounts> by_function;
  // The oldest waiting call is the first to arrive (the lowest seq); its time is read alone.
  Statement waiting(db_,
                    "SELECT function, COUNT(*), MIN(seq) FROM calls INDEXED BY calls_waiting"
                    " WHERE state IN ('queued', 'retrying') GROUP BY function");
  Statement created(db_, "SELECT created_ms FROM calls WHERE seq = ?");
  int rc;
  while ((rc = waiting.step()) == SQLITE_ROW) {
    QueueCounts& count = by_function[column_text(waiting.get(), 0)];
    count.queued = sqlite3_column_int(waiting.get(), 1);
    created.integer(sqlite3_column_int64(waiting.get(), 2));
    if (created.step() == SQLITE_ROW) count.oldest_queued_ms = sqlite3_column_int64(created.get(), 0);
    created.reset();
  }
  Statement running(db_,
                    "SELECT function, COUNT(*) FROM calls WHERE state = 'running' GROUP BY function");
  if (rc == SQLITE_DONE)
    while ((rc = running.step()) == SQLITE_ROW)
      by_function[column_text(running.get(), 0)].running = sqlite3_column_int(running.get(), 1);
  if (rc != SQLITE_DONE) {
    log_error("counts", db_error(db_, "count the calls"));
    return {};
  }
  std::vector<QueueCounts> counts;
  for (auto& [function, count] : by_function) {
    count.function = function;
    counts.push_back(std::move(count));
  }
  return counts;
}

int CallStore::prune(std::int64_t before_ms) {
  std::lock_guard lock(mutex_);
  settle_locked();
  Statement remove(db_,
                   "DELETE FROM calls WHERE state IN ('done', 'failed') AND finished_ms < ?"
                   " AND callback_state IN ('none', 'sent', 'failed')");
  remove.integer(before_ms);
  if (remove.step() != SQLITE_DONE) {
    log_error("prune", db_error(db_, "prune finished calls"));
    return 0;
  }
  return sqlite3_changes(db_);
}

}  // namespace gateway
