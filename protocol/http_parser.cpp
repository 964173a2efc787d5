#include "protocol/http_parser.h"

#include <algorithm>
#include <optional>
#include <type_traits>
#include <utility>

namespace protocol {
namespace {

bool is_tchar(unsigned char c) noexcept {
  if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z')) return true;
  return std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

// field-vchar, SP and HTAB (RFC 9110 5.5); bytes >= 0x80 are obs-text and allowed.
bool is_field_char(unsigned char c) noexcept { return c == '\t' || (c >= 0x20 && c != 0x7f); }

bool is_field_value(std::string_view value) noexcept {
  return std::all_of(value.begin(), value.end(),
                     [](char c) { return is_field_char(static_cast<unsigned char>(c)); });
}

std::string_view trim_ows(std::string_view s) noexcept {
  while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
  while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
  return s;
}

// "name: value" (RFC 9112 section 5). obs-fold and whitespace before the colon fail the token test.
bool parse_field_line(std::string_view line, Headers& headers) {
  std::size_t colon = line.find(':');
  if (colon == std::string_view::npos || !is_token(line.substr(0, colon))) return false;
  std::string_view value = trim_ows(line.substr(colon + 1));
  if (!is_field_value(value)) return false;
  headers.push_back({std::string(line.substr(0, colon)), std::string(value)});
  return true;
}

// "HTTP/1.0" or "HTTP/1.1". Other well-formed versions are kBadVersion, anything else `malformed`.
std::optional<ParseError> parse_version(std::string_view text, int& minor, ParseError malformed) {
  auto digit = [&](std::size_t i) { return text[i] >= '0' && text[i] <= '9'; };
  if (text.size() != 8 || text.substr(0, 5) != "HTTP/" || !digit(5) || text[6] != '.' ||
      !digit(7)) {
    return malformed;
  }
  if (text[5] != '1' || text[7] > '1') return ParseError::kBadVersion;
  minor = text[7] - '0';
  return std::nullopt;
}

bool is_request_target(std::string_view target) noexcept {
  return !target.empty() && std::all_of(target.begin(), target.end(), [](char c) {
    auto byte = static_cast<unsigned char>(c);
    return byte > 0x20 && byte != 0x7f;
  });
}

std::optional<ParseError> parse_request_line(std::string_view line, RequestHead& head) {
  std::size_t sp1 = line.find(' ');
  std::size_t sp2 = sp1 == std::string_view::npos ? sp1 : line.find(' ', sp1 + 1);
  if (sp2 == std::string_view::npos) return ParseError::kBadRequestLine;
  std::string_view method = line.substr(0, sp1);
  std::string_view target = line.substr(sp1 + 1, sp2 - sp1 - 1);
  if (!is_token(method) || !is_request_target(target)) return ParseError::kBadRequestLine;
  head.method = method;
  head.target = target;
  return parse_version(line.substr(sp2 + 1), head.version_minor, ParseError::kBadRequestLine);
}

std::optional<ParseError> parse_status_line(std::string_view line, ResponseHead& head) {
  std::size_t sp = line.find(' ');
  if (sp == std::string_view::npos) return ParseError::kBadStatusLine;
  auto error = parse_version(line.substr(0, sp), head.version_minor, ParseError::kBadStatusLine);
  if (error) return error;
  std::string_view rest = line.substr(sp + 1);
  // The SP before an empty reason is often left out; accept "HTTP/1.1 204" too.
  if (rest.size() < 3 || (rest.size() > 3 && rest[3] != ' ')) return ParseError::kBadStatusLine;
  if (rest[0] < '1' || rest[0] > '9') return ParseError::kBadStatusLine;
  for (std::size_t i = 1; i < 3; ++i) {
    if (rest[i] < '0' || rest[i] > '9') return ParseError::kBadStatusLine;
  }
  std::string_view reason = rest.size() > 3 ? rest.substr(4) : std::string_view();
  if (!is_field_value(reason)) return ParseError::kBadStatusLine;
  head.status = (rest[0] - '0') * 100 + (rest[1] - '0') * 10 + (rest[2] - '0');
  head.reason = reason;
  return std::nullopt;
}

std::optional<std::uint64_t> parse_content_length(std::string_view text) noexcept {
  if (text.empty()) return std::nullopt;
  std::uint64_t value = 0;
  for (char c : text) {
    if (c < '0' || c > '9') return std::nullopt;
    auto digit = static_cast<std::uint64_t>(c - '0');
    if (value > (UINT64_MAX - digit) / 10) return std::nullopt;
    value = value * 10 + digit;
  }
  return value;
}

FramingResult framing_error(ParseError error) {
  FramingResult result;
  result.ok = false;
  result.error = error;
  return result;
}

// RFC 9112 6.1-6.3 with the strict choices of the header comment. `kNone` means neither field is
// present; the caller decides what that means for its message. `version_minor` is the message's:
// HTTP/1.0 knows no Transfer-Encoding, so a chunked 1.0 message is decoded but ends its connection.
FramingResult framing_from_fields(const Headers& headers, int version_minor) {
  const Header* transfer_encoding = nullptr;
  const Header* content_length = nullptr;
  std::size_t te_count = 0;
  std::size_t cl_count = 0;
  for (const Header& header : headers) {
    if (iequals(header.name, "Transfer-Encoding")) {
      transfer_encoding = &header;
      ++te_count;
    } else if (iequals(header.name, "Content-Length")) {
      content_length = &header;
      ++cl_count;
    }
  }
  FramingResult result;
  if (te_count > 0 && cl_count > 0) return framing_error(ParseError::kLengthAndChunked);
  if (te_count > 0) {
    // Several fields form one list, so two fields are two codings: only one lone "chunked" passes.
    if (te_count > 1 || !iequals(trim_ows(transfer_encoding->value), "chunked")) {
      return framing_error(ParseError::kBadTransferEncoding);
    }
    result.framing.kind = BodyKind::kChunked;
    result.close_after = version_minor == 0;
  } else if (cl_count > 1) {
    // Even equal copies: peers disagree on which one counts, and that is how smuggling starts.
    return framing_error(ParseError::kDuplicateContentLength);
  } else if (cl_count == 1) {
    auto length = parse_content_length(content_length->value);
    if (!length) return framing_error(ParseError::kBadContentLength);
    result.framing = {BodyKind::kLength, *length};
  }
  return result;
}

template <class Head>
HeadResult<Head> parse_whole_head(std::string_view bytes, const Limits& limits) {
  HeadParser<Head> parser(limits);
  HeadResult<Head> result;
  result.status = parser.parse(bytes);
  result.error = parser.error();
  if (result.status == ParseStatus::kComplete) {
    result.consumed = parser.consumed();
    result.head = std::move(parser.head());
  }
  return result;
}

}  // namespace

std::string_view describe(ParseError error) noexcept {
  switch (error) {
    case ParseError::kHeadTooLarge:
      return "header section too large";
    case ParseError::kTooManyHeaders:
      return "too many header fields";
    case ParseError::kBodyTooLarge:
      return "body too large";
    case ParseError::kBadRequestLine:
      return "malformed request line";
    case ParseError::kBadStatusLine:
      return "malformed status line";
    case ParseError::kBadVersion:
      return "unsupported http version";
    case ParseError::kBadHeader:
      return "malformed or truncated header section";
    case ParseError::kBadContentLength:
      return "invalid content-length or body shorter than it";
    case ParseError::kDuplicateContentLength:
      return "duplicate content-length";
    case ParseError::kLengthAndChunked:
      return "content-length together with transfer-encoding";
    case ParseError::kBadTransferEncoding:
      return "transfer-encoding other than chunked";
    case ParseError::kBadChunk:
      return "malformed or truncated chunked body";
  }
  return "unknown parse error";
}

bool is_token(std::string_view name) noexcept {
  return !name.empty() && std::all_of(name.begin(), name.end(), [](char c) {
    return is_tchar(static_cast<unsigned char>(c));
  });
}

HeadResult<RequestHead> parse_request_head(std::string_view bytes, const Limits& limits) {
  return parse_whole_head<RequestHead>(bytes, limits);
}

HeadResult<ResponseHead> parse_response_head(std::string_view bytes, const Limits& limits) {
  return parse_whole_head<ResponseHead>(bytes, limits);
}

// Lines are checked in order and the first fault wins, so the answer for a prefix that is complete
// or wrong holds for every longer input: that is what makes parsing in slices give one answer.
template <class Head>
ParseStatus HeadParser<Head>::parse(std::string_view bytes) {
  if (status_ != ParseStatus::kIncomplete) return status_;
  // A blank line past the limit does not count: the head is too large however it ends.
  std::string_view window = bytes.substr(0, std::min(bytes.size(), limits_.max_head_bytes));
  for (std::size_t lf; (lf = window.find('\n', scanned_)) != std::string_view::npos;) {
    std::string_view line = window.substr(line_start_, lf - line_start_);
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    line_start_ = scanned_ = lf + 1;
    if (take_line(line) != ParseStatus::kIncomplete) return status_;
  }
  scanned_ = window.size();
  if (bytes.size() > limits_.max_head_bytes) return fail(ParseError::kHeadTooLarge);
  return status_;
}

template <class Head>
ParseStatus HeadParser<Head>::take_line(std::string_view line) {
  constexpr bool kIsRequest = std::is_same_v<Head, RequestHead>;
  if (!have_first_line_) {
    // RFC 9112 2.2: empty lines before a request line are ignored (clients add CRLF after bodies).
    if (kIsRequest && line.empty()) return status_;
    std::optional<ParseError> error;
    if constexpr (kIsRequest) {
      error = parse_request_line(line, head_);
    } else {
      error = parse_status_line(line, head_);
    }
    if (error) return fail(*error);
    have_first_line_ = true;
    return status_;
  }
  if (line.empty()) {
    consumed_ = line_start_;
    status_ = ParseStatus::kComplete;
    return status_;
  }
  if (head_.headers.size() >= limits_.max_headers) return fail(ParseError::kTooManyHeaders);
  if (!parse_field_line(line, head_.headers)) return fail(ParseError::kBadHeader);
  return status_;
}

template <class Head>
ParseStatus HeadParser<Head>::fail(ParseError error) {
  status_ = ParseStatus::kError;
  error_ = error;
  return status_;
}

template class HeadParser<RequestHead>;
template class HeadParser<ResponseHead>;

bool BodyDecoder::parse_trailer_field(std::string_view line, Headers& trailers) {
  return parse_field_line(line, trailers);
}

FramingResult request_framing(const RequestHead& head) {
  return framing_from_fields(head.headers, head.version_minor);
}

FramingResult response_framing(const ResponseHead& head, std::string_view request_method) {
  if (request_method == "HEAD" || head.status < 200 || head.status == 204 || head.status == 304) {
    return {};
  }
  FramingResult result = framing_from_fields(head.headers, head.version_minor);
  if (result.ok && result.framing.kind == BodyKind::kNone) {
    result.framing.kind = BodyKind::kUntilClose;
  }
  return result;
}

template <class Head>
MessageParser<Head>::MessageParser(const Limits& limits, std::string_view request_method)
    : limits_(limits), request_method_(request_method), head_parser_(limits) {}

template <class Head>
ParseStatus MessageParser<Head>::feed(std::string_view bytes) {
  if (status_ != ParseStatus::kIncomplete) return status_;
  buffer_.append(bytes);
  return parse();
}

template <class Head>
ParseStatus MessageParser<Head>::finish() {
  if (status_ != ParseStatus::kIncomplete) return status_;
  if (!have_head_) return buffer_.empty() ? status_ : fail(ParseError::kBadHeader);
  if (framing_.kind == BodyKind::kUntilClose) {
    status_ = ParseStatus::kComplete;
    return status_;
  }
  return fail(framing_.kind == BodyKind::kChunked ? ParseError::kBadChunk
                                                  : ParseError::kBadContentLength);
}

template <class Head>
std::string_view MessageParser<Head>::unconsumed() const noexcept {
  return std::string_view(buffer_).substr(offset_);
}

template <class Head>
ParseStatus MessageParser<Head>::parse() {
  if (!have_head_ && (parse_head() != ParseStatus::kIncomplete || !have_head_)) return status_;
  ParseStatus status = decoder_ ? decode_body() : read_until_close();
  // Body bytes have been copied out; dropping them keeps the buffer near one read's size.
  if (status == ParseStatus::kIncomplete && offset_ > 4096 && offset_ * 2 >= buffer_.size()) {
    buffer_.erase(0, offset_);
    offset_ = 0;
  }
  return status;
}

// The buffer only grows until the head is complete, as the head parser requires.
template <class Head>
ParseStatus MessageParser<Head>::parse_head() {
  ParseStatus parsed = head_parser_.parse(buffer_);
  if (parsed == ParseStatus::kError) return fail(head_parser_.error());
  if (parsed == ParseStatus::kIncomplete) return status_;
  message_.head = std::move(head_parser_.head());
  offset_ = consumed_ = head_parser_.consumed();
  have_head_ = true;
  FramingResult framing;
  if constexpr (std::is_same_v<Head, RequestHead>) {
    framing = request_framing(message_.head);
  } else {
    framing = response_framing(message_.head, request_method_);
  }
  if (!framing.ok) return fail(framing.error);
  framing_ = framing.framing;
  if (framing_.kind != BodyKind::kUntilClose) decoder_.emplace(framing_, limits_);
  return status_;
}

template <class Head>
ParseStatus MessageParser<Head>::decode_body() {
  for (;;) {
    BodyDecoder::Step step = decoder_->next(unconsumed());
    if (step.status == ParseStatus::kError) return fail(step.error);
    message_.body.append(step.data);
    offset_ += step.consumed;
    consumed_ += step.consumed;
    if (step.status == ParseStatus::kComplete) {
      message_.trailers = decoder_->trailers();
      status_ = ParseStatus::kComplete;
      return status_;
    }
    if (step.consumed == 0) return status_;
  }
}

template <class Head>
ParseStatus MessageParser<Head>::read_until_close() {
  std::string_view rest = unconsumed();
  if (message_.body.size() + rest.size() > limits_.max_body_bytes) {
    return fail(ParseError::kBodyTooLarge);
  }
  message_.body.append(rest);
  offset_ += rest.size();
  consumed_ += rest.size();
  return status_;
}

template <class Head>
ParseStatus MessageParser<Head>::fail(ParseError error) {
  status_ = ParseStatus::kError;
  error_ = error;
  return status_;
}

template class MessageParser<RequestHead>;
template class MessageParser<ResponseHead>;

}  // namespace protocol
