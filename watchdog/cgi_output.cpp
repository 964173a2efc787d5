#include "watchdog/cgi_output.h"

#include <algorithm>
#include <iterator>

namespace watchdog {
namespace {

using common::Error;

constexpr std::string_view kExitCodeHeader = "X-Fn-Exit-Code";

// What the watchdog itself says on every CGI response. A program's copy would stand beside the
// watchdog's (two X-Fn-Exit-Code, one of them a lie about how it ended), so it is dropped.
bool set_by_watchdog(std::string_view name) noexcept {
  return protocol::iequals(name, kExitCodeHeader) || protocol::iequals(name, "X-Fn-Request-Id") ||
         protocol::iequals(name, "Trailer");
}

// 204 and 304 have no body, so there is no length to announce either.
bool has_content(int status) noexcept { return status != 204 && status != 304; }

}  // namespace

CgiOutput::CgiOutput(common::ClientResponse& response, const CgiOutputSettings& settings)
    : response_(response), settings_(settings), headers_done_(!settings.cgi_headers) {}

common::Status CgiOutput::feed(std::string_view bytes) {
  if (broken_) {
    // Keep draining the pipe. The answer is a 502, or, if the program fails, a 500 with the
    // start of its output.
    std::size_t room = settings_.buffer_limit - std::min(buffer_.size(), settings_.buffer_limit);
    buffer_.append(bytes.substr(0, room));
    return {};
  }
  if (streaming_) return response_.write(bytes);
  buffer_.append(bytes);
  if (!headers_done_) {
    if (auto parsed = parse_headers(false); !parsed) return parsed;
    if (!headers_done_) return {};
  }
  if (buffer_.size() > settings_.buffer_limit) return start_streaming();
  return {};
}

common::Status CgiOutput::parse_headers(bool at_eof) {
  auto result = protocol::parse_cgi_head(buffer_, at_eof, settings_.content_type);
  using Status = protocol::CgiResult::Status;
  if (result.status == Status::kIncomplete) return {};
  if (result.status == Status::kError) {
    broken_ = "the program's CGI headers are invalid: " + std::string(protocol::describe(result.error));
    buffer_.resize(std::min(buffer_.size(), settings_.buffer_limit));
    return {};
  }
  head_ = std::move(result.head);
  buffer_.erase(0, result.consumed);
  headers_done_ = true;
  return {};
}

protocol::Headers CgiOutput::response_headers(int exit_code, bool as_trailer) const {
  protocol::Headers headers;
  if (head_) {
    std::copy_if(head_->headers.begin(), head_->headers.end(), std::back_inserter(headers),
                 [](const protocol::Header& header) { return !set_by_watchdog(header.name); });
  } else {
    headers.push_back({"Content-Type", std::string(settings_.content_type)});
  }
  headers.push_back({"X-Fn-Request-Id", std::string(settings_.request_id)});
  if (as_trailer) headers.push_back({std::string("Trailer"), std::string(kExitCodeHeader)});
  else headers.push_back({std::string(kExitCodeHeader), std::to_string(exit_code)});
  return headers;
}

// A HEAD answer has no body to count: it announces the length the program declared for it
// (RFC 9110 8.6), as php-cgi, Flask and Bottle do, rather than the 0 bytes it sent.
protocol::BodyFraming CgiOutput::head_framing(protocol::BodyFraming framing) const {
  if (response_.head_only() && head_ && head_->declared_length && has_content(head_->status))
    return {protocol::BodyKind::kLength, *head_->declared_length};
  return framing;
}

common::Status CgiOutput::start_streaming() {
  // The exit code is unknown yet: the status is the program's own, or 200.
  int status = head_ ? head_->status : 200;
  std::string_view reason = head_ ? std::string_view(head_->reason) : std::string_view();
  // The exit code is not in the head, not even for a HEAD, whose length is known: it is not known.
  auto framing = head_framing({protocol::BodyKind::kChunked, 0});
  streaming_ = true;
  if (auto started = response_.start(status, response_headers(0, true), framing, reason);
      !started) {
    return started;
  }
  std::string held;
  held.swap(buffer_);
  return response_.write(held);
}

common::Status CgiOutput::finish(const common::ExitStatus& exit, std::string_view stderr_text) {
  if (!headers_done_ && !broken_) parse_headers(true);
  if (broken_ && exit.success()) return common::fail(Error::Code::kBadGateway, *broken_);
  if (streaming_) {
    if (auto written = response_.write(stderr_text); !written) return written;
    return response_.finish({{std::string(kExitCodeHeader), std::to_string(exit.code)}});
  }
  if (head_ && head_->kind == protocol::CgiResponseKind::kLocalRedirect && exit.success()) {
    local_redirect_ = std::string(protocol::header_value(head_->headers, "Location"));
    return {};
  }
  buffer_.append(stderr_text);
  auto headers = response_headers(exit.code, false);
  if (!exit.success()) return response_.send(500, std::move(headers), buffer_);
  int status = head_ ? head_->status : 200;
  std::string_view reason = head_ ? std::string_view(head_->reason) : std::string_view();
  auto framing = head_framing({protocol::BodyKind::kLength, buffer_.size()});
  if (framing.length == buffer_.size())
    return response_.send(status, std::move(headers), buffer_, reason);
  // A HEAD announcing the program's declared length: the head alone, nothing to count.
  if (auto started = response_.start(status, std::move(headers), framing, reason); !started)
    return started;
  return response_.finish();
}

}  // namespace watchdog
