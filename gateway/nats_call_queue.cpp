#include "gateway/nats_call_queue.h"

#include <nats/nats.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <map>
#include <mutex>

#include "common/logging.h"
#include "gateway/async_calls.h"

namespace gateway {
namespace {

using common::Error;

constexpr const char* kStream = "FASTFN_CALLS";
constexpr std::string_view kCallPrefix = "fastfn.calls.";
constexpr const char* kCallbackSubject = "fastfn.callbacks";
constexpr const char* kCallbackDurable = "fastfn-callbacks";
constexpr const char* kBucket = "fastfn_calls";
// The key of the callbacks' count among the functions' (a function's name is never empty).
constexpr const char* kCallbacks = "";
constexpr std::int64_t kNanosPerMs = 1'000'000;
// A repeated publish of one call (a client's retried POST) within this window is stored once.
constexpr std::int64_t kDuplicateWindowMs = 120'000;
// A delivery of a callback takes at most 10 s (main.cpp), and is given back to the stream if it
// is not over in this time.
constexpr std::chrono::milliseconds kCallbackAckWait{60'000};
constexpr std::chrono::milliseconds kAckMargin{5'000};
// How long a fetch waits when nothing is due, on the dispatcher's thread.
constexpr std::int64_t kFetchWaitMs = 20;
// The ack wait of a function without a timeout.
constexpr std::chrono::milliseconds kLongestAckWait{3'600'000};
// What a record holds beside the result: ids, the path, the error.
constexpr std::size_t kRecordReserve = 64 * 1024;

void log_error(std::string_view operation, const Error& error) {
  common::logger("gateway.queue")
      ->error("call queue failed op={} error=\"{}\"", operation, error.context);
}

Error nats_error(natsStatus status, std::string_view doing) {
  std::string text = natsStatus_GetText(status);
  const char* last = nats_GetLastError(nullptr);
  if (last != nullptr && *last != '\0' && text != last) text += std::string(": ") + last;
  return Error{Error::Code::kUnavailable,
               "the call queue could not " + std::string(doing) + ": " + text};
}

// Subjects and consumer names may not hold '.', '*', '>' or spaces; a function's name may.
std::string hex(std::string_view text) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out;
  for (unsigned char c : text) {
    out += kDigits[c >> 4];
    out += kDigits[c & 15];
  }
  return out;
}

std::optional<std::string> unhex(std::string_view text) {
  auto digit = [](char c) {
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
  };
  if (text.size() % 2 != 0) return std::nullopt;
  std::string out;
  for (std::size_t i = 0; i < text.size(); i += 2) {
    int high = digit(text[i]), low = digit(text[i + 1]);
    if (high < 0 || low < 0) return std::nullopt;
    out += static_cast<char>(high * 16 + low);
  }
  return out;
}

std::string subject_of(const std::string& function) {
  return std::string(kCallPrefix) + hex(function);
}
std::string durable_of(const std::string& function) { return "fastfn-" + hex(function); }

// A key's tokens are between dots and may not be empty; call ids never hold '='.
std::string key_of(std::string id) {
  std::replace(id.begin(), id.end(), '.', '=');
  return id;
}

}  // namespace

std::string encode_call(const StoredCall& stored, bool with_request) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> w(buffer);
  auto text = [&w](const char* key, std::string_view value) {
    w.Key(key);
    w.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  };
  auto number = [&w](const char* key, std::int64_t value) {
    w.Key(key);
    w.Int64(value);
  };
  const NewCall& call = stored.call;
  w.StartObject();
  text("id", call.id);
  text("function", call.function);
  text("method", call.method);
  text("target", call.target);
  text("callback_url", call.callback_url);
  number("queued_ms", call.now_ms);
  if (with_request) text("headers", headers_text(call.headers));
  text("state", call_state_name(stored.state));
  number("attempts", stored.attempts);
  number("next_try_ms", stored.next_try_ms);
  number("finished_ms", stored.finished_ms);
  number("status", stored.status);
  if (stored.exit_code) number("exit_code", *stored.exit_code);
  w.Key("duration_seconds");
  w.Double(stored.duration_seconds);
  text("error", stored.error);
  text("content_type", stored.content_type);
  w.Key("result_truncated");
  w.Bool(stored.result_truncated);
  text("callback_state", stored.callback_state);
  number("callback_attempts", stored.callback_attempts);
  number("callback_next_ms", stored.callback_next_ms);
  w.EndObject();
  std::string bytes(buffer.GetString(), buffer.GetSize());
  bytes += '\n';
  bytes += with_request ? call.body : stored.result;
  return bytes;
}

std::optional<StoredCall> decode_call(std::string_view bytes, bool with_request) {
  std::size_t line = bytes.find('\n');
  if (line == std::string_view::npos) return std::nullopt;
  rapidjson::Document doc;
  doc.Parse(bytes.data(), line);
  if (doc.HasParseError() || !doc.IsObject()) return std::nullopt;
  auto text = [&doc](const char* key) {
    auto it = doc.FindMember(key);
    return it != doc.MemberEnd() && it->value.IsString()
               ? std::string(it->value.GetString(), it->value.GetStringLength())
               : std::string();
  };
  auto number = [&doc](const char* key) -> std::int64_t {
    auto it = doc.FindMember(key);
    return it != doc.MemberEnd() && it->value.IsInt64() ? it->value.GetInt64() : 0;
  };
  StoredCall stored;
  NewCall& call = stored.call;
  call.id = text("id");
  call.function = text("function");
  call.method = text("method");
  call.target = text("target");
  call.callback_url = text("callback_url");
  call.now_ms = number("queued_ms");
  stored.state = parse_call_state(text("state"));
  stored.attempts = static_cast<int>(number("attempts"));
  stored.next_try_ms = number("next_try_ms");
  stored.finished_ms = number("finished_ms");
  stored.status = static_cast<int>(number("status"));
  if (auto exit_code = doc.FindMember("exit_code");
      exit_code != doc.MemberEnd() && exit_code->value.IsInt())
    stored.exit_code = exit_code->value.GetInt();
  auto duration = doc.FindMember("duration_seconds");
  if (duration != doc.MemberEnd() && duration->value.IsNumber())
    stored.duration_seconds = duration->value.GetDouble();
  stored.error = text("error");
  stored.content_type = text("content_type");
  auto truncated = doc.FindMember("result_truncated");
  stored.result_truncated = truncated != doc.MemberEnd() && truncated->value.IsTrue();
  stored.callback_state = text("callback_state");
  stored.callback_attempts = static_cast<int>(number("callback_attempts"));
  stored.callback_next_ms = number("callback_next_ms");
  std::string rest(bytes.substr(line + 1));
  if (with_request) {
    call.headers = parse_headers_text(text("headers"));
    call.body = std::move(rest);
  } else {
    stored.result = std::move(rest);
  }
  if (call.id.empty()) return std::nullopt;
  return stored;
}

namespace {

// A message fetched and not yet acknowledged, with the record written when it was claimed.
struct Held {
  natsMsg* message = nullptr;
  StoredCall record;  // without the request's headers and body
};

}  // namespace

struct NatsCallQueue::Nats {
  natsConnection* connection = nullptr;
  jsCtx* js = nullptr;
  kvStore* kv = nullptr;
  std::size_t max_payload = 0;
  std::size_t result_limit = 0;
  TimeoutOf timeout_of;

