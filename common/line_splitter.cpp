#include "common/line_splitter.h"

#include <algorithm>

#include <fmt/format.h>

#include "common/logging.h"

namespace common {
namespace {

std::string_view without_cr(std::string_view line) {
  if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
  return line;
}

}  // namespace

bool TokenBucket::take(std::uint64_t tokens, Clock::time_point now) {
  auto burst = static_cast<double>(burst_);
  if (tokens_ < 0) {
    tokens_ = burst;
  } else if (now > last_) {
    double seconds = std::chrono::duration<double>(now - last_).count();
    tokens_ = std::min(burst, tokens_ + seconds * static_cast<double>(per_second_));
  }
  last_ = std::max(last_, now);
  if (static_cast<double>(tokens) > tokens_) return false;
  tokens_ -= static_cast<double>(tokens);
  return true;
}

LineSplitter::LineSplitter(std::size_t max_line, LogCaps caps)
    : max_line_(max_line > 0 ? max_line : 1), caps_(caps), bucket_(caps.per_second, caps.burst) {}

void LineSplitter::feed(std::string_view bytes, const Emit& emit, Clock::time_point now) {
  while (!bytes.empty()) {
    auto newline = bytes.find('\n');
    std::size_t room = max_line_ - partial_.size();
    bool too_long = newline == std::string_view::npos ? bytes.size() >= room : newline > room;
    if (too_long) {  // emit a full piece now rather than buffer a line without bound
      partial_.append(bytes.substr(0, room));
      log_line(partial_, partial_.size(), emit, now);
      partial_.clear();
      bytes.remove_prefix(room);
      just_cut_ = true;
      continue;
    }
    if (newline == std::string_view::npos) {
      partial_.append(bytes);
      return;
    }
    if (partial_.empty()) {
      emit_line(without_cr(bytes.substr(0, newline)), newline + 1, emit, now);
    } else {
      partial_.append(bytes.substr(0, newline));
      emit_line(without_cr(partial_), partial_.size() + 1, emit, now);
      partial_.clear();
    }
    bytes.remove_prefix(newline + 1);
  }
}

void LineSplitter::flush(const Emit& emit, Clock::time_point now) {
  if (!partial_.empty()) {
    emit_line(without_cr(partial_), partial_.size(), emit, now);
    partial_.clear();
  }
  end_request(emit);
}

void LineSplitter::end_request(const Emit& emit) {
  say_rate_drops(emit);
  if (request_dropped_ > 0)
    emit(fmt::format("stderr truncated: dropped {} bytes", request_dropped_));
  request_logged_ = 0;
  request_dropped_ = 0;
  request_capped_ = false;
}

void LineSplitter::emit_line(std::string_view line, std::size_t written, const Emit& emit,
                             Clock::time_point now) {
  // A line of exactly max_line bytes was already emitted when it filled up; its newline ends it
  // rather than starting an empty line.
  bool ends_cut_line = just_cut_ && line.empty();
  just_cut_ = false;
  if (!ends_cut_line) log_line(line, written, emit, now);
}

// The per-request cap is checked first, so lines past it do not use up the rate of the requests
// that follow on the same process.
void LineSplitter::log_line(std::string_view line, std::size_t written, const Emit& emit,
                            Clock::time_point now) {
  if (request_capped_) {  // not even escaped: a flood past the cap costs only its reading
    request_dropped_ += written;
    return;
  }
  std::string storage;
  std::string_view text = escape_log_text(line, storage);
  std::uint64_t cost = text.size() + kLogLineOverhead;
  if (request_logged_ + cost > caps_.per_request) {
    // Said at once, not only at the end: a run stopped by its timeout never gets to the end.
    emit(fmt::format("stderr truncated: over {} bytes of log for this request, dropping the rest",
                     caps_.per_request));
    request_capped_ = true;
    request_dropped_ += written;
    return;
  }
  if (!bucket_.take(cost, now)) {
    rate_dropped_ += written;
    return;
  }
  say_rate_drops(emit);
  request_logged_ += cost;
  emit(text);
}

void LineSplitter::say_rate_drops(const Emit& emit) {
  if (rate_dropped_ == 0) return;
  emit(fmt::format("stderr rate limited: dropped {} bytes (over {} bytes per second)",
                   rate_dropped_, caps_.per_second));
  rate_dropped_ = 0;
}

}  // namespace common
