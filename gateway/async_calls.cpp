#include "gateway/async_calls.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/logging.h"
#include "common/units.h"

namespace gateway {
namespace {

using Clock = std::chrono::steady_clock;

// Callbacks delivered at once, across functions: a receiver that hangs holds only these.
constexpr int kMaxDeliveries = 16;
// The dispatcher looks at least this often: for a store that failed, and for the due calls of a
// function at its limit, which a run's end also wakes it for.
constexpr std::int64_t kLongestWaitMs = 1000;

// The exit code a cgi function's answer reports (a header, or the trailer of a long output), as
// the watchdog writes it: 0 to 255. nullopt without one or for anything else.
std::optional<int> reported_exit_code(const protocol::Headers& headers) {
  auto code = common::parse_whole(protocol::header_value(headers, "X-Fn-Exit-Code"), 0, 255);
  if (!code) return std::nullopt;
  return static_cast<int>(*code);
}

}  // namespace

std::int64_t unix_now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

std::chrono::milliseconds retry_wait(const AsyncConfig& config, int attempts) {
  auto wait = config.initial_retry_wait;
  for (int run = 1; run < attempts && wait < config.max_retry_wait; ++run) wait *= 2;
  return std::min(wait, config.max_retry_wait);
}

bool is_retried_status(int status) noexcept {
  return status == 429 || status == 502 || status == 503 || status == 504;
}

CallResult result_of_run(const StoredCall& call, const common::Result<common::HttpReply>& reply,
                         const AsyncConfig& config, double duration_seconds, std::int64_t now_ms) {
  CallResult result;
  result.now_ms = now_ms;
  result.duration_seconds = duration_seconds;
  bool retried = !reply || is_retried_status(reply->status);
  if (reply) {
    result.status = reply->status;
    result.exit_code = reported_exit_code(reply->headers);
    result.content_type = std::string(protocol::header_value(reply->headers, "Content-Type"));
    result.body = reply->body;
    if (retried) result.error = "the function answered " + std::to_string(reply->status);
  } else {
    result.error = reply.error().context;
  }
  if (retried && call.attempts < static_cast<int>(config.max_retry_attempts)) {
    result.state = CallState::kRetrying;
    result.next_try_ms = now_ms + retry_wait(config, call.attempts).count();
  } else {
    result.state = retried ? CallState::kFailed : CallState::kDone;
  }
  return result;
}

protocol::Headers callback_headers(const StoredCall& call) {
  protocol::Headers headers{
      {"X-Call-Id", call.call.id},
      {"X-Function-Name", call.call.function},
      // No answer at all is the gateway's 502, as a synchronous client would have seen it.
      {"X-Function-Status", std::to_string(call.status ? call.status : 502)},
      {"X-Duration-Seconds", fmt::format("{:.6f}", call.duration_seconds)},
  };
  if (call.exit_code) headers.push_back({"X-Fn-Exit-Code", std::to_string(*call.exit_code)});
  if (!call.content_type.empty()) headers.push_back({"Content-Type", call.content_type});
  if (!call.error.empty()) headers.push_back({"X-Call-Error", call.error});
  return headers;
}

AsyncCalls::AsyncCalls(CallQueue& store, Hooks hooks)
    : store_(store), hooks_(std::move(hooks)), workers_({256, std::chrono::seconds(10)}) {}

AsyncCalls::~AsyncCalls() { stop(); }

void AsyncCalls::start() {
  dispatcher_ = std::thread([this] { dispatch_loop(); });
}

void AsyncCalls::poke() {
  std::lock_guard lock(mutex_);
  poked_ = true;
  wake_.notify_one();
}

void AsyncCalls::queued(const std::string& function) {
  AsyncConfig config = hooks_.settings_of(function).value_or(AsyncConfig{});
  std::lock_guard lock(mutex_);
  // A dispatcher woken for each call of a burst ran its queries (and a commit) for each.
  if (room_locked(function, config) <= 0) return;
  poked_ = true;
  wake_.notify_one();
}

int AsyncCalls::room_locked(const std::string& function, const AsyncConfig& config) const {
  auto busy = running_.find(function);
  return static_cast<int>(config.max_concurrency) - (busy == running_.end() ? 0 : busy->second);
}

void AsyncCalls::stop_claiming() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
    wake_.notify_one();
  }
  if (dispatcher_.joinable()) dispatcher_.join();
}

void AsyncCalls::stop() {
  stop_claiming();
  workers_.stop();
}

AsyncCalls::Counters AsyncCalls::counters() const {
  std::lock_guard lock(mutex_);
  return counters_;
}

int AsyncCalls::running() const {
  std::lock_guard lock(mutex_);
  int total = 0;
  for (const auto& [function, count] : running_) total += count;
  return total;
}

void AsyncCalls::dispatch_loop() {
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    poked_ = false;
    lock.unlock();
    std::int64_t now = hooks_.now_ms();
    std::int64_t next = dispatch_due(now);
    lock.lock();
    wake_.wait_for(lock, std::chrono::milliseconds(std::max<std::int64_t>(next - now, 1)),
                   [this] { return poked_ || stopping_; });
  }
}

