#include "common/logging.h"

#include <algorithm>
#include <cstdio>
#include <mutex>

#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

#include "common/json_log_formatter.h"

namespace common {
namespace {

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
  if (format == LogFormat::kJson) return make_json_formatter();
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  formatter->add_flag<EscapedMessageFlag>('*');
  formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l [%n] %*");
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

LogFormat requested_log_format(const std::vector<std::string>& args, std::string_view fallback) {
  std::string_view asked = fallback;
  for (std::size_t i = 0; i < args.size() && args[i] != "--"; ++i) {
    std::string_view arg = args[i];
    if (arg == "--log-format" && i + 1 < args.size()) asked = args[++i];
    else if (arg.starts_with("--log-format=")) asked = arg.substr(13);
  }
  return asked == "json" ? LogFormat::kJson : LogFormat::kText;
}

void print_fatal(LogFormat format, std::string_view program, std::string_view message) {
  spdlog::memory_buf_t line;
  if (format == LogFormat::kJson) {
    std::string_view logger = program.starts_with("fastfn-") ? program.substr(7) : program;
    append_json_log_line(spdlog::level::critical, logger, message, line);
  } else {
    std::string storage;
    auto text = escape_log_text(message, storage);
    line.append(program.data(), program.data() + program.size());
    line.append(std::string_view(": "));
    line.append(text.data(), text.data() + text.size());
    line.push_back('\n');
  }
  std::fwrite(line.data(), 1, line.size(), stderr);
  std::fflush(stderr);
}

std::shared_ptr<spdlog::logger> logger(const std::string& name) {
  std::lock_guard lock(registry_mutex);
  if (auto existing = spdlog::get(name)) return existing;
  auto created = spdlog::default_logger()->clone(name);
  spdlog::register_logger(created);
  return created;
}

}  // namespace common
