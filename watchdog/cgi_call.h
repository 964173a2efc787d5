// One run of a CGI program for one request: the poll loop that streams the request body into the
// program's stdin while it reads stdout into the response and stderr into the log, all at once, so
// neither side can fill a pipe and deadlock the other. Memory stays bounded whatever the sizes.
#pragma once

#include <chrono>
#include <string>
#include <string_view>

#include "common/child.h"
#include "common/error.h"
#include "common/http_exchange.h"
#include "common/line_splitter.h"
#include "watchdog/cgi_output.h"

namespace watchdog {

struct CgiCallSettings {
  std::string_view function;    // for log lines
  std::string_view request_id;  // for log lines
  bool combine_output = false;  // keep stderr to append it to the body
  std::uint64_t max_body = 0;
  std::chrono::steady_clock::time_point deadline;
};

class CgiCall {
 public:
  // All references must outlive this object. `body` is nullptr when there is no request body.
  CgiCall(common::Child& child, common::ClientRequest* body, CgiOutput& output,
          const CgiCallSettings& settings);

  // Runs until the program exited and its output ended. Errors: kTimeout (the group was killed),
  // kClientGone, kBodyTooLarge; the child is stopped and reaped in every case.
  common::Result<common::ExitStatus> run();

  // What the program wrote on stderr, kept only with combine_output (at most 1 MiB).
  const std::string& stderr_text() const noexcept { return stderr_text_; }

 private:
  common::Status refill_stdin();
  common::Status write_stdin();
  common::Status read_stdout();
  void read_stderr();
  void log_line(std::string_view line);
  common::Result<common::ExitStatus> stop(common::Error error);

  common::Child& child_;
  common::ClientRequest* body_;
  CgiOutput& output_;
  CgiCallSettings settings_;
  std::string_view pending_;  // body bytes from the client not yet in the pipe (a view into the
                              // connection buffer, valid until the next read_body)
  common::LineSplitter stderr_lines_;
  std::string stderr_text_;
};

}  // namespace watchdog