std::int64_t AsyncCalls::dispatch_due(std::int64_t now) {
  constexpr std::int64_t kPruneEveryMs = 60'000;
  if (now - pruned_ms_ >= kPruneEveryMs) {
    store_.prune(now - kKeepFinishedMs);
    pruned_ms_ = now;
  }
  for (const auto& function : store_.due_functions(now)) {
    if (stopping_) return now;
    AsyncConfig config = hooks_.settings_of(function).value_or(AsyncConfig{});
    int room;
    {
      std::lock_guard lock(mutex_);
      room = room_locked(function, config);
    }
    if (room <= 0) continue;
    for (auto& call : store_.claim(function, room, now)) {
      {
        std::lock_guard lock(mutex_);
        ++running_[function];
      }
      // Refused only when no thread can be had: the call stays running in the store, for the
      // next start.
      if (!workers_.submit([this, call, config] { execute(call, config); })) finished(function);
    }
  }
  int room;
  {
    std::lock_guard lock(mutex_);
    room = kMaxDeliveries - delivering_;
  }
  if (room > 0) {
    for (auto& call : store_.claim_callbacks(room, now)) {
      AsyncConfig config = hooks_.settings_of(call.call.function).value_or(AsyncConfig{});
      {
        std::lock_guard lock(mutex_);
        ++delivering_;
      }
      if (!workers_.submit([this, call, config] { deliver(call, config); })) {
        std::lock_guard lock(mutex_);
        --delivering_;
      }
    }
  }
  auto next = store_.next_due_ms();
  if (!next || *next <= now) return now + kLongestWaitMs;
  return std::min(*next, now + kLongestWaitMs);
}

void AsyncCalls::execute(StoredCall call, AsyncConfig config) {
  static const auto log = common::logger("gateway.queue");
  const std::string function = call.call.function;
  for (;;) {
    auto start = Clock::now();
    auto reply = hooks_.run(call);
    double seconds = std::chrono::duration<double>(Clock::now() - start).count();
    if (!reply && stopping_) break;  // the edge is going away: not the function's failure
    CallResult result = result_of_run(call, reply, config, seconds, hooks_.now_ms());
    {  // counted before it is recorded: whoever sees the call's new state sees it counted
      std::lock_guard lock(mutex_);
      ++counters_.completed[result.status];
      if (result.state == CallState::kRetrying) ++counters_.retries;
    }
    // The slot goes to the function's next due call on this thread: a backlog runs without a
    // hand-off to the dispatcher per call.
    auto finished = stopping_ ? CallQueue::Finished{store_.finish(call.call.id, result), {}}
                              : store_.finish_and_claim(call.call.id, result, function,
                                                        hooks_.now_ms());
    if (!finished.recorded)
      log->error("cannot record a call call_id={} error=\"{}\"", call.call.id,
                 finished.recorded.error().context);
    log->info("call function={} call_id={} attempt={} status={} state={} ms={:.2f}", function,
              call.call.id, call.attempts, result.status, call_state_name(result.state),
              seconds * 1000);
    if (!finished.next) break;
    call = std::move(*finished.next);
    config = hooks_.settings_of(function).value_or(config);
  }
  finished(function);
}

void AsyncCalls::deliver(StoredCall call, AsyncConfig config) {
  static const auto log = common::logger("gateway.queue");
  auto reply = hooks_.deliver(call.call.callback_url, callback_headers(call), call.result);
  bool sent = reply && reply->status >= 200 && reply->status < 300;
  {  // counted before it is recorded, as a run is
    std::lock_guard lock(mutex_);
    ++(sent ? counters_.callbacks_sent : counters_.callback_failures);
  }
  if (sent) {
    (void)store_.callback_sent(call.call.id);
  } else if (!(stopping_ && !reply)) {  // else left sending: delivered again at the next start
    std::string why = reply ? "it answered " + std::to_string(reply->status)
                            : reply.error().context;
    bool last = call.callback_attempts >= static_cast<int>(config.max_callback_attempts);
    log->warn("callback failed call_id={} url={} attempt={} error=\"{}\"{}", call.call.id,
              call.call.callback_url, call.callback_attempts, why, last ? " (the last)" : "");
    if (last)
      (void)store_.callback_failed(call.call.id);
    else
      (void)store_.callback_retry(
          call.call.id, hooks_.now_ms() + retry_wait(config, call.callback_attempts).count());
  }
  std::lock_guard lock(mutex_);
  --delivering_;
  poked_ = true;
  wake_.notify_one();
}

void AsyncCalls::finished(const std::string& function) {
  std::lock_guard lock(mutex_);
  if (--running_[function] == 0) running_.erase(function);
  poked_ = true;  // its slot is free: a due call may take it
  wake_.notify_one();
}

}  // namespace gateway
