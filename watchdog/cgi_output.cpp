#include "watchdog/cgi_output.h"

namespace watchdog {
namespace {

using common::Error;

constexpr const char* kExitCodeHeader = "X-Fn-Exit-Code";

}  // namespace

CgiOutput::CgiOutput(common::ClientResponse& response, const CgiOutputSettings& settings)
    : response_(response), settings_(settings), headers_done_(!settings.cgi_headers) {}

common::Status CgiOutput::feed(std::string_view bytes) {
  if (broken_) return {};  // keep draining the pipe; the response will be a 502
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
    buffer_.clear();
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
    for (const auto& header : head_->headers) headers.push_back(header);
  } else {
    headers.push_back({"Content-Type", std::string(settings_.content_type)});
  }
  headers.push_back({"X-Fn-Request-Id", std::string(settings_.request_id)});
  if (as_trailer) headers.push_back({"Trailer", kExitCodeHeader});
  else headers.push_back({kExitCodeHeader, std::to_string(exit_code)});
  return headers;
}

int CgiOutput::status_for(const common::ExitStatus& exit) const {
  if (!exit.success()) return 500;
  return head_ ? head_->status : 200;
}

common::Status CgiOutput::start_streaming() {
  // The exit code is unknown yet: the status is the program's own, or 200.
  int status = head_ ? head_->status : 200;
  streaming_ = true;
  if (auto started = response_.start(status, response_headers(0, true),
                                     {protocol::BodyKind::kChunked, 0});
      !started) {
    return started;
  }
  std::string held;
  held.swap(buffer_);
  return response_.write(held);
}

common::Status CgiOutput::finish(const common::ExitStatus& exit, std::string_view stderr_text) {
  if (!headers_done_ && !broken_) parse_headers(true);
  if (broken_) return common::fail(Error::Code::kBadGateway, *broken_);
  if (streaming_) {
    if (auto written = response_.write(stderr_text); !written) return written;
    return response_.finish({{kExitCodeHeader, std::to_string(exit.code)}});
  }
  if (head_ && head_->kind == protocol::CgiResponseKind::kLocalRedirect && exit.success()) {
    local_redirect_ = std::string(protocol::header_value(head_->headers, "Location"));
    return {};
  }
  buffer_.append(stderr_text);
  return response_.send(status_for(exit), response_headers(exit.code, false), buffer_);
}

}  // namespace watchdog
