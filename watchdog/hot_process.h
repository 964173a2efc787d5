// One hot handler (format http, Fn's hot functions): a long-lived child that reads requests framed
// as HTTP/1.1 on its stdin and writes framed responses on its stdout, one at a time. It owns ONE
// read buffer for its whole life (a reader made per request can lose bytes read ahead: the lesson of
// of-watchdog's afterburn mode). Anything off-protocol poisons it: it must be killed and replaced.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "common/process_state.h"
#include "watchdog/pooled_process.h"

namespace watchdog {

class HotProcess : public PooledProcess {
 public:
  // Starts the handler. kBadGateway when it cannot be executed, kUnavailable when the fds or
  // processes it needs cannot be had. Never throws (but for std::bad_alloc).
  static common::Result<std::unique_ptr<PooledProcess>> spawn(const SpawnContext& context);

  // Writes the request (head, then `held` or else the body streamed from the client) while it
  // reads the response and relays it to the client. On an error the process is to be stopped
  // (Settled::stop). REQUIRES: the process was idle-clean (check_idle()).
  Served serve(Invocation& invocation, const std::optional<std::string>& held,
               std::uint64_t max_body, const Done& done) override;

  // While idle: false (and poisoned) when it has exited, wrote anything, read after its last
  // answer, or left bytes of its last request unread. With `dispatching`, its pipe events start
  // anew.
  bool check_idle(bool dispatching) override;

  // It serves as soon as it runs: its stdin buffers the first request.
  common::Result<bool> check_started(Clock::time_point) override { return true; }

 private:
  HotProcess(common::Child child, std::shared_ptr<LogTag> tag, std::uint64_t generation,
             Clock::time_point now);
  static common::Result<std::unique_ptr<PooledProcess>> spawn_or_throw(const SpawnContext& context);
  bool out_of_step_while_idle(bool dispatching);

  std::unique_ptr<common::PipeOrder> order_;  // before child_ in destruction: its pipes are open
  common::ProcessState process_state_;
  std::shared_ptr<LogTag> tag_;
  std::string stdout_buffer_;  // the one reader: bytes read from stdout and not yet consumed
};

}  // namespace watchdog