  std::mutex mutex;                                // guards what follows
  // By function, and the callbacks' under kCallbacks.
  std::map<std::string, natsSubscription*> subscriptions;
  std::map<std::string, Held> running, sending;  // by call id
  bool callbacks_due = true;  // the stream held callbacks not sending here, at due_functions()

  ~Nats() {
    for (auto* held : {&running, &sending})
      for (auto& [id, message] : *held) {
        natsMsg_Nak(message.message, nullptr);  // another gateway may take it now
        natsMsg_Destroy(message.message);
      }
    // Destroyed, not unsubscribed: the durable consumers are the stream's, shared by gateways.
    for (auto& [key, subscription] : subscriptions) natsSubscription_Destroy(subscription);
    kvStore_Destroy(kv);
    jsCtx_Destroy(js);
    natsConnection_Destroy(connection);
  }

  // The durable pull consumer `durable` of `subject`, created or updated to `ack_wait`, and a
  // subscription bound to it.
  common::Result<natsSubscription*> subscribe(const std::string& durable,
                                              const std::string& subject,
                                              std::chrono::milliseconds ack_wait) {
    jsConsumerConfig config;
    jsConsumerConfig_Init(&config);
    config.Durable = durable.c_str();
    config.FilterSubject = subject.c_str();
    config.AckPolicy = js_AckExplicit;
    config.AckWait = ack_wait.count() * kNanosPerMs;
    config.MaxDeliver = -1;
    config.MaxAckPending = -1;
    jsConsumerInfo* info = nullptr;
    jsErrCode code{};
    natsStatus status = js_AddConsumer(&info, js, kStream, &config, nullptr, &code);
    if (status != NATS_OK)  // it exists with another ack wait (the function's timeout changed)
      status = js_UpdateConsumer(&info, js, kStream, &config, nullptr, &code);
    jsConsumerInfo_Destroy(info);
    if (status != NATS_OK) return tl::unexpected(nats_error(status, "create a consumer"));
    jsSubOptions options;
    jsSubOptions_Init(&options);
    options.Stream = kStream;
    options.Consumer = durable.c_str();
    natsSubscription* subscription = nullptr;
    status = js_PullSubscribe(&subscription, js, subject.c_str(), durable.c_str(), nullptr,
                              &options, &code);
    if (status != NATS_OK) return tl::unexpected(nats_error(status, "subscribe"));
    return subscription;
  }

