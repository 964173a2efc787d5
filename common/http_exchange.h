// One request and its response on a client connection. The request head was parsed by protocol/
// (strict: the smuggling shapes, obs-fold, bad tokens and versions are refused before any handler
// runs); the body is decoded from the connection's one read buffer in pieces, never whole. The
// response is written on the socket with protocol/'s writers: a head and a small body leave in one
// send, a long output streams as chunks, and a chunked body can end with trailers (X-Fn-Exit-Code).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "common/error.h"
#include "common/http_client.h"
#include "protocol/http_message.h"
#include "protocol/http_parser.h"

namespace common {

// What a connection knows about its peer and itself, computed once per connection.
struct PeerInfo {
  std::string remote_host;  // "" over a unix socket
  std::string remote_port;
  bool unix_socket = false;
};

// How a request body's chunked framing is decoded: trailers under a head's limits; the body's
// size is for the handler to limit.
inline constexpr protocol::Limits kRequestBodyLimits{64 * 1024, 100, UINT64_MAX};

// The client sent "Expect: 100-continue" (HTTP/1.1): it may hold its body back until it is sent
// "100 Continue".
bool expects_continue(const protocol::RequestHead& head);

class ClientRequest {
 public:
  // `buffer` is the connection's read buffer; the body starts at `body_offset`. `buffer`, `peer`
  // must outlive this object. `read_timeout` bounds each wait for more body bytes.
  ClientRequest(int fd, std::string& buffer, std::size_t body_offset, protocol::RequestHead head,
                protocol::BodyFraming framing, const PeerInfo& peer,
                std::chrono::milliseconds read_timeout);

  const protocol::RequestHead& head() const noexcept { return head_; }
  std::string_view method() const noexcept { return head_.method; }
  std::string_view target() const noexcept { return head_.target; }
  // The path of the target without the query; for an absolute-form target, its path.
  std::string_view path() const noexcept;
  // nullopt for a chunked body, whose length is known only at its end.
  std::optional<std::uint64_t> content_length() const noexcept;
  bool has_body() const noexcept { return framing_.kind != protocol::BodyKind::kNone; }
  bool body_complete() const noexcept { return decoder_.done(); }
  std::uint64_t body_bytes_read() const noexcept { return decoder_.body_bytes(); }

  // The next piece of the body, as soon as some is available; empty at its end. The view points
  // into the connection buffer and is valid until the next call. Sends "100 Continue" first when
  // the client asked for it. kClientGone when the client closed or stalled past the read timeout,
  // kBadRequest for a malformed chunked body, kBodyTooLarge past `max_body`.
  Result<std::string_view> read_body(std::uint64_t max_body);
  // The whole body, read to its end; errors as read_body's.
  Result<std::string> read_whole_body(std::uint64_t max_body);
  // Decodes and drops the body bytes already in the buffer, never waiting for more: how the event
  // loop discards a body its handler left unread. true once the body is complete (end_offset() is
  // then the next request), false when more bytes are needed; errors as read_body's.
  Result<bool> skip_buffered_body(std::uint64_t max_body);
  // The client asked for "100 Continue" and has not been sent it: it may never send the body.
  bool awaiting_continue() const noexcept { return continue_pending_; }
  // The connection already sent "100 Continue" (the event loop does, for a small body it waits
  // for): read_body() must not send another.
  void continue_sent() noexcept { continue_pending_ = false; }

  const PeerInfo& peer() const noexcept { return peer_; }
  // The client's socket, to poll for its hang-up while the answer is being made.
  int fd() const noexcept { return fd_; }
  // After its socket polled readable: true when the client closed or reset the connection,
  // false when the bytes are a pipelined request (which stays in the socket).
  bool peer_gone() const noexcept;
  // Where the next pipelined request starts in the buffer, once the body is complete.
  std::size_t end_offset() const noexcept { return offset_; }

 private:
  // The next piece of the body from the buffer: a view (empty at the end of the body), or
  // nullopt when the buffer holds no more of it.
  Result<std::optional<std::string_view>> next_buffered(std::uint64_t max_body);
  Status receive_more();

