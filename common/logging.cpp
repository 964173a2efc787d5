#include "common/logging.h"

#include <mutex>

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>
#include <spdlog/pattern_formatter.h>
#include <spdlog/sinks/stdout_sinks.h>

namespace common {
namespace {

// Writes the message (or logger name) as a JSON string literal, quotes included, escaped by RapidJSON.
class JsonStringFlag : public spdlog::custom_flag_formatter {
 public:
  explicit JsonStringFlag(bool logger_name) : logger_name_(logger_name) {}

  void format(const spdlog::details::log_msg& msg, const std::tm&,
              spdlog::memory_buf_t& dest) override {
    auto text = logger_name_ ? msg.logger_name : msg.payload;
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

std::unique_ptr<spdlog::formatter> make_formatter(LogFormat format) {
  auto formatter = std::make_unique<spdlog::pattern_formatter>();
  if (format == LogFormat::kText) {
    formatter->set_pattern("%Y-%m-%dT%H:%M:%S.%e %l [%n] %v");
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

void setup_logging(LogFormat format, std::string_view level) {
  auto sink = std::make_shared<spdlog::sinks::stderr_sink_mt>();
  sink->set_formatter(make_formatter(format));
  auto root = std::make_shared<spdlog::logger>("main", sink);
  auto parsed = spdlog::level::from_str(std::string(level));
  root->set_level(parsed == spdlog::level::off && level != "off" ? spdlog::level::info : parsed);
  root->flush_on(spdlog::level::trace);
  spdlog::set_default_logger(root);
}

std::shared_ptr<spdlog::logger> logger(const std::string& name) {
  std::lock_guard lock(registry_mutex);
  if (auto existing = spdlog::get(name)) return existing;
  auto created = spdlog::default_logger()->clone(name);
  spdlog::register_logger(created);
  return created;
}

}  // namespace common
