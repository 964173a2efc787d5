#include "common/logging.h"

#include <algorithm>
#include <mutex>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace common {
namespace {

// Length of the well-formed UTF-8 sequence at the start of `text` (RFC 3629), 0 when there is none.
std::size_t utf8_sequence_length(std::string_view text) {
  auto byte = [&](std::size_t i) { return static_cast<unsigned char>(text[i]); };
  unsigned char lead = byte(0);
  if (lead < 0x80) return 1;
  std::size_t length = lead >= 0xC2 && lead <= 0xDF ? 2 : lead >= 0xE0 && lead <= 0xEF ? 3
                       : lead >= 0xF0 && lead <= 0xF4 ? 4 : 0;
  if (length == 0 || text.size() < length) return 0;
  unsigned char low = lead == 0xE0 ? 0xA0 : lead == 0xF0 ? 0x90 : 0x80;
  unsigned char high = lead == 0xED ? 0x9F : lead == 0xF4 ? 0x8F : 0xBF;
  if (byte(1) < low || byte(1) > high) return 0;
  for (std::size_t i = 2; i < length; ++i)
    if (byte(i) < 0x80 || byte(i) > 0xBF) return 0;
  return length;
}

// A child's stderr is any bytes; a JSON log line must stay valid UTF-8, so each ill-formed byte
// becomes U+FFFD.
std::string_view as_valid_utf8(std::string_view text, std::string& storage) {
  for (std::size_t i = 0; i < text.size();) {
    std::size_t length = utf8_sequence_length(text.substr(i));
    if (length == 0 && storage.empty() && i > 0) storage.assign(text.substr(0, i));
    if (length == 0) {
      storage += "\xEF\xBF\xBD";
      ++i;
    } else {
      if (!storage.empty()) storage.append(text.substr(i, length));
      i += length;
    }
  }
  return storage.empty() ? text : std::string_view(storage);
}

// Writes into `out` the escape for the code point or byte at the start of `text`, `length` bytes
// long (0: a byte that is not UTF-8), and returns its size; 0 when it needs none.
std::size_t escape_of(std::string_view text, std::size_t length, char (&out)[8]) {
  static constexpr char kHex[] = "0123456789abcdef";
  auto byte = static_cast<unsigned char>(text[0]);
  auto put = [&](char kind, unsigned value, int digits) {
    out[0] = '\\';
    out[1] = kind;
    for (int i = 0; i < digits; ++i) out[2 + i] = kHex[(value >> ((digits - 1 - i) * 4)) & 0xF];
    return static_cast<std::size_t>(2 + digits);
  };
  if (length == 0) return put('x', byte, 2);
  if (length == 1) {
    if (byte == '\r') return put('r', 0, 0);
    if (byte == '\n') return put('n', 0, 0);
    if ((byte < 0x20 && byte != '\t') || byte == 0x7f) return put('x', byte, 2);
    return 0;
  }
  auto second = static_cast<unsigned char>(text[1]);
  if (length == 2 && byte == 0xC2 && second <= 0x9F) return put('u', second, 4);
  if (length == 3 && byte == 0xE2 && second == 0x80) {
    auto third = static_cast<unsigned char>(text[2]);
    if (third == 0xA8 || third == 0xA9) return put('u', 0x2000u + (third & 0x3Fu), 4);
  }
  return 0;
}

bool is_plain_ascii(char c) {
  auto byte = static_cast<unsigned char>(c);
  return (byte >= 0x20 && byte < 0x7f) || byte == '\t';
}

// Writes the message (or logger name) as a JSON string literal, quotes included, escaped by RapidJSON.
class JsonStringFlag : public spdlog::custom_flag_formatter {
 public:
  explicit JsonStringFlag(bool logger_name) : logger_name_(logger_name) {}

  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string storage;
    auto text = as_valid_utf8(logger_name_ ? std::string_view(msg.logger_name.data(), msg.logger_name.size())
                                           : std::string_view(msg.payload.data(), msg.payload.size()),
                              storage);
    rapidjson::StringBuffer buffer;
    rapidjson::Writer<rapidjson::StringBuffer> writer(buffer);
    writer.String(text.data(), static_cast<rapidjson::SizeType>(text.size()));
    dest.append(buffer.GetString(), buffer.GetString() + buffer.GetSize());
  }

  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<JsonStringFlag>(logger_name_);
  }

 private:
  bool logger_name_;
};

