#include "common/json_log_formatter.h"

#include <spdlog/details/log_msg.h>
#include <time.h>

#include <array>
#include <chrono>
#include <ctime>
#include <span>
#include <utility>

#include "common/log_fields.h"

namespace common {
namespace {

using Buffer = spdlog::memory_buf_t;

void append(Buffer& out, std::string_view text) {
  out.append(text.data(), text.data() + text.size());
}

// The escape of an ASCII byte inside a JSON string, empty when it needs none.
std::string_view ascii_escape(unsigned char byte, char (&storage)[6]) {
  static constexpr char kHex[] = "0123456789abcdef";
  switch (byte) {
    case '"':
      return "\\\"";
    case '\\':
      return "\\\\";
    case '\n':
      return "\\n";
    case '\r':
      return "\\r";
    case '\t':
      return "\\t";
    default:
      break;
  }
  if (byte >= 0x20) return {};
  storage[0] = '\\', storage[1] = 'u', storage[2] = '0', storage[3] = '0';
  storage[4] = kHex[byte >> 4], storage[5] = kHex[byte & 0xF];
  return {storage, 6};
}

// Writes the bytes of `text` as the inside of a JSON string: escaped, each byte that is not
// well-formed UTF-8 as U+FFFD (a child's stderr is any bytes). With `unescape`, the \" and \\ of a
// quoted log value are taken as " and \. Copies runs that need nothing in one append.
void append_json_chars(std::string_view text, bool unescape, Buffer& out) {
  std::size_t run = 0;  // text[run, i) needs nothing
  for (std::size_t i = 0; i < text.size();) {
    auto byte = static_cast<unsigned char>(text[i]);
    if (byte >= 0x20 && byte < 0x80 && byte != '"' && byte != '\\') {
      ++i;
      continue;
    }
    std::size_t length = byte < 0x80 ? 1 : utf8_sequence_length(text.substr(i));
    if (length > 1) {
      i += length;
      continue;
    }
    append(out, text.substr(run, i - run));
    if (unescape && byte == '\\' && i + 1 < text.size() &&
        (text[i + 1] == '"' || text[i + 1] == '\\'))
      byte = static_cast<unsigned char>(text[++i]);
    char storage[6];
    append(out, length == 0 ? "\xEF\xBF\xBD" : ascii_escape(byte, storage));
    run = ++i;
  }
  append(out, text.substr(run));
}

void append_json_string(std::string_view text, Buffer& out) {
  out.push_back('"');
  append_json_chars(text, false, out);
  out.push_back('"');
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

// An integer or a decimal as JSON writes them (no leading zeros, no exponent).
bool is_json_number(std::string_view value) {
  std::size_t i = value.starts_with('-') ? 1 : 0;
  const std::size_t first = i;
  while (i < value.size() && is_digit(value[i])) ++i;
  if (i == first || (value[first] == '0' && i - first > 1)) return false;
  if (i < value.size() && value[i] == '.') {
    const std::size_t fraction = ++i;
    while (i < value.size() && is_digit(value[i])) ++i;
    if (i == fraction) return false;
  }
  return i == value.size();
}

// Ids and names stay strings even when they are all digits, so that a reader gets one type.
bool is_text_key(std::string_view key) {
  return key == "request_id" || key == "call_id" || key == "function" || key == "name";
}

// Writes the message text as the value of "msg", and keeps the fields for after it: one pass.
class TextWriter final : public LogPartsVisitor {
 public:
  explicit TextWriter(Buffer& out) : out_(out) {}
  void text(std::string_view piece, std::string_view joiner) override {
    append(out_, joiner);
    append_json_chars(piece, false, out_);
  }
  void field(const LogField& field) override {
    if (count_ < fields_.size()) fields_[count_++] = field;
  }
  std::span<const LogField> fields() const { return {fields_.data(), count_}; }

 private:
  Buffer& out_;
  std::array<LogField, kMaxLogFields> fields_;
  std::size_t count_ = 0;
};

// Writes each field as `,"key":value`; a key already used (time, level, logger, msg or an earlier
// field's) is prefixed with "field_" until it is not.
class FieldWriter {
 public:
  explicit FieldWriter(Buffer& out) : out_(out) {}

  void field(const LogField& field) {
    int prefixes = 0;
    while (taken(prefixes, field.key)) ++prefixes;
    if (count_ < seen_.size()) seen_[count_++] = {prefixes, field.key};
    append(out_, ",\"");
    for (int i = 0; i < prefixes; ++i) append(out_, kPrefix);
    append(out_, field.key);
    append(out_, "\":");
    if (!field.quoted && !is_text_key(field.key) && is_json_number(field.value)) {
      append(out_, field.value);
      return;
    }
    out_.push_back('"');
    append_json_chars(field.value, field.quoted, out_);
    out_.push_back('"');
  }

 private:
  static constexpr std::string_view kPrefix = "field_";

  // True when kPrefix * a_prefixes + a equals kPrefix * b_prefixes + b.
  static bool same_name(int a_prefixes, std::string_view a, int b_prefixes, std::string_view b) {
    if (a_prefixes < b_prefixes) return same_name(b_prefixes, b, a_prefixes, a);
    for (int i = 0; i < a_prefixes - b_prefixes; ++i) {
      if (!b.starts_with(kPrefix)) return false;
      b.remove_prefix(kPrefix.size());
    }
    return a == b;
  }

  bool taken(int prefixes, std::string_view key) const {
    static constexpr std::array<std::string_view, 4> kReserved = {"time", "level", "logger", "msg"};
    for (std::string_view reserved : kReserved)
      if (same_name(prefixes, key, 0, reserved)) return true;
    for (std::size_t i = 0; i < count_; ++i)
      if (same_name(prefixes, key, seen_[i].first, seen_[i].second)) return true;
    return false;
  }

  Buffer& out_;
  std::array<std::pair<int, std::string_view>, kMaxLogFields> seen_;
  std::size_t count_ = 0;
};

// The time as RFC 3339 in the local zone: the text of the second is kept, as spdlog does.
class TimeWriter {
 public:
  void append_time(spdlog::log_clock::time_point when, Buffer& out) {
    auto since = when.time_since_epoch();
    auto seconds = std::chrono::duration_cast<std::chrono::seconds>(since);
    auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(since - seconds).count();
    if (seconds.count() != second_) refresh(seconds.count());
    out.append(date_, date_ + kDateSize);
    const char fraction[4] = {'.', static_cast<char>('0' + ms / 100),
                              static_cast<char>('0' + ms / 10 % 10),
                              static_cast<char>('0' + ms % 10)};
    out.append(fraction, fraction + 4);
    append(out, std::string_view(zone_));
  }

 private:
  static constexpr std::size_t kDateSize = 19;  // 2026-12-07T14:05:03

  void refresh(std::time_t second) {
    second_ = second;
    std::tm local{};
    ::localtime_r(&second, &local);
    std::strftime(date_, sizeof date_, "%Y-%m-%dT%H:%M:%S", &local);
    long offset = local.tm_gmtoff / 60;  // minutes east of UTC
    if (offset == 0) {
      zone_[0] = 'Z', zone_[1] = '\0';
      return;
    }
    long minutes = offset < 0 ? -offset : offset;
    zone_[0] = offset < 0 ? '-' : '+';
    zone_[1] = static_cast<char>('0' + minutes / 600),
    zone_[2] = static_cast<char>('0' + minutes / 60 % 10);
    zone_[3] = ':';
    zone_[4] = static_cast<char>('0' + minutes % 60 / 10),
    zone_[5] = static_cast<char>('0' + minutes % 10);
    zone_[6] = '\0';
  }

  std::time_t second_ = -1;
  char date_[kDateSize + 1] = {};
  char zone_[7] = {};
};

void append_line(TimeWriter& time, spdlog::log_clock::time_point when,
                 spdlog::level::level_enum level, std::string_view logger, std::string_view message,
                 Buffer& out) {
  append(out, "{\"time\":\"");
  time.append_time(when, out);
  append(out, "\",\"level\":");
  auto level_name = spdlog::level::to_string_view(level);
  append_json_string({level_name.data(), level_name.size()}, out);
  append(out, ",\"logger\":");
  append_json_string(logger, out);
  append(out, ",\"msg\":\"");
  TextWriter text(out);
  split_log_message(message, log_shape_of(logger), text);
  out.push_back('"');
  FieldWriter fields(out);
  for (const LogField& field : text.fields()) fields.field(field);
  append(out, "}\n");
}

class JsonFormatter final : public spdlog::formatter {
 public:
  void format(const spdlog::details::log_msg& msg, Buffer& dest) override {
    append_line(time_, msg.time, msg.level, {msg.logger_name.data(), msg.logger_name.size()},
                {msg.payload.data(), msg.payload.size()}, dest);
  }
  std::unique_ptr<spdlog::formatter> clone() const override {
    return std::make_unique<JsonFormatter>();
  }

 private:
  TimeWriter time_;
};

}  // namespace

std::unique_ptr<spdlog::formatter> make_json_formatter() {
  return std::make_unique<JsonFormatter>();
}

void append_json_log_line(spdlog::level::level_enum level, std::string_view logger,
                          std::string_view message, Buffer& out) {
  TimeWriter time;
  append_line(time, spdlog::log_clock::now(), level, logger, message, out);
}

std::size_t utf8_sequence_length(std::string_view text) {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  std::size_t length = lead >= 0xC2 && lead <= 0xDF   ? 2
                       : lead >= 0xE0 && lead <= 0xEF ? 3
                       : lead >= 0xF0 && lead <= 0xF4 ? 4
                                                      : 0;
  if (length == 0 || text.size() < length) return 0;
  unsigned char low = lead == 0xE0 ? 0xA0 : lead == 0xF0 ? 0x90 : 0x80;
  unsigned char high = lead == 0xED ? 0x9F : lead == 0xF4 ? 0x8F : 0xBF;
  if (byte(1) < low || byte(1) > high) return 0;
  for (std::size_t i = 2; i < length; ++i)
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  return length;
}

}  // namespace common
