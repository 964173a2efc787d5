// The shared queue of asynchronous calls (issue 18): NATS JetStream, for several gateways on one
// server. A call is a message of the work-queue stream FASTFN_CALLS on fastfn.calls.<function>;
// every gateway pulls from one durable consumer per function, so each call goes to one of them,
// with explicit acks and an ack wait longer than the function's timeout: the calls a gateway held
// when it died go to another. A call's state (what GET /_fn/calls/ID reports, and its result)
// is a key of the bucket fastfn_calls, which any gateway reads; a finished call's callback is a
// message on fastfn.callbacks. Retries wait as a nak with a delay. At-least-once, as CallStore.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include "gateway/call_queue.h"

namespace gateway {

// A call as the queue keeps it: one JSON line of its fields, then raw bytes. `with_request`: in a
// message of the stream, the request's headers are in the line and its body follows; else (a
// record of the bucket) the result follows. Pure.
std::string encode_call(const StoredCall& call, bool with_request);
// nullopt for bytes that are no call.
std::optional<StoredCall> decode_call(std::string_view bytes, bool with_request);

class NatsCallQueue : public CallQueue {
 public:
  // A function's timeout (of its runs through the edge); the ack wait is 5 s longer.
  using TimeoutOf = std::function<std::chrono::milliseconds(const std::string& function)>;

  // Connects to `url` (nats://HOST:PORT), and creates the stream and the bucket if missing.
  // `result_limit`: the bytes of a result kept (less, if the server's max_payload is smaller).
  static common::Result<std::unique_ptr<NatsCallQueue>> open(const std::string& url,
                                                             std::size_t result_limit,
                                                             TimeoutOf timeout_of);
  // Gives the calls and callbacks it holds back to the stream, for another gateway.
  ~NatsCallQueue() override;
  NatsCallQueue(const NatsCallQueue&) = delete;
  NatsCallQueue& operator=(const NatsCallQueue&) = delete;

  common::Status enqueue(const NewCall& call) override;
  // The functions with a message in the stream (queued, retrying, or held by some gateway).
  std::vector<std::string> due_functions(std::int64_t now_ms) override;
  std::vector<StoredCall> claim(const std::string& function, int limit,
                                std::int64_t now_ms) override;
  common::Status finish(const std::string& id, const CallResult& result) override;
  std::vector<StoredCall> claim_callbacks(int limit, std::int64_t now_ms) override;
  common::Status callback_sent(const std::string& id) override;
  common::Status callback_failed(const std::string& id) override;
  common::Status callback_retry(const std::string& id, std::int64_t next_ms) override;
  // nullopt: other gateways queue too, so the dispatcher looks every second.
  std::optional<std::int64_t> next_due_ms() override;
  std::optional<StoredCall> get(const std::string& id) override;
  // Across every gateway: running are the messages delivered and not yet acknowledged.
  std::vector<QueueCounts> counts() override;
  // Nothing to do: the bucket forgets a call a day after its last change.
  int prune(std::int64_t before_ms) override;

  struct Nats;  // the connection, the stream's subscriptions, the messages held

 private:
  explicit NatsCallQueue(std::unique_ptr<Nats> nats);

  std::unique_ptr<Nats> nats_;
};

}  // namespace gateway
