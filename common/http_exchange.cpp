#include "common/http_exchange.h"

#include <sys/socket.h>
#include <sys/uio.h>

#include <cerrno>
#include <ctime>
#include <random>

#include <Poco/Net/HTTPServerRequestImpl.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <fmt/format.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "protocol/http_writer.h"

namespace common {
namespace {

constexpr std::size_t kCoalesceLimit = 64 * 1024;

std::string_view http_date() {
  // One formatting per second per thread: the Date header is on every response.
  thread_local std::time_t cached_second = 0;
  thread_local char cached[40];
  std::time_t now = std::time(nullptr);
  if (now != cached_second) {
    std::tm tm{};
    ::gmtime_r(&now, &tm);
    std::strftime(cached, sizeof(cached), "%a, %d %b %Y %H:%M:%S GMT", &tm);
    cached_second = now;
  }
  return cached;
}

Poco::Net::HTTPServerRequestImpl& impl(Poco::Net::HTTPServerRequest& request) {
  return dynamic_cast<Poco::Net::HTTPServerRequestImpl&>(request);
}

bool sane_request_id(std::string_view id) {
  if (id.empty() || id.size() > 128) return false;
  for (char c : id) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
              c == '-' || c == '_' || c == '.';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

ClientRequest::ClientRequest(Poco::Net::HTTPServerRequest& request) : request_(request) {
  head_.method = request.getMethod();
  head_.target = request.getURI();
  head_.version_minor = request.getVersion() == Poco::Net::HTTPMessage::HTTP_1_0 ? 0 : 1;
  head_.headers.reserve(request.size());
  for (const auto& [name, value] : request) head_.headers.push_back({name, value});
  chunked_ = request.getChunkedTransferEncoding();
  if (!chunked_) content_length_ = request.hasContentLength() ? request.getContentLength64() : 0;
  body_done_ = !has_body();
}

std::string_view ClientRequest::path() const noexcept {
  std::string_view target = head_.target;
  if (auto scheme = target.find("://"); scheme != std::string_view::npos && target[0] != '/') {
    auto slash = target.find('/', scheme + 3);
    target = slash == std::string_view::npos ? std::string_view("/") : target.substr(slash);
  }
  return target.substr(0, target.find('?'));
}

Result<std::size_t> ClientRequest::read_body(char* buffer, std::size_t capacity,
                                             std::uint64_t max_body) {
  if (body_done_) return 0;
  std::istream& in = request_.stream();
  // peek() waits for at least one byte (one recv); readsome() then takes what Poco has buffered.
  if (in.peek() == std::char_traits<char>::eof()) {
    if (in.bad()) return fail(Error::Code::kClientGone, "client connection failed during the body");
    if (content_length_ && body_read_ < *content_length_)
      return fail(Error::Code::kClientGone, "client closed before sending the whole body");
    body_done_ = true;
    return 0;
  }
  auto n = static_cast<std::size_t>(in.readsome(buffer, static_cast<std::streamsize>(capacity)));
  body_read_ += n;
  if (body_read_ > max_body) return fail(Error::Code::kBodyTooLarge, "request body too large");
  return n;
}

std::string ClientRequest::remote_host() const {
  const auto& address = request_.clientAddress();
  if (address.family() == Poco::Net::SocketAddress::UNIX_LOCAL) return "";
  return address.host().toString();
}

std::string ClientRequest::remote_port() const {
  const auto& address = request_.clientAddress();
  if (address.family() == Poco::Net::SocketAddress::UNIX_LOCAL) return "";
  return std::to_string(address.port());
}

bool ClientRequest::over_unix_socket() const {
  return request_.serverAddress().family() == Poco::Net::SocketAddress::UNIX_LOCAL;
}

ClientResponse::ClientResponse(Poco::Net::HTTPServerRequest& request,
                               Poco::Net::HTTPServerResponse& response)
    : response_(response),
      fd_(impl(request).socket().impl()->sockfd()),
      head_only_(request.getMethod() == Poco::Net::HTTPRequest::HTTP_HEAD),
      http10_(request.getVersion() == Poco::Net::HTTPMessage::HTTP_1_0),
      keep_alive_(response.getKeepAlive()) {}

void ClientResponse::close_after() noexcept {
  keep_alive_ = false;
  response_.setKeepAlive(false);
}

Status ClientResponse::start(int status, protocol::Headers headers,
                             protocol::BodyFraming framing) {
  for (auto name : {"Content-Length", "Transfer-Encoding", "Connection", "Date", "Keep-Alive"})
    protocol::remove_header(headers, name);
  if (framing.kind == protocol::BodyKind::kChunked && http10_)
    framing.kind = protocol::BodyKind::kUntilClose;
  if (framing.kind == protocol::BodyKind::kUntilClose) close_after();
  framing_ = framing;
  headers.push_back({"Date", std::string(http_date())});
  if (framing.kind == protocol::BodyKind::kLength)
    headers.push_back({"Content-Length", std::to_string(framing.length)});
  else if (framing.kind == protocol::BodyKind::kChunked)
    headers.push_back({"Transfer-Encoding", "chunked"});
  if (!keep_alive_) headers.push_back({"Connection", "close"});
  else if (http10_) headers.push_back({"Connection", "keep-alive"});
  protocol::append_response_head(pending_, protocol::ResponseHead{1, status, "", std::move(headers)});
  started_ = true;
  status_ = status;
  response_.setStatus(static_cast<Poco::Net::HTTPResponse::HTTPStatus>(status));
  return {};
}

Status ClientResponse::write(std::string_view data) {
  if (data.empty()) return {};
  body_bytes_ += data.size();
  if (head_only_ || framing_.kind == protocol::BodyKind::kNone) return {};
  if (framing_.kind != protocol::BodyKind::kChunked) return flush(data);
  pending_ += fmt::format("{:x}\r\n", data.size());
  if (auto sent = flush(data); !sent) return sent;
  pending_ = "\r\n";
  return {};
}

Status ClientResponse::finish(const protocol::Headers& trailers) {
  if (finished_) return {};
  finished_ = true;
  if (framing_.kind == protocol::BodyKind::kLength && !head_only_ &&
      body_bytes_ != framing_.length) {
    abort();
    return fail(Error::Code::kBadGateway, "response body shorter than its Content-Length");
  }
  // pending_ holds the unsent head, or the CRLF that closes the last data chunk.
  if (framing_.kind == protocol::BodyKind::kChunked && !head_only_)
    protocol::append_last_chunk(pending_, trailers);
  return flush();
}

Status ClientResponse::send(int status, protocol::Headers headers, std::string_view body) {
  start(status, std::move(headers), {protocol::BodyKind::kLength, body.size()});
  if (!head_only_ && !body.empty()) pending_.append(body);
  body_bytes_ = body.size();
  finished_ = true;
  return flush();
}

void ClientResponse::abort() noexcept {
  finished_ = true;
  close_after();
  ::shutdown(fd_, SHUT_RDWR);
}

Status ClientResponse::flush(std::string_view extra) {
  iovec parts[2] = {{pending_.data(), pending_.size()},
                    {const_cast<char*>(extra.data()), extra.size()}};
  auto sent = send_all(parts, 2);
  pending_.clear();
  return sent;
}

Status ClientResponse::send_all(const iovec* parts, int count) {
  iovec local[2] = {parts[0], parts[1]};
  iovec* next = local;
  int left = count;
  while (left > 0) {
    if (next->iov_len == 0) {
      ++next;
      --left;
      continue;
    }
    msghdr message{};
    message.msg_iov = next;
    message.msg_iovlen = static_cast<std::size_t>(left);
    ssize_t n = ::sendmsg(fd_, &message, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      abort();
      return fail(Error::Code::kClientGone, errno == EAGAIN ? "client write timed out"
                                                             : "client connection lost");
    }
    auto written = static_cast<std::size_t>(n);
    while (left > 0 && written >= next->iov_len) {
      written -= next->iov_len;
      ++next;
      --left;
    }
    if (left > 0) {
      next->iov_base = static_cast<char*>(next->iov_base) + written;
      next->iov_len -= written;
    }
  }
  return {};
}

std::string error_json(std::string_view error, std::string_view function,
                       std::string_view request_id, const protocol::Headers& extra) {
  rapidjson::StringBuffer buffer;
  rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
  auto field = [&writer](std::string_view key, std::string_view value) {
    writer.Key(key.data(), static_cast<rapidjson::SizeType>(key.size()));
    writer.String(value.data(), static_cast<rapidjson::SizeType>(value.size()));
  };
  writer.StartObject();
  field("error", error);
  field("function", function);
  field("request_id", request_id);
  for (const auto& [key, value] : extra) field(key, value);
  writer.EndObject();
  return std::string(buffer.GetString(), buffer.GetSize()) + "\n";
}

std::string new_request_id() {
  thread_local std::mt19937_64 generator{std::random_device{}()};
  return fmt::format("{:016x}{:016x}", generator(), generator());
}

std::string request_id_for(const protocol::Headers& headers) {
  auto sent = protocol::header_value(headers, "X-Fn-Request-Id");
  return sane_request_id(sent) ? std::string(sent) : new_request_id();
}

}  // namespace common
