#include "gateway/watchdog_output.h"

#include "common/logging.h"

namespace gateway {

void LineCutter::feed(std::string_view bytes, const Emit& emit) {
  while (!bytes.empty()) {
    auto newline = bytes.find('\n');
    std::string_view piece = bytes.substr(0, newline);
    if (!cut_) {
      std::size_t room = max_line_ - partial_.size();
      partial_.append(piece.substr(0, room));
      cut_ = piece.size() > room;
    }
    if (newline == std::string_view::npos) return;
    end_line(emit);
    bytes.remove_prefix(newline + 1);
  }
}

void LineCutter::flush(const Emit& emit) {
  if (!partial_.empty() || cut_) end_line(emit);
}

void LineCutter::end_line(const Emit& emit) {
  if (cut_) {
    std::size_t keep =
        partial_.size() > kCutMarker.size() ? partial_.size() - kCutMarker.size() : 0;
    while (keep > 0 && (static_cast<unsigned char>(partial_[keep]) & 0xC0) == 0x80) --keep;
    partial_.resize(keep);
    partial_.append(kCutMarker);
  }
  emit(partial_);
  partial_.clear();
  cut_ = false;
}

WatchdogOutput::WatchdogOutput(std::shared_ptr<FunctionLog> log, Relay relay)
    : log_(std::move(log)), relay_(std::move(relay)) {}

WatchdogOutput::Relay WatchdogOutput::common_relay() {
  return [](std::string_view line) { common::write_log_line(line); };
}

void WatchdogOutput::on_bytes(std::string_view bytes) {
  lines_.feed(bytes, [this](std::string_view line) { emit(line); });
}

void WatchdogOutput::on_end() {
  lines_.flush([this](std::string_view line) { emit(line); });
}

void WatchdogOutput::emit(std::string_view line) {
  relay_(line);
  if (log_) log_->append(line);
}

}  // namespace gateway
