// Incremental HTTP/1.1 parsing over bytes, in the style of picohttpparser: every call takes the bytes
// received so far and answers complete (with how many bytes it consumed), incomplete (feed more), or
// an error with its reason. No I/O, no allocation beyond the parsed values, so it can be fuzzed.
//
// It is strict where leniency has caused request smuggling: obs-fold, invalid token characters,
// duplicate or conflicting Content-Length, Content-Length together with Transfer-Encoding, any
// Transfer-Encoding other than a final "chunked", and negative or overflowing lengths are errors.
// Bare "\n" line endings are accepted (handlers written with print() use them).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/http_message.h"

namespace protocol {

struct Limits {
  std::size_t max_head_bytes = 64 * 1024;  // request/status line + headers + blank line
  std::size_t max_headers = 100;
  std::uint64_t max_body_bytes = 10 * 1024 * 1024;
};

enum class ParseError {
  kHeadTooLarge,
  kTooManyHeaders,
  kBodyTooLarge,
  kBadRequestLine,      // method, target or version malformed
  kBadStatusLine,
  kBadVersion,          // not HTTP/1.0 or HTTP/1.1
  kBadHeader,           // invalid name token, missing colon, control characters, obs-fold
  kBadContentLength,    // not a plain decimal, negative, overflowing, or two different values
  kDuplicateContentLength,
  kLengthAndChunked,    // Content-Length and Transfer-Encoding together
  kBadTransferEncoding, // anything but a final "chunked"
  kBadChunk,            // chunk size line, chunk terminator or trailer malformed
};

// A short lowercase sentence naming the error ("header too large", ...), for logs and 4xx bodies.
std::string_view describe(ParseError error) noexcept;

enum class ParseStatus { kComplete, kIncomplete, kError };

// The outcome of parsing a head. On kComplete, `consumed` is the length of the head including the
// blank line and `head` is filled; on kError, `error` is set; on kIncomplete, nothing is.
template <class Head>
struct HeadResult {
  ParseStatus status = ParseStatus::kIncomplete;
  std::size_t consumed = 0;
  Head head;
  ParseError error = ParseError::kBadHeader;
};

// Parses a request head from the start of `bytes`. kIncomplete when the blank line has not arrived
// yet and `bytes` is still within limits.max_head_bytes; kHeadTooLarge once it is not.
HeadResult<RequestHead> parse_request_head(std::string_view bytes, const Limits& limits = {});

// Parses a response head ("HTTP/1.1 200 OK"; the reason phrase may be empty).
HeadResult<ResponseHead> parse_response_head(std::string_view bytes, const Limits& limits = {});

// The same parse, incremental (picohttpparser's `last_len`): each call is given every byte of the
// head received so far, and looks only at the bytes it has not seen, keeping the lines already
// parsed. Calling parse_request_head again after every read of a head that trickles in a byte at a
// time is quadratic (a 64 KiB head costs seconds of CPU); this is linear. For every input each call
// answers what parse_request_head / parse_response_head answer for the same bytes, and a fault is
// reported as soon as the line holding it is complete.
template <class Head>
class HeadParser {
 public:
  explicit HeadParser(const Limits& limits = {}) : limits_(limits) {}

  // REQUIRES: `bytes` starts with the bytes of the previous call (the same head, grown). After
  // kComplete or kError, further calls return the same status and ignore their input.
  ParseStatus parse(std::string_view bytes);

  ParseError error() const noexcept { return error_; }
  // The head's length including its blank line, once kComplete.
  std::size_t consumed() const noexcept { return consumed_; }
  // The parsed head, once kComplete (partly filled before).
  Head& head() noexcept { return head_; }

 private:
  ParseStatus take_line(std::string_view line);
  ParseStatus fail(ParseError error);

  Limits limits_;
  std::size_t line_start_ = 0;  // where the line being received starts
  std::size_t scanned_ = 0;     // bytes already searched for a line feed
  bool have_first_line_ = false;
  Head head_;
  ParseStatus status_ = ParseStatus::kIncomplete;
  ParseError error_ = ParseError::kBadHeader;
  std::size_t consumed_ = 0;
};

using RequestHeadParser = HeadParser<RequestHead>;
using ResponseHeadParser = HeadParser<ResponseHead>;

// How a message body is delimited.
enum class BodyKind { kNone, kLength, kChunked, kUntilClose };
struct BodyFraming {
  BodyKind kind = BodyKind::kNone;
  std::uint64_t length = 0;  // for kLength
};

struct FramingResult {
  bool ok = true;
  BodyFraming framing;
  ParseError error = ParseError::kBadContentLength;
  // The connection must close after this message, whatever its Connection header says: an
  // HTTP/1.0 message with Transfer-Encoding (RFC 9112 6.1: its sender may not know chunked and
  // may have left bytes behind that would be read as the next message).
  bool close_after = false;
};

// The body framing of a request (RFC 9112 section 6.3): chunked, Content-Length, or none.
FramingResult request_framing(const RequestHead& head);

// The body framing of a response to a request with `request_method`: none for HEAD, 1xx, 204 and
// 304; else chunked, Content-Length, or until-close when neither is present.
FramingResult response_framing(const ResponseHead& head, std::string_view request_method = "GET");

// Decodes a body incrementally, either a fixed length or chunked, without copying: each call returns
// a view into the bytes it was given. Trailer fields of a chunked body are collected.
class BodyDecoder {
 public:
  // REQUIRES: framing.kind is kNone, kLength or kChunked (until-close needs the connection's EOF,
  // which only the caller sees).
  BodyDecoder(BodyFraming framing, const Limits& limits = {});

