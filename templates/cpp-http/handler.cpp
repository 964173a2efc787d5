// A hot C++ function (fastfn --format http): one process answers many requests. fastfn writes one
// HTTP/1.1 request at a time to stdin, framed by Content-Length, and reads one response from
// stdout; this loop parses them with fastfn's protocol library over one buffer that lives as long
// as the process (bytes read past a request stay in it) and answers with read(2)/write(2), no
// stdio streams. GET and HEAD answer "ok" (what scripts/bench measures); POST and PUT echo the body.
// Logs go to stderr, which fastfn logs line by line; stdout is the protocol.
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <optional>
#include <string>
#include <string_view>

#include "protocol/http_message.h"
#include "protocol/http_parser.h"
#include "protocol/http_writer.h"

namespace {

constexpr std::size_t kReadSize = 64 * 1024;
constexpr std::size_t kInlineBody = 64 * 1024;  // smaller bodies go out in the head's write

// The one reader of stdin for the life of the process.
class StdinReader {
 public:
  std::string_view pending() const { return std::string_view(buffer_).substr(offset_); }
  void consume(std::size_t n) { offset_ += n; }

  // Appends what read(2) gives; false at end of input or on an error.
  bool fill() {
    buffer_.erase(0, offset_);  // the unconsumed rest is usually empty or a few bytes
    offset_ = 0;
    const std::size_t old_size = buffer_.size();
    buffer_.resize(old_size + kReadSize);
    ssize_t n;
    do {
      n = ::read(STDIN_FILENO, buffer_.data() + old_size, kReadSize);
    } while (n < 0 && errno == EINTR);
    buffer_.resize(old_size + static_cast<std::size_t>(n > 0 ? n : 0));
    return n > 0;
  }

 private:
  std::string buffer_;
  std::size_t offset_ = 0;
};

struct Request {
  protocol::RequestHead head;
  std::string body;
};

// Fails with a reason (the stream is out of step; nothing after it can be trusted).
struct ReadError {
  std::string reason;
};

// The next request; std::nullopt with an empty reason when stdin closed between requests.
std::optional<Request> read_request(StdinReader& in, const protocol::Limits& limits, ReadError& error) {
  Request request;
  for (;;) {
    auto parsed = protocol::parse_request_head(in.pending(), limits);
    if (parsed.status == protocol::ParseStatus::kComplete) {
      in.consume(parsed.consumed);
      request.head = std::move(parsed.head);
      break;
    }
    if (parsed.status == protocol::ParseStatus::kError) {
      error.reason = std::string(protocol::describe(parsed.error));
      return std::nullopt;
    }
    const bool had_bytes = !in.pending().empty();
    if (!in.fill()) {
      if (had_bytes) error.reason = "stdin closed inside a request head";
      return std::nullopt;
    }
  }
  auto framing = protocol::request_framing(request.head);
  if (!framing.ok) {
    error.reason = std::string(protocol::describe(framing.error));
    return std::nullopt;
  }
  protocol::BodyDecoder decoder(framing.framing, limits);
  while (framing.framing.kind != protocol::BodyKind::kNone) {
    auto step = decoder.next(in.pending());
    in.consume(step.consumed);
    request.body.append(step.data);
    if (step.status == protocol::ParseStatus::kComplete) break;
    if (step.status == protocol::ParseStatus::kError) {
      error.reason = std::string(protocol::describe(step.error));
      return std::nullopt;
    }
    if (step.consumed == 0 && !in.fill()) {
      error.reason = "stdin closed inside a request body";
      return std::nullopt;
    }
  }
  return request;
}

bool write_all(std::string_view bytes) {
  while (!bytes.empty()) {
    ssize_t n = ::write(STDOUT_FILENO, bytes.data(), bytes.size());
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) return false;
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return true;
}

bool respond(const Request& request, int status, protocol::Headers headers, std::string_view body) {
  protocol::ResponseHead head;
  head.status = status;
  head.headers = std::move(headers);
  head.headers.push_back({"Content-Length", std::to_string(body.size())});
  std::string out;
  protocol::append_response_head(out, head);
  if (request.head.method == "HEAD") return write_all(out);
  if (body.size() <= kInlineBody) return write_all(out.append(body));
  return write_all(out) && write_all(body);
}

// The function. Replace this with yours.
bool handle(const Request& request) {
  const std::string& method = request.head.method;
  if (method == "GET" || method == "HEAD") {
    return respond(request, 200, {{"Content-Type", "text/plain"}}, "ok");
  }
  if (method == "POST" || method == "PUT") {
    std::string type(protocol::header_value(request.head.headers, "Content-Type",
                                            "application/octet-stream"));
    return respond(request, 200, {{"Content-Type", type}}, request.body);
  }
  return respond(request, 405, {{"Content-Type", "text/plain"}, {"Allow", "GET, HEAD, POST, PUT"}},
                 "method not allowed\n");
}

}  // namespace

int main() {
  std::signal(SIGPIPE, SIG_IGN);  // a closed stdout shows up as a failed write
  protocol::Limits limits;
  limits.max_body_bytes = 1ULL << 30;  // fastfn's --max-body is the limit that matters
  StdinReader in;
  for (;;) {
    ReadError error;
    auto request = read_request(in, limits, error);
    if (!request) {
      if (error.reason.empty()) return 0;
      std::fprintf(stderr, "handler: bad request on stdin (%s), exiting\n", error.reason.c_str());
      return 1;
    }
    if (!handle(*request)) return 0;  // stdout closed: fastfn is gone
  }
}
