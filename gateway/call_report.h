// What the gateway reports of its queue: GET /_fn/calls/ID as JSON, and the queue's series of
// /_fn/metrics. Pure.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "gateway/async_calls.h"
#include "gateway/call_queue.h"

namespace gateway {

// {"id", "function", "status", "attempts", "queued_at", ...}: times in RFC 3339 (UTC), the
// function's status and duration once a run ended, the retry's time while retrying, the
// callback's state. The result body is at /_fn/calls/ID/result.
std::string call_json(const StoredCall& call);

// The fastfn_async_* series: queued, running and the oldest queued call's age per function (at
// `now_ms`), runs by status, retries, callbacks.
void append_queue_metrics(std::string& out, const std::vector<QueueCounts>& counts,
                          const AsyncCalls::Counters& counters, std::int64_t now_ms);

}  // namespace gateway
