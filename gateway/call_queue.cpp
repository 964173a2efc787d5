#include "gateway/call_queue.h"

namespace gateway {

const char* call_state_name(CallState state) noexcept {
  switch (state) {
    case CallState::kQueued:
      return "queued";
    case CallState::kRunning:
      return "running";
    case CallState::kRetrying:
      return "retrying";
    case CallState::kDone:
      return "done";
    case CallState::kFailed:
      return "failed";
  }
  return "failed";
}

CallState parse_call_state(std::string_view word) noexcept {
  if (word == "queued") return CallState::kQueued;
  if (word == "running") return CallState::kRunning;
  if (word == "retrying") return CallState::kRetrying;
  if (word == "done") return CallState::kDone;
  return CallState::kFailed;
}

CallQueue::Finished CallQueue::finish_and_claim(const std::string& id, const CallResult& result,
                                                const std::string& function, std::int64_t now_ms) {
  Finished finished{finish(id, result), std::nullopt};
  auto next = claim(function, 1, now_ms);
  if (!next.empty()) finished.next = std::move(next.front());
  return finished;
}

std::string headers_text(const protocol::Headers& headers) {
  std::string text;
  for (const auto& header : headers) text += header.name + ": " + header.value + "\r\n";
  return text;
}

protocol::Headers parse_headers_text(std::string_view text) {
  protocol::Headers headers;
  while (!text.empty()) {
    std::size_t end = text.find("\r\n");
    std::string_view line = text.substr(0, end);
    text = end == std::string_view::npos ? std::string_view() : text.substr(end + 2);
    std::size_t colon = line.find(": ");
    if (colon == std::string_view::npos) {
      headers.push_back({std::string(line), ""});
    } else {
      headers.push_back({std::string(line.substr(0, colon)), std::string(line.substr(colon + 2))});
    }
  }
  return headers;
}

}  // namespace gateway