  // The subscription kept under `key`, subscribed (its consumer made, with the ack wait
  // `ack_wait()` gives) on first use; null when that fails (logged as `operation`).
  template <class AckWait>
  natsSubscription* subscription_for(const std::string& key, const std::string& durable,
                                     const std::string& subject, AckWait ack_wait,
                                     std::string_view operation) {
    {
      std::lock_guard lock(mutex);
      if (auto it = subscriptions.find(key); it != subscriptions.end()) return it->second;
    }
    auto made = subscribe(durable, subject, ack_wait());
    if (!made) {
      log_error(operation, made.error());
      return nullptr;
    }
    std::lock_guard lock(mutex);
    auto [it, added] = subscriptions.emplace(key, *made);
    if (!added) natsSubscription_Destroy(*made);  // another thread's came first
    return it->second;
  }

  // Up to `limit` messages that are due now. The wait is for the server's answer: a fetch asks for
  // what is there, and waits for more only when nothing is.
  std::vector<natsMsg*> fetch(natsSubscription* subscription, int limit) {
    natsMsgList list{};
    natsStatus status = natsSubscription_Fetch(&list, subscription, limit, kFetchWaitMs, nullptr);
    std::vector<natsMsg*> messages;
    if (status == NATS_OK) {
      for (int i = 0; i < list.Count; ++i) {
        messages.push_back(list.Msgs[i]);
        list.Msgs[i] = nullptr;
      }
    } else if (status != NATS_TIMEOUT && status != NATS_NOT_FOUND) {
      log_error("fetch", nats_error(status, "fetch calls"));
    }
    natsMsgList_Destroy(&list);
    return messages;
  }

  std::optional<StoredCall> read(const std::string& id) {
    kvEntry* entry = nullptr;
    natsStatus status = kvStore_Get(&entry, kv, key_of(id).c_str());
    if (status != NATS_OK) {
      if (status != NATS_NOT_FOUND) log_error("get", nats_error(status, "read a call"));
      return std::nullopt;
    }
    auto stored = decode_call(std::string_view(static_cast<const char*>(kvEntry_Value(entry)),
                                               static_cast<std::size_t>(kvEntry_ValueLen(entry))),
                              false);
    kvEntry_Destroy(entry);
    return stored;
  }

