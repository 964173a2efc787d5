// Turns a CGI program's stdout into the HTTP response. Output is held up to 64 KiB so the exit code
// can still choose the status (0: 200 or the CGI Status; non-zero: 500); past that the response
// streams as chunks in the order the program writes, and the exit code arrives as the trailer
// X-Fn-Exit-Code. With --cgi-headers the RFC 3875 header block is parsed first; the program's
// Status keeps its reason phrase, and headers the watchdog sets itself (X-Fn-Exit-Code,
// X-Fn-Request-Id, Trailer) are the watchdog's alone: the program's copies are dropped.
#pragma once

#include <optional>
#include <string>
#include <string_view>

#include "common/child.h"
#include "common/error.h"
#include "common/http_exchange.h"
#include "protocol/cgi_response.h"

namespace watchdog {

struct CgiOutputSettings {
  bool cgi_headers = false;
  std::string_view content_type;  // the default; must outlive the CgiOutput
  std::string_view request_id;    // must outlive the CgiOutput
  std::size_t buffer_limit = 64 * 1024;
};

class CgiOutput {
 public:
  // `response` must outlive this object.
  CgiOutput(common::ClientResponse& response, const CgiOutputSettings& settings);

  // Takes the next stdout bytes; may start streaming the response.
  common::Status feed(std::string_view bytes);

  // The program ended with `exit`; `stderr_text` is appended to the body (--combine-output) when
  // not empty. Completes the response unless it is a local redirect (see local_redirect()) or the
  // output of a program that exited 0 broke the CGI rules (kBadGateway, response not started).
  // A non-zero exit is a 500 whatever the output was: the program failed, and its broken headers
  // (a crash before it printed any) are a symptom of that, not a second fault.
  common::Status finish(const common::ExitStatus& exit, std::string_view stderr_text);

  // After finish(): the path a local redirect (RFC 3875 6.2.2) asks the server to serve instead.
  const std::optional<std::string>& local_redirect() const noexcept { return local_redirect_; }
  bool streaming() const noexcept { return streaming_; }
  // After finish(): why the CGI header block was refused, if it was.
  const std::optional<std::string>& broken() const noexcept { return broken_; }

 private:
  common::Status parse_headers(bool at_eof);
  common::Status start_streaming();
  protocol::Headers response_headers(int exit_code, bool as_trailer) const;
  protocol::BodyFraming head_framing(protocol::BodyFraming framing) const;

  common::ClientResponse& response_;
  CgiOutputSettings settings_;
  std::string buffer_;
  bool headers_done_;
  std::optional<protocol::CgiHead> head_;
  std::optional<std::string> broken_;  // why the CGI header block was refused
  bool streaming_ = false;
  std::optional<std::string> local_redirect_;
};

}  // namespace watchdog
