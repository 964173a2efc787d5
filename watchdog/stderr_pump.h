// Forwards the stderr of every hot process to the log, line by line, with the function name, pid
// and the request the process is serving. Hot processes write stderr whether or not a request is
// in flight, so a reader must always be there, or a chatty handler blocks: one common::OutputPump
// thread reads them all. The lines are escaped and capped (common::LineSplitter): per request the
// process serves (what it writes between two requests counts for the one before) and per second.
#pragma once

#include <sys/types.h>

#include <memory>
#include <mutex>
#include <string>

#include "common/output_pump.h"
#include "common/unique_fd.h"

namespace watchdog {

// Shared by a hot process (which sets the request it serves) and the pump (which logs with it).
class LogTag {
 public:
  explicit LogTag(pid_t pid) : pid_(pid) {}
  pid_t pid() const noexcept { return pid_; }
  void set_request(std::string_view request_id);
  std::string request() const;

 private:
  pid_t pid_;
  mutable std::mutex mutex_;
  std::string request_id_;
};

class StderrPump {
 public:
  // `function` names the log lines. Starts the thread; throws std::system_error if epoll fails.
  explicit StderrPump(std::string function) : function_(std::move(function)) {}
  // Stops the thread; logs what the pipes still hold, and the partial last lines.
  ~StderrPump() = default;
  StderrPump(const StderrPump&) = delete;
  StderrPump& operator=(const StderrPump&) = delete;

  // Takes ownership of a process's stderr; it is read until EOF and then closed.
  void add(common::UniqueFd stderr_fd, std::shared_ptr<LogTag> tag);

 private:
  std::string function_;
  common::OutputPump pump_;
};

}  // namespace watchdog
