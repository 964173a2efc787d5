// One request/response round trip with a hot process: the poll loop that writes the framed request
// into the handler's stdin while it parses the response from its stdout with protocol/ and relays it
// to the client. A response with a Content-Length up to 64 KiB is held until complete, so that bytes
// after it (garbage) can still turn it into a 502; a chunked or larger one streams as it arrives.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"
#include "protocol/http_parser.h"
#include "watchdog/hot_process.h"
#include "watchdog/runner.h"

namespace watchdog {

class HotExchange {
 public:
  // `process` and `invocation` must outlive this object.
  HotExchange(HotProcess& process, Invocation& invocation, std::uint64_t max_body);

  // Runs the exchange. On error, the process is poisoned and, when the response had started, the
  // client connection is aborted.
  common::Status run();

 private:
  enum class Phase { kHead, kBody, kDone };

  common::Status prepare_request();
  common::Status refill_request();
  common::Status write_request();
  common::Status read_response();
  common::Status parse_response();
  common::Status start_response();
  common::Status take_body();
  common::Status complete();
  // The handler's headers as the client gets them: hop-by-hop removed, our request id set.
  protocol::Headers client_headers();
  common::Status broken(StopReason reason, common::Error::Code code, std::string why);

  HotProcess& process_;
  Invocation& invocation_;
  std::uint64_t max_body_;
  std::string out_;  // request bytes not yet written to stdin
  std::size_t out_offset_ = 0;
  bool stdin_closed_ = false;
  std::size_t offset_ = 0;  // into process_.stdout_buffer_
  Phase phase_ = Phase::kHead;
  protocol::ResponseHead head_;
  std::optional<protocol::BodyDecoder> decoder_;
  bool hold_ = false;  // holding a small Content-Length body until it is complete
  std::string held_;
};

}  // namespace watchdog
