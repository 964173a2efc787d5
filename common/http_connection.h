// One client connection of HttpServer, and the steps of its life, each taken by exactly one thread
// at a time (the server hands the whole object over). On the event loop, never blocking: receive
// what the client sent, parse the head on from where the last piece stopped (protocol/'s
// incremental parser, one buffer per connection, pipelined requests included), answer a malformed
// head with 400/431 or a late one with 408, and drop a body its handler left unread. On a worker
// thread, blocking: serve a whole head with the handler (the body read and the answer written with
// the read and send timeouts), and the pipelined requests already whole in the buffer after it.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/http_exchange.h"
#include "common/unique_fd.h"
#include "protocol/http_parser.h"

namespace common {

struct ServerSettings;

// Called on a worker thread for every well-formed request. It must finish (or abort) the response
// and must not throw.
using RequestHandler = std::function<void(ClientRequest&, ClientResponse&)>;

class HttpConnection {
 public:
  // `settings` must outlive this object.
  HttpConnection(UniqueFd fd, PeerInfo peer, const ServerSettings& settings);

  int fd() const noexcept { return fd_.get(); }

  // --- On the event loop: nothing here blocks.

  enum class Received { kData, kNothing, kClosed };
  // Appends what the socket holds (one read); kClosed at EOF or an error.
  Received receive_now();
  enum class Head { kNone, kPartial, kComplete, kRefused };
  // Parses the buffered bytes of the next request. kComplete: serve() may run. kRefused: the
  // client was answered 400/431 and the connection must close. kNone: not one byte buffered.
  Head parse_head();
  // After parse_head() found a head: whether the request may go to a worker now. It may when it
  // has no body, when its whole body is buffered, and when its body may be larger than
  // kBodyReceivedFirst (that one streams to the handler as it comes, from the worker). Else the
  // loop receives the rest first, so a slow small body costs no thread; a client that holds such
  // a body back for "100 Continue" is sent it here.
  bool body_ready();
  // Answer 408 (a head, or a small body, not whole in time); the connection must close.
  void refuse_late_head() noexcept;
  void refuse_late_body() noexcept;
  enum class Discard { kDone, kMore, kFailed };
  // Drops the buffered bytes of the body left unread by the last handler, within 1 MiB in all.
  // kDone: the next request's bytes follow in the buffer; kFailed: close.
  Discard discard_buffered();
  // Frees the read buffer of a connection that is idle with nothing buffered (an idle connection
  // should cost a few hundred bytes, not the 256 KiB a body read may have grown it to).
  void shrink_idle_buffer();

  // --- On a worker thread.

  enum class Outcome {
    kKeepAlive,  // answered; wait for the next request (parse_head() may find some of it)
    kDiscard,    // answered, its body unread: discard_buffered() until kDone, then go on
    kClose,
  };
  // Serves the complete head parse_head() found, then any pipelined request already whole in the
  // buffer. Never throws. `draining`: answers say Connection: close.
  Outcome serve(const RequestHandler& handler, const std::atomic<bool>& draining) noexcept;

 private:
  Outcome dispatch(const RequestHandler& handler, bool draining);
  // Decodes the chunked body buffered so far (from where the last call stopped); true once it is
  // whole, malformed (the handler answers that), or announced larger than kBodyReceivedFirst (it
  // then streams, as a long Content-Length does).
  bool chunked_body_ready();
  // Waits up to settings.worker_linger for the next request's first bytes; true when some came.
  bool linger_for_next();
  // `may_block`: on a worker, the answer may wait for the send timeout; on the loop it is sent
  // only if the socket takes it at once.
  void refuse(int status, std::string_view reason, bool may_block) noexcept;

  UniqueFd fd_;
  PeerInfo peer_;
  const ServerSettings& settings_;
  std::string buffer_;      // the connection's one reader
  std::size_t offset_ = 0;  // where the next request starts in buffer_
  std::optional<protocol::RequestHeadParser> parser_;
  std::optional<protocol::RequestHead> head_;  // complete, waiting for its body or serve()
  protocol::FramingResult framing_;             // head_'s
  std::size_t body_offset_ = 0;
  std::optional<protocol::BodyDecoder> body_scan_;  // how much of a chunked body is buffered
  std::size_t body_scanned_ = 0;                    // up to here in buffer_
  bool continue_sent_ = false;
  std::optional<ClientRequest> unread_;  // the request whose body is being discarded
  std::uint64_t discard_limit_ = 0;
};

}  // namespace common
