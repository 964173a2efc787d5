// The functions' logs on the gateway's edge (server.h, function_logs.h): GET /_fn/logs/NAME sends
// the recent lines, ?lines=N the last N; ?follow=1 then keeps the answer open (chunked) and sends
// each new line, until the client leaves or the gateway drains. Loopback clients only unless
// FN_CONSOLE_REMOTE=1: a log can hold what a handler should not have printed.
#include <poll.h>

#include <limits>

#include "common/logging.h"
#include "common/units.h"
#include "gateway/server.h"

namespace gateway {
namespace {

using common::Error;

// How often a follower with nothing to send looks whether its client is still there.
constexpr std::chrono::milliseconds kHangupCheck{500};

struct LogQuery {
  std::optional<std::size_t> lines;
  bool follow = false;
};

// "lines=20&follow=1" (other parameters are ignored); nullopt with `error` for a bad value.
std::optional<LogQuery> parse_query(std::string_view target, std::string& error) {
  LogQuery query;
  auto mark = target.find('?');
  std::string_view rest = mark == target.npos ? std::string_view() : target.substr(mark + 1);
  while (!rest.empty()) {
    std::string_view pair = rest.substr(0, rest.find('&'));
    rest.remove_prefix(std::min(rest.size(), pair.size() + 1));
    auto equals = pair.find('=');
    std::string_view key = pair.substr(0, equals);
    std::string_view value = equals == pair.npos ? std::string_view() : pair.substr(equals + 1);
    if (key == "lines") {
      auto count = common::parse_whole(value, 0, std::numeric_limits<std::int64_t>::max());
      if (!count) {
        error = "lines: expected a whole number, got \"" + std::string(value) + "\"";
        return std::nullopt;
      }
      query.lines = static_cast<std::size_t>(*count);
    } else if (key == "follow") {
      query.follow = value == "1" || value == "true";
      if (!query.follow && value != "0" && value != "false") {
        error = "follow: expected 1, true, 0 or false, got \"" + std::string(value) + "\"";
        return std::nullopt;
      }
    }
  }
  return query;
}

// The client closed or reset its connection (a request it pipelined meanwhile is no hang-up).
bool client_gone(const common::ClientRequest& request) {
  pollfd fd{request.fd(), POLLIN, 0};
  if (::poll(&fd, 1, 0) <= 0) return false;
  return (fd.revents & (POLLHUP | POLLERR)) != 0 || request.peer_gone();
}

}  // namespace

void Server::serve_logs(common::ClientRequest& request, common::ClientResponse& response,
                        const std::string& request_id) {
  if (!logs_) {
    send_error(response, Error{Error::Code::kNotFound, "no such endpoint"}, "", request_id);
    return;
  }
  if (!admin_allowed(request, response, request_id)) return;
  auto name =
      protocol::percent_decode(request.path().substr(std::string_view("/_fn/logs/").size()));
  if (!name) {
    send_error(response, Error{Error::Code::kBadRequest, "bad percent-encoding in the name"}, "",
               request_id);
    return;
  }
  auto log = logs_->find(*name);
  if (!log) {
    send_error(response, Error{Error::Code::kNotFound, "no such function"}, *name, request_id);
    return;
  }
  std::string error;
  auto query = parse_query(request.target(), error);
  if (!query) {
    send_error(response, Error{Error::Code::kBadRequest, error}, *name, request_id);
    return;
  }
  const protocol::Headers headers{{"Content-Type", "text/plain; charset=utf-8"},
                                  {"X-Fn-Request-Id", request_id}};
  if (!query->follow || response.head_only()) {
    response.send(200, headers, log->last(query->lines).text);
    return;
  }
  auto follower = logs_->admit();
  if (!follower) {
    send_error(response, Error{Error::Code::kUnavailable, "too many log followers at once"}, *name,
               request_id);
    return;
  }
  auto recent = log->last(query->lines);
  if (!response.start(200, headers, {protocol::BodyKind::kChunked}) ||
      (!recent.text.empty() && !response.write(recent.text))) {
    response.abort();
    return;
  }
  auto end = follow(
      *log, recent.next, [&](std::string_view text) { return bool(response.write(text)); },
      [&] { return client_gone(request); }, kHangupCheck);
  if (end == FollowEnd::kClosed)
    response.finish();
  else
    response.abort();
}

}  // namespace gateway
