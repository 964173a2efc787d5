// What the gateway does with a watchdog's output (its stdout and stderr, on one pipe read by the
// supervisor's common::OutputPump): each line goes on to the gateway's own stderr as it came (so
// what an operator sees is what the watchdog wrote, text or JSON, in its order, never mixed with
// another line), and into the function's log for /_fn/logs (function_logs.h).
#pragma once

#include <functional>
#include <memory>
#include <string>
#include <string_view>

#include "common/output_pump.h"
#include "gateway/function_logs.h"

namespace gateway {

// Cuts bytes into lines (without their "\n"). A line longer than `max_line` keeps its first bytes
// and ends in kCutMarker; the rest of it is read and dropped, so a line without end never grows a
// buffer. Pure.
class LineCutter {
 public:
  using Emit = std::function<void(std::string_view line)>;
  explicit LineCutter(std::size_t max_line) : max_line_(max_line) {}
  void feed(std::string_view bytes, const Emit& emit);
  // The last line, when it had no newline.
  void flush(const Emit& emit);

 private:
  void end_line(const Emit& emit);

  std::size_t max_line_;
  std::string partial_;
  bool cut_ = false;  // partial_ is full: the rest of the line is dropped
};

// The longest line relayed whole: the watchdog's own lines are far shorter (it cuts its handlers'
// lines at 16 KiB before escaping).
inline constexpr std::size_t kMaxRelayedLine = 64 * 1024;

class WatchdogOutput : public common::OutputPump::Sink {
 public:
  using Relay = std::function<void(std::string_view line)>;
  // `log` may be null (lines are only relayed). `relay` writes one line to the gateway's stderr.
  explicit WatchdogOutput(std::shared_ptr<FunctionLog> log, Relay relay = common_relay());
  void on_bytes(std::string_view bytes) override;
  void on_end() override;

  static Relay common_relay();  // common::write_log_line

 private:
  void emit(std::string_view line);

  std::shared_ptr<FunctionLog> log_;
  Relay relay_;
  LineCutter lines_{kMaxRelayedLine};
};

}  // namespace gateway
