// Serialises HTTP/1.1 heads and chunked framing into a caller's buffer, so a whole head goes out in
// one write. The hot-request framing is the stdio protocol of DESIGN.md: what a hot handler reads.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/http_message.h"

namespace protocol {

// True for the hop-by-hop headers that never cross a proxy: Connection, Keep-Alive, TE,
// Transfer-Encoding, Upgrade, Trailer and every Proxy-* header.
bool is_hop_by_hop(std::string_view name) noexcept;

// Appends "METHOD target HTTP/1.x\r\n", the headers, and the blank line.
void append_request_head(std::string& out, const RequestHead& head);

// Appends "HTTP/1.x status reason\r\n", the headers and the blank line. The reason is written as
// given (a program's own phrase is kept); an empty one, or one with a control byte that would break
// the status line, is replaced by the standard phrase.
void append_response_head(std::string& out, const ResponseHead& head);

// What a hot handler is told besides the client's request.
struct HotRequestMeta {
  std::string_view request_id;
  std::int64_t deadline_unix_ms = 0;
  std::uint64_t content_length = 0;
};

// Appends the head of a request as a hot handler reads it: the client's method, target and headers
// with hop-by-hop headers, any Content-Length, X-Fn-Request-Id and X-Fn-Deadline-Ms removed, then
// Content-Length (always, 0 for no body), X-Fn-Request-Id and X-Fn-Deadline-Ms from `meta`.
// The body (exactly meta.content_length bytes) is written by the caller after it.
void append_hot_request_head(std::string& out, const RequestHead& client, const HotRequestMeta& meta);

// Appends one chunk of a chunked body ("size-hex\r\ndata\r\n"). Nothing for empty data, since an
// empty chunk would end the body.
void append_chunk(std::string& out, std::string_view data);

// Appends the last chunk, the trailer fields, and the final blank line.
void append_last_chunk(std::string& out, const Headers& trailers = {});

}  // namespace protocol