  common::Status write(const StoredCall& record) {
    std::string bytes = encode_call(record, false);
    std::uint64_t revision = 0;
    natsStatus status = kvStore_Put(&revision, kv, key_of(record.call.id).c_str(), bytes.data(),
                                    static_cast<int>(bytes.size()));
    if (status != NATS_OK) return tl::unexpected(nats_error(status, "record a call"));
    return {};
  }

  common::Status publish(const std::string& subject, const std::string& data,
                         const std::string& message_id) {
    natsMsg* message = nullptr;
    natsStatus status = natsMsg_Create(&message, subject.c_str(), nullptr, data.data(),
                                       static_cast<int>(data.size()));
    if (status == NATS_OK) {
      jsPubOptions options;
      jsPubOptions_Init(&options);
      options.MsgId = message_id.c_str();
      jsPubAck* ack = nullptr;
      jsErrCode code{};
      status = js_PublishMsg(&ack, js, message, &options, &code);
      jsPubAck_Destroy(ack);
    }
    natsMsg_Destroy(message);
    if (status != NATS_OK) return tl::unexpected(nats_error(status, "queue a message"));
    return {};
  }

  // How many messages the stream holds by function, and (kCallbacks) callbacks.
  std::map<std::string, std::uint64_t> messages() {
    jsOptions options;
    jsOptions_Init(&options);
    options.Stream.Info.SubjectsFilter = "fastfn.>";
    jsStreamInfo* info = nullptr;
    jsErrCode code{};
    natsStatus status = js_GetStreamInfo(&info, js, kStream, &options, &code);
    std::map<std::string, std::uint64_t> counts;
    if (status != NATS_OK) {
      log_error("info", nats_error(status, "read the stream"));
      return counts;
    }
    const jsStreamStateSubjects* subjects = info->State.Subjects;
    for (int i = 0; subjects != nullptr && i < subjects->Count; ++i) {
      std::string_view subject = subjects->List[i].Subject;
      if (subject == kCallbackSubject) {
        counts[kCallbacks] = subjects->List[i].Msgs;
      } else if (subject.starts_with(kCallPrefix)) {
        if (auto function = unhex(subject.substr(kCallPrefix.size())))
          counts[*function] = subjects->List[i].Msgs;
      }
    }
    jsStreamInfo_Destroy(info);
    return counts;
  }