  int fd_;
  std::string& buffer_;
  std::size_t offset_;
  protocol::RequestHead head_;
  protocol::BodyFraming framing_;
  protocol::BodyDecoder decoder_;
  const PeerInfo& peer_;
  std::chrono::milliseconds read_timeout_;
  bool continue_pending_;
};

class ClientResponse {
 public:
  // `request` must outlive this object. `keep_alive` says whether the server would keep the
  // connection open (not draining); the request's own Connection header and version are applied.
  ClientResponse(int fd, const ClientRequest& request, bool keep_alive);
  // A response kept in `captured` instead of sent: the status, the headers as they would be
  // sent (trailers appended), and at most `body_limit` bytes of the body (then `truncated`).
  // How the gateway runs a queued call through its own edge without a connection. `captured`
  // must outlive this object.
  ClientResponse(HttpReply& captured, std::size_t body_limit, const ClientRequest& request);

  // Sends the status line and headers (with Date, Content-Length or Transfer-Encoding from
  // `framing`, and Connection: close when the connection will close). `headers` must not hold
  // framing headers; they are removed. A chunked body to an HTTP/1.0 client is sent until close.
  // `status` is a final one (200 and up): an interim 1xx is never an answer. `reason` is the
  // phrase of the status line: a function's own, relayed; empty for the standard one.
  Status start(int status, protocol::Headers headers, protocol::BodyFraming framing,
               std::string_view reason = {});
  // Sends body bytes (framed as a chunk when chunked). Nothing is held back: streams stay live.
  Status write(std::string_view data);
  // Ends the body (last chunk with `trailers` when chunked) and flushes. With a length framing,
  // fewer bytes than announced abort the connection instead.
  Status finish(const protocol::Headers& trailers = {});
  // A whole small response in one send: start + write + finish with a length framing.
  Status send(int status, protocol::Headers headers, std::string_view body,
              std::string_view reason = {});
  // Gives up on the response: the connection is shut down without completing it.
  void abort() noexcept;
  // The connection will close after this response (effective in the head when before start()).
  void close_after() noexcept { keep_alive_ = false; }
  // Runs `callback` once, just before the last bytes of the response leave, or when it is
  // aborted: what a client has seen answered is then counted already (metrics read right after
  // the answer include it).
  void on_complete(std::function<void()> callback) { on_complete_ = std::move(callback); }
  // The head will say X-Duration-Seconds: the time from `arrival` to the head (OpenFaaS's
  // watchdogs' header; for a streamed answer, the time to its first bytes). Before start().
  void time_from(std::chrono::steady_clock::time_point arrival) noexcept { arrival_ = arrival; }

  // A response to HEAD: the head goes out, body bytes are counted and dropped.
  bool head_only() const noexcept { return head_only_; }
  bool started() const noexcept { return started_; }
  bool finished() const noexcept { return finished_; }
  bool keep_alive() const noexcept { return keep_alive_ && !aborted_; }
  bool aborted() const noexcept { return aborted_; }
  int status() const noexcept { return status_; }
  std::uint64_t body_bytes() const noexcept { return body_bytes_; }

 private:
  Status flush(std::string_view extra = {});
  void complete() noexcept;

  const ClientRequest& request_;
  int fd_;
  bool head_only_;
  bool http10_;
  bool keep_alive_;
  bool started_ = false;
  bool finished_ = false;
  bool aborted_ = false;
  int status_ = 0;
  protocol::BodyFraming framing_;
  std::uint64_t body_bytes_ = 0;
  std::string pending_;  // bytes not yet sent: the head, or a chunk's closing CRLF
  std::function<void()> on_complete_;
  std::optional<std::chrono::steady_clock::time_point> arrival_;
  HttpReply* captured_ = nullptr;  // set: nothing is sent, see the capturing constructor
  std::size_t capture_limit_ = 0;
};

// Writes all of `parts` on a socket (sendmsg, MSG_NOSIGNAL), however many sends it takes; the
// socket's send timeout bounds each. kClientGone on failure.
Status send_all(int fd, std::string_view first, std::string_view second = {});

// The JSON error body of DESIGN.md: {"error": ..., "function": ..., "request_id": ...} plus any
// extra string fields, written with RapidJSON.
std::string error_json(std::string_view error, std::string_view function,
                       std::string_view request_id, const protocol::Headers& extra = {});

// A new request id: 32 random hex digits.
std::string new_request_id();

// An id a client may choose (X-Fn-Request-Id, X-Call-Id): 1 to 128 of [A-Za-z0-9._-].
bool is_sane_id(std::string_view id) noexcept;

// The request id the client sent (X-Fn-Request-Id), if it is a sane token, else a new one.
std::string request_id_for(const protocol::Headers& headers);

}  // namespace common