// Writes the message with escape_log_text: in a text log, one message is one line.
class EscapedMessageFlag : public spdlog::custom_flag_formatter {
 public:
  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    std::string storage;
    auto text = escape_log_text(std::string_view(msg.payload.data(), msg.payload.size()), storage);
    dest.append(text.data(), text.data() + text.size());
  }

  std::unique_ptr<custom_flag_formatter> clone() const override {
    return std::make_unique<EscapedMessageFlag>();
  }
};

std::unique_ptr<spdlog::formatter> make_formatter(LogFormat format) {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  if (format == LogFormat::kText) {
    formatter->add_flag<EscapedMessageFlag>('*');
    formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l [%n] %*");
  } else {
    formatter->add_flag<JsonStringFlag>('*', false).add_flag<JsonStringFlag>('&', true);
    formatter->set_pattern(R"({"time":"%Y-%m-%dT%H:%M:%S.%e","level":"%l","logger":%&,"msg":%*})");
  }
  return formatter;
}

std::mutex registry_mutex;

}  // namespace

bool parse_log_format(std::string_view text, LogFormat* format) {
  if (text == "text") *format = LogFormat::kText;
  else if (text == "json") *format = LogFormat::kJson;
  else return false;
  return true;
}

bool is_log_level(std::string_view text) {
  for (std::string_view level : {"trace", "debug", "info", "warn", "error", "off"})
    if (text == level) return true;
  return false;
}

void setup_logging(LogFormat format, std::string_view level) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  sink->set_formatter(make_formatter(format));
  auto root = std::make_shared<spdlog::logger>("main", sink);
  auto parsed = spdlog::level::from_str(std::string(level));
  root->set_level(parsed == spdlog::level::off && level != "off" ? spdlog::level::info : parsed);
  root->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(root);
}

std::string_view escape_log_text(std::string_view text, std::string& storage) {
  storage.clear();
  std::size_t copied = 0;  // text[0, copied) is in storage already (once something was escaped)
  bool escaped = false;
  for (std::size_t i = 0; i < text.size();) {
    if (is_plain_ascii(text[i])) {
      ++i;
      continue;
    }
    std::size_t length = utf8_sequence_length(text.substr(i));
    std::size_t taken = std::max<std::size_t>(length, 1);
    char escape[8];
    if (std::size_t size = escape_of(text.substr(i), length, escape); size > 0) {
      storage.append(text.substr(copied, i - copied)).append(escape, size);
      copied = i + taken;
      escaped = true;
    }
    i += taken;
  }
  if (!escaped) return text;
  storage.append(text.substr(copied));
  return storage;
}

void write_log_line(std::string_view line) {
  // Its own sink with a bare pattern: the stderr sinks all take spdlog's one console mutex.
  static const auto sink = [] {
    auto made = std::make_shared<spdlog::sinks::stderr_sink_mt>();
    made->set_pattern("%v");
    return made;
  }();
  spdlog::details::log_msg message(spdlog::string_view_t(), spdlog::level::info,
                                   spdlog::string_view_t(line.data(), line.size()));
  sink->log(message);
}

std::shared_ptr<spdlog::logger> logger(const std::string& name) {
  std::lock_guard lock(registry_mutex);
  if (auto existing = spdlog::get(name)) return existing;
  auto created = spdlog::default_logger()->clone(name);
  spdlog::register_logger(created);
  return created;
}

}  // namespace common
