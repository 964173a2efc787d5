#include "watchdog/stderr_pump.h"

#include "common/line_splitter.h"
#include "common/logging.h"

namespace watchdog {
namespace {

// One process's stderr, as log lines tagged with the request it serves.
class TaggedLines : public common::OutputPump::Sink {
 public:
  TaggedLines(const std::string& function, std::shared_ptr<LogTag> tag)
      : function_(function), tag_(std::move(tag)), request_(tag_->request()) {}

  void on_bytes(std::string_view bytes) override {
    std::string request = tag_->request();
    if (request != request_) {  // a new request: what the last one dropped is said under its id
      lines_.end_request(emit());
      request_ = std::move(request);
    }
    lines_.feed(bytes, emit());
  }
  void on_end() override { lines_.flush(emit()); }

 private:
  common::LineSplitter::Emit emit() {
    return [this](std::string_view line) {
      static const auto log = common::logger("fn");
      log->info("{} pid={} request_id={}: {}", function_, tag_->pid(), request_, line);
    };
  }

  const std::string& function_;  // the pump's, which outlives its sinks
  std::shared_ptr<LogTag> tag_;
  common::LineSplitter lines_;  // escapes, and caps per request and per second
  std::string request_;         // the request `lines_` counts for: its per-request cap
};

}  // namespace

void LogTag::set_request(std::string_view request_id) {
  std::lock_guard lock(mutex_);
  request_id_.assign(request_id);
}

std::string LogTag::request() const {
  std::lock_guard lock(mutex_);
  return request_id_.empty() ? "-" : request_id_;
}

void StderrPump::add(common::UniqueFd stderr_fd, std::shared_ptr<LogTag> tag) {
  pump_.add(std::move(stderr_fd), std::make_unique<TaggedLines>(function_, std::move(tag)));
}

}  // namespace watchdog