  // Takes the message of `id` out of `held` (running or sending).
  std::optional<Held> take(std::map<std::string, Held>& held, const std::string& id) {
    std::lock_guard lock(mutex);
    auto it = held.find(id);
    if (it == held.end()) return std::nullopt;
    Held taken = std::move(it->second);
    held.erase(it);
    return taken;
  }
};

NatsCallQueue::NatsCallQueue(std::unique_ptr<Nats> nats) : nats_(std::move(nats)) {}

NatsCallQueue::~NatsCallQueue() = default;

common::Result<std::unique_ptr<NatsCallQueue>> NatsCallQueue::open(const std::string& url,
                                                                   std::size_t result_limit,
                                                                   TimeoutOf timeout_of) {
  auto nats = std::make_unique<Nats>();
  nats->timeout_of = std::move(timeout_of);
  natsOptions* options = nullptr;
  natsStatus status = natsOptions_Create(&options);
  if (status == NATS_OK) status = natsOptions_SetURL(options, url.c_str());
  if (status == NATS_OK) status = natsOptions_SetName(options, "fastfn-gateway");
  if (status == NATS_OK) status = natsOptions_SetMaxReconnect(options, -1);  // ride out restarts
  if (status == NATS_OK) status = natsConnection_Connect(&nats->connection, options);
  natsOptions_Destroy(options);
  if (status != NATS_OK) return tl::unexpected(nats_error(status, "connect"));
  jsOptions js_options;
  jsOptions_Init(&js_options);
  status = natsConnection_JetStream(&nats->js, nats->connection, &js_options);
  if (status != NATS_OK) return tl::unexpected(nats_error(status, "use JetStream"));

  jsStreamConfig stream;
  jsStreamConfig_Init(&stream);
  std::string calls = std::string(kCallPrefix) + ">";
  const char* subjects[] = {calls.c_str(), kCallbackSubject};
  stream.Name = kStream;
  stream.Subjects = subjects;
  stream.SubjectsLen = 2;
  stream.Retention = js_WorkQueuePolicy;
  stream.Storage = js_FileStorage;
  stream.Duplicates = kDuplicateWindowMs * kNanosPerMs;
  jsStreamInfo* info = nullptr;
  jsErrCode code{};
  status = js_AddStream(&info, nats->js, &stream, nullptr, &code);
  if (status != NATS_OK && code == JSStreamNameExistErr)  // made by another version: use it
    status = js_GetStreamInfo(&info, nats->js, kStream, nullptr, &code);
  jsStreamInfo_Destroy(info);
  if (status != NATS_OK) return tl::unexpected(nats_error(status, "create the stream"));

  kvConfig bucket;
  kvConfig_Init(&bucket);
  bucket.Bucket = kBucket;
  bucket.History = 1;
  bucket.TTL = kKeepFinishedMs * kNanosPerMs;
  bucket.StorageType = js_FileStorage;
  status = js_CreateKeyValue(&nats->kv, nats->js, &bucket);
  if (status != NATS_OK) status = js_KeyValue(&nats->kv, nats->js, kBucket);
  if (status != NATS_OK) return tl::unexpected(nats_error(status, "create the bucket"));

  nats->max_payload = static_cast<std::size_t>(natsConnection_GetMaxPayload(nats->connection));
  nats->result_limit = std::min(result_limit, nats->max_payload > 2 * kRecordReserve
                                                  ? nats->max_payload - kRecordReserve
                                                  : nats->max_payload / 2);
  return std::unique_ptr<NatsCallQueue>(new NatsCallQueue(std::move(nats)));
}

common::Status NatsCallQueue::enqueue(const NewCall& call) {
  StoredCall stored;
  stored.call = call;
  stored.next_try_ms = call.now_ms;
  std::string message = encode_call(stored, true);
  if (message.size() > nats_->max_payload)
    return common::fail(Error::Code::kBodyTooLarge,
                        "the call is over the queue's largest message (the NATS server's "
                        "max_payload, " +
                            std::to_string(nats_->max_payload) + " bytes)");
  std::string record = encode_call(stored, false);
  std::string key = key_of(call.id);
  std::uint64_t revision = 0;
  natsStatus status = kvStore_Create(&revision, nats_->kv, key.c_str(), record.data(),
                                     static_cast<int>(record.size()));
  if (status != NATS_OK) {
    Error error = nats_error(status, "record a call");
    if (nats_->read(call.id)) return common::fail(Error::Code::kBadRequest, "the id is taken");
    log_error("enqueue", error);
    return tl::unexpected(error);
  }
  if (auto queued = nats_->publish(subject_of(call.function), message, call.id); !queued) {
    kvStore_Delete(nats_->kv, key.c_str());
    log_error("enqueue", queued.error());
    return queued;
  }
  return {};
}

std::vector<std::string> NatsCallQueue::due_functions(std::int64_t) {
  auto counts = nats_->messages();
  std::map<std::string, std::uint64_t> held;  // a fetch waits in vain for what runs here
  std::lock_guard lock(nats_->mutex);
  for (const auto& [id, message] : nats_->running) ++held[message.record.call.function];
  nats_->callbacks_due = counts[kCallbacks] > nats_->sending.size();
  std::vector<std::string> functions;
  for (const auto& [function, messages] : counts)
    if (function != kCallbacks && messages > held[function]) functions.push_back(function);
  return functions;
}

std::vector<StoredCall> NatsCallQueue::claim(const std::string& function, int limit, std::int64_t) {
  auto ack_wait = [&] {
    return std::min(nats_->timeout_of(function), kLongestAckWait) + kAckMargin;
  };
  natsSubscription* subscription = nats_->subscription_for(
      function, durable_of(function), subject_of(function), ack_wait, "claim");
  if (subscription == nullptr) return {};
  std::vector<StoredCall> claimed;
  for (natsMsg* message : nats_->fetch(subscription, limit)) {
    auto call =
        decode_call(std::string_view(natsMsg_GetData(message),
                                     static_cast<std::size_t>(natsMsg_GetDataLength(message))),
                    true);
    if (!call) {
      log_error("claim", Error{Error::Code::kBadRequest, "a message that is no call: dropped"});
      natsMsg_Term(message, nullptr);
      natsMsg_Destroy(message);
      continue;
    }
    // A message delivered again: its record says how it went (the first time, it is the call's).
    jsMsgMetaData* meta = nullptr;
    bool again = natsMsg_GetMetaData(&meta, message) != NATS_OK || meta->NumDelivered > 1;
    jsMsgMetaData_Destroy(meta);
    auto record = again ? nats_->read(call->call.id) : std::nullopt;
    if (record && (record->state == CallState::kDone || record->state == CallState::kFailed)) {
      // Its gateway recorded the result and died before acknowledging it.
      natsMsg_Ack(message, nullptr);
      natsMsg_Destroy(message);
      continue;
    }
    StoredCall running = record ? std::move(*record) : *call;
    running.call.headers.clear();
    running.call.body.clear();
    running.state = CallState::kRunning;
    running.attempts += 1;
    if (auto written = nats_->write(running); !written) {
      log_error("claim", written.error());
      natsMsg_Nak(message, nullptr);
      natsMsg_Destroy(message);
      continue;
    }
    StoredCall run = running;
    run.call.headers = std::move(call->call.headers);
    run.call.body = std::move(call->call.body);
    {
      std::lock_guard lock(nats_->mutex);
      nats_->running[run.call.id] = Held{message, std::move(running)};
    }
    claimed.push_back(std::move(run));
  }
  return claimed;
}

common::Status NatsCallQueue::finish(const std::string& id, const CallResult& result) {
  auto held = nats_->take(nats_->running, id);
  if (!held) return common::fail(Error::Code::kNotFound, "the call is not running here");
  StoredCall& record = held->record;
  record.state = result.state;
  record.status = result.status;
  record.exit_code = result.exit_code;
  record.duration_seconds = result.duration_seconds;
  record.error = result.error;
  record.content_type = result.content_type;
  record.result_truncated = result.body.size() > nats_->result_limit;
  record.result = result.body.substr(0, nats_->result_limit);
  bool final = result.state != CallState::kRetrying;
  if (final) {
    record.finished_ms = result.now_ms;
    record.callback_state = record.call.callback_url.empty() ? "none" : "pending";
    record.callback_next_ms = result.now_ms;
  } else {
    record.next_try_ms = result.next_try_ms;
  }
  common::Status done = nats_->write(record);
  if (done && final && !record.call.callback_url.empty())
    done = nats_->publish(kCallbackSubject, id, "callback-" + id);
  if (!done) {
    natsMsg_Nak(held->message, nullptr);  // run again rather than lose the result's delivery
  } else if (final) {
    natsMsg_Ack(held->message, nullptr);
  } else {
    natsMsg_NakWithDelay(held->message,
                         std::max<std::int64_t>(result.next_try_ms - result.now_ms, 0), nullptr);
  }
  natsMsg_Destroy(held->message);
  if (!done) log_error("finish", done.error());
  return done;
}

std::vector<StoredCall> NatsCallQueue::claim_callbacks(int limit, std::int64_t) {
  {
    std::lock_guard lock(nats_->mutex);
    if (!nats_->callbacks_due) return {};
  }
  natsSubscription* subscription = nats_->subscription_for(
      kCallbacks, kCallbackDurable, kCallbackSubject, [] { return kCallbackAckWait; },
      "claim_callbacks");
  if (subscription == nullptr) return {};
  std::vector<StoredCall> claimed;
  for (natsMsg* message : nats_->fetch(subscription, limit)) {
    std::string id(natsMsg_GetData(message),
                   static_cast<std::size_t>(natsMsg_GetDataLength(message)));
    auto record = nats_->read(id);
    if (!record || (record->callback_state != "pending" && record->callback_state != "sending")) {
      natsMsg_Ack(message, nullptr);  // delivered already, or forgotten
      natsMsg_Destroy(message);
      continue;
    }
    record->callback_state = "sending";
    record->callback_attempts += 1;
    if (auto written = nats_->write(*record); !written) {
      log_error("claim_callbacks", written.error());
      natsMsg_Nak(message, nullptr);
      natsMsg_Destroy(message);
      continue;
    }
    claimed.push_back(*record);
    std::lock_guard lock(nats_->mutex);
    nats_->sending[id] = Held{message, std::move(*record)};  // id: a copy, not the record's
  }
  return claimed;
}

namespace {

// Ends the delivery of a callback: records `state`, then acknowledges its message (sent, failed)
// or gives it back to the stream until `next_ms` (pending).
common::Status end_delivery(NatsCallQueue::Nats& nats, std::optional<Held> held, const char* state,
                            std::int64_t delay_ms) {
  if (!held) return common::fail(Error::Code::kNotFound, "the callback is not sending here");
  held->record.callback_state = state;
  common::Status written = nats.write(held->record);
  if (!written) {
    log_error("callback", written.error());
    natsMsg_Nak(held->message, nullptr);
  } else if (delay_ms >= 0) {
    natsMsg_NakWithDelay(held->message, delay_ms, nullptr);
  } else {
    natsMsg_Ack(held->message, nullptr);
  }
  natsMsg_Destroy(held->message);
  return written;
}

}  // namespace

common::Status NatsCallQueue::callback_sent(const std::string& id) {
  return end_delivery(*nats_, nats_->take(nats_->sending, id), "sent", -1);
}

common::Status NatsCallQueue::callback_failed(const std::string& id) {
  return end_delivery(*nats_, nats_->take(nats_->sending, id), "failed", -1);
}

common::Status NatsCallQueue::callback_retry(const std::string& id, std::int64_t next_ms) {
  auto held = nats_->take(nats_->sending, id);
  if (held) held->record.callback_next_ms = next_ms;
  return end_delivery(*nats_, std::move(held), "pending",
                      std::max<std::int64_t>(next_ms - unix_now_ms(), 0));
}

std::optional<std::int64_t> NatsCallQueue::next_due_ms() { return std::nullopt; }

std::optional<StoredCall> NatsCallQueue::get(const std::string& id) { return nats_->read(id); }

std::vector<QueueCounts> NatsCallQueue::counts() {
  std::vector<QueueCounts> counts;
  for (auto& [function, messages] : nats_->messages()) {
    if (function == kCallbacks) continue;
    QueueCounts count;
    count.function = function;
    jsConsumerInfo* info = nullptr;
    jsErrCode code{};
    std::uint64_t delivered = 0;
    if (js_GetConsumerInfo(&info, nats_->js, kStream, durable_of(function).c_str(), nullptr,
                           &code) == NATS_OK)
      delivered = static_cast<std::uint64_t>(std::max<std::int64_t>(info->NumAckPending, 0));
    jsConsumerInfo_Destroy(info);
    delivered = std::min(delivered, messages);
    count.running = static_cast<int>(delivered);
    count.queued = static_cast<int>(messages - delivered);
    counts.push_back(count);
  }
  return counts;
}

int NatsCallQueue::prune(std::int64_t) { return 0; }

}  // namespace gateway