  struct Step {
    ParseStatus status = ParseStatus::kIncomplete;  // kComplete once the whole body was decoded
    std::size_t consumed = 0;                       // bytes of the input used by this step
    std::string_view data;                          // body bytes, a view into the input
    ParseError error = ParseError::kBadChunk;
  };

  // Decodes from the start of `bytes`. A step returns at most one run of body data; call again with
  // the unconsumed rest until it answers kComplete, kError, or kIncomplete with nothing consumed.
  Step next(std::string_view bytes);

  bool done() const noexcept { return state_ == State::kDone; }
  std::uint64_t body_bytes() const noexcept { return body_bytes_; }
  // The body bytes decoded so far plus those the current chunk (or the fixed length) still
  // announces: a lower bound of the whole body's size, known as soon as a chunk-size line is
  // parsed, so a caller with a smaller limit can refuse the body before its data arrives.
  std::uint64_t announced_bytes() const noexcept { return body_bytes_ + remaining_; }
  const Headers& trailers() const noexcept { return trailers_; }

 private:
  enum class State { kLength, kChunkSize, kChunkData, kChunkDataEnd, kTrailers, kDone, kFailed };
  Step advance(std::string_view bytes);
  Step chunk_size(std::string_view bytes);
  Step chunk_data(std::string_view bytes);
  Step chunk_data_end(std::string_view bytes);
  Step trailer_line(std::string_view bytes);
  Step length_data(std::string_view bytes);
  Step fail(ParseError error);
  // Trailer fields follow the head's field rules; defined in http_parser.cpp beside them.
  static bool parse_trailer_field(std::string_view line, Headers& trailers);

  Limits limits_;
  State state_;
  ParseError error_ = ParseError::kBadChunk;
  std::uint64_t remaining_ = 0;
  std::uint64_t body_bytes_ = 0;
  std::size_t trailer_bytes_ = 0;
  Headers trailers_;
};

// A whole message, head and body, parsed from a stream of slices: feed() any split of the bytes and
// it gives the same result as one feed of all of them. Bytes after the message are left unconsumed
// (pipelining): `consumed()` says where the next message starts.
template <class Head>
struct Message {
  Head head;
  std::string body;
  Headers trailers;
};

template <class Head>
class MessageParser {
 public:
  explicit MessageParser(const Limits& limits = {}, std::string_view request_method = "GET");

  // Appends `bytes` and parses as far as possible. After kComplete or kError, further feeds return
  // the same status and ignore their input.
  ParseStatus feed(std::string_view bytes);

  // Tells the parser the input ended; completes an until-close response body, or answers kError
  // (kBadHeader / kBadChunk) for a message cut short, or kIncomplete when no byte arrived at all.
  ParseStatus finish();

  const Message<Head>& message() const noexcept { return message_; }
  ParseError error() const noexcept { return error_; }
  // Bytes of all input fed so far that belong to the message, once kComplete.
  std::size_t consumed() const noexcept { return consumed_; }
  // The fed bytes not yet consumed (after kComplete: the start of the next pipelined message).
  std::string_view unconsumed() const noexcept;

 private:
  ParseStatus parse();
  ParseStatus parse_head();
  ParseStatus decode_body();
  ParseStatus read_until_close();
  ParseStatus fail(ParseError error);

  Limits limits_;
  std::string request_method_;
  std::string buffer_;
  std::size_t offset_ = 0;  // into buffer_
  std::size_t consumed_ = 0;
  HeadParser<Head> head_parser_;
  bool have_head_ = false;
  BodyFraming framing_;
  std::optional<BodyDecoder> decoder_;
  Message<Head> message_;
  ParseStatus status_ = ParseStatus::kIncomplete;
  ParseError error_ = ParseError::kBadHeader;
};

using RequestParser = MessageParser<RequestHead>;
using ResponseParser = MessageParser<ResponseHead>;

// True when `name` is a valid RFC 9110 token (header names, methods).
bool is_token(std::string_view name) noexcept;

}  // namespace protocol
