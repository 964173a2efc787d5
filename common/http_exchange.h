// One request and its response on a client connection of Poco's server. The request side reads the
// body from Poco's stream in pieces (never whole); the response side writes the head and body on the
// socket itself with the protocol/ writers, so that a head and a small body leave in one send, a long
// output streams as chunks, and a chunked body can end with trailers (X-Fn-Exit-Code), which Poco's
// own chunked stream cannot write.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>

#include "common/error.h"
#include "protocol/http_message.h"
#include "protocol/http_parser.h"

namespace common {

class ClientRequest {
 public:
  // `request` must outlive this object.
  explicit ClientRequest(Poco::Net::HTTPServerRequest& request);

  const protocol::RequestHead& head() const noexcept { return head_; }
  std::string_view method() const noexcept { return head_.method; }
  std::string_view target() const noexcept { return head_.target; }
  // The path of the target without the query; for an absolute-form target, its path.
  std::string_view path() const noexcept;
  // nullopt for a chunked body, whose length is known only at its end.
  std::optional<std::uint64_t> content_length() const noexcept { return content_length_; }
  bool has_body() const noexcept { return chunked_ || content_length_.value_or(0) > 0; }
  bool body_complete() const noexcept { return body_done_; }
  std::uint64_t body_bytes_read() const noexcept { return body_read_; }

  // Reads up to `capacity` body bytes as soon as some are available; 0 at the end of the body.
  // kClientGone when the client closed or timed out before the end; kBodyTooLarge past max_body.
  Result<std::size_t> read_body(char* buffer, std::size_t capacity, std::uint64_t max_body);

  std::string remote_host() const;
  std::string remote_port() const;
  bool over_unix_socket() const;

 private:
  Poco::Net::HTTPServerRequest& request_;
  protocol::RequestHead head_;
  std::optional<std::uint64_t> content_length_;
  bool chunked_ = false;
  bool body_done_ = false;
  std::uint64_t body_read_ = 0;
};

class ClientResponse {
 public:
  // `request` and `response` must outlive this object. `head_only` suppresses the body (HEAD).
  ClientResponse(Poco::Net::HTTPServerRequest& request, Poco::Net::HTTPServerResponse& response);

  // Sends the status line and headers (with Date, Content-Length or Transfer-Encoding from
  // `framing`, and Connection: close when the connection will close). `headers` must not hold
  // framing headers; they are removed. A chunked body to an HTTP/1.0 client is sent until close.
  Status start(int status, protocol::Headers headers, protocol::BodyFraming framing);
  // Sends body bytes (framed as a chunk when chunked). Small writes are coalesced with the head.
  Status write(std::string_view data);
  // Ends the body (last chunk with `trailers` when chunked) and flushes. With a length framing,
  // fewer bytes than announced abort the connection instead.
  Status finish(const protocol::Headers& trailers = {});
  // Gives up on the response: the connection is closed without completing it.
  void abort() noexcept;
  // The connection will close after this response (set before start()).
  void close_after() noexcept;

  bool started() const noexcept { return started_; }
  bool finished() const noexcept { return finished_; }
  int status() const noexcept { return status_; }
  std::uint64_t body_bytes() const noexcept { return body_bytes_; }

  // A whole small response in one call: start + write + finish with a length framing.
  Status send(int status, protocol::Headers headers, std::string_view body);

 private:
  Status flush(std::string_view extra = {});
  Status send_all(const struct iovec* parts, int count);

  Poco::Net::HTTPServerResponse& response_;
  int fd_;
  bool head_only_;
  bool http10_;
  bool keep_alive_;
  bool started_ = false;
  bool finished_ = false;
  int status_ = 0;
  protocol::BodyFraming framing_;
  std::uint64_t body_bytes_ = 0;
  std::string pending_;  // bytes not yet sent: the head and coalesced small writes
};

// The JSON error body of DESIGN.md: {"error": ..., "function": ..., "request_id": ...} plus any
// extra string fields, written with RapidJSON.
std::string error_json(std::string_view error, std::string_view function,
                       std::string_view request_id,
                       const protocol::Headers& extra = {});

// A new request id: 32 random hex digits.
std::string new_request_id();

// The request id the client sent (X-Fn-Request-Id), if it is a sane token, else a new one.
std::string request_id_for(const protocol::Headers& headers);

}  // namespace common
