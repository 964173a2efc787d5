#include "common/logging.h"

#include <unistd.h>

#include <doctest/doctest.h>

#include <atomic>
#include <cstdio>
#include <string>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include "common/unique_fd.h"

using common::LogFormat;

namespace {

// Captures what is written to fd 2 while `body` runs, by putting a pipe over it.
template <class F>
std::string capture_stderr(F body) {
  std::fflush(stderr);
  common::Pipe pipe = common::Pipe::create();
  common::UniqueFd saved(::dup(2));
  REQUIRE(saved.valid());
  REQUIRE(::dup2(pipe.write.get(), 2) == 2);
  body();
  std::fflush(stderr);
  ::dup2(saved.get(), 2);
  pipe.write.reset();
  std::string out;
  char buffer[4096];
  for (ssize_t n; (n = ::read(pipe.read.get(), buffer, sizeof buffer)) > 0;)
    out.append(buffer, static_cast<std::size_t>(n));
  return out;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::size_t start = 0;
  for (std::size_t end; (end = text.find('\n', start)) != std::string::npos; start = end + 1)
    lines.push_back(text.substr(start, end - start));
  if (start < text.size()) lines.push_back(text.substr(start));
  return lines;
}

// True when `text` has the shape of `pattern`, where '9' stands for any digit.
bool matches_shape(const std::string& text, const std::string& pattern) {
  if (text.size() != pattern.size()) return false;
  for (std::size_t i = 0; i < text.size(); ++i) {
    bool ok = pattern[i] == '9' ? text[i] >= '0' && text[i] <= '9' : text[i] == pattern[i];
    if (!ok) return false;
  }
  return true;
}

constexpr const char* kTimeShape = "9999-99-99T99:99:99.999";

// spdlog's registry is global: each test takes fresh logger names.
std::string unique_name(const std::string& base) {
  static std::atomic<int> next{0};
  return base + "." + std::to_string(next++);
}

// Parses one JSON line strictly (UTF-8 validated, nothing after the object).
bool parse_json(const std::string& line, rapidjson::Document& doc, std::string& why) {
  doc.Parse<rapidjson::kParseValidateEncodingFlag | rapidjson::kParseStopWhenDoneFlag>(line.c_str(),
                                                                                       line.size());
  if (doc.HasParseError()) {
    why = std::string(rapidjson::GetParseError_En(doc.GetParseError())) + " at " +
          std::to_string(doc.GetErrorOffset());
    return false;
  }
  if (!doc.IsObject()) {
    why = "not an object";
    return false;
  }
  return true;
}

std::string logged_json(const std::string& name, const std::string& message) {
  common::setup_logging(LogFormat::kJson);
  auto log = common::logger(name);
  std::string out = capture_stderr([&] { log->info("{}", message); });
  common::setup_logging(LogFormat::kText);
  return out;
}

}  // namespace

TEST_CASE("logging: parse_log_format") {
  LogFormat format = LogFormat::kJson;
  CHECK(common::parse_log_format("text", &format));
  CHECK(format == LogFormat::kText);
  CHECK(common::parse_log_format("json", &format));
  CHECK(format == LogFormat::kJson);
  SUBCASE("unknown values leave the format alone") {
    CHECK_FALSE(common::parse_log_format("JSON", &format));
    CHECK_FALSE(common::parse_log_format("", &format));
    CHECK_FALSE(common::parse_log_format("xml", &format));
    CHECK(format == LogFormat::kJson);
  }
}

TEST_CASE("logging: text lines follow the pattern") {
  common::setup_logging(LogFormat::kText);
  std::string name = unique_name("watchdog.test");
  auto log = common::logger(name);
  std::string out = capture_stderr([&] { log->warn("child exited pid={} status={}", 42, 1); });
  auto lines = lines_of(out);
  REQUIRE(lines.size() == 1);
  std::string time(kTimeShape);
  REQUIRE(lines[0].size() > time.size());
  CHECK(matches_shape(lines[0].substr(0, time.size()), time));
  CHECK(lines[0].substr(time.size()) == " warning [" + name + "] child exited pid=42 status=1");
}

TEST_CASE("logging: logger returns one logger per name") {
  common::setup_logging(LogFormat::kText);
  std::string name = unique_name("gateway.pool");
  auto a = common::logger(name);
  auto b = common::logger(name);
  CHECK(a.get() == b.get());
  CHECK(a->name() == name);
  CHECK(common::logger(unique_name("other")).get() != a.get());
}

TEST_CASE("logging: the level filters messages") {
  SUBCASE("debug shows debug") {
    common::setup_logging(LogFormat::kText, "debug");
    auto log = common::logger(unique_name("lvl"));
    CHECK(lines_of(capture_stderr([&] { log->debug("shown"); })).size() == 1);
  }
  SUBCASE("info hides debug") {
    common::setup_logging(LogFormat::kText, "info");
    auto log = common::logger(unique_name("lvl"));
    CHECK(capture_stderr([&] { log->debug("hidden"); }).empty());
    CHECK(lines_of(capture_stderr([&] { log->info("shown"); })).size() == 1);
  }
  SUBCASE("an unknown or empty level is info") {
    for (std::string level : {"", "verbose"}) {
      CAPTURE(level);
      common::setup_logging(LogFormat::kText, level);
      auto log = common::logger(unique_name("lvl"));
      CHECK(capture_stderr([&] { log->debug("hidden"); }).empty());
      CHECK(lines_of(capture_stderr([&] { log->info("shown"); })).size() == 1);
    }
  }
  SUBCASE("off is silent") {
    common::setup_logging(LogFormat::kText, "off");
    auto log = common::logger(unique_name("lvl"));
    CHECK(capture_stderr([&] { log->error("hidden"); }).empty());
  }
  common::setup_logging(LogFormat::kText);
}

TEST_CASE("logging: JSON lines are valid JSON with the fields") {
  std::string name = unique_name("watchdog.json");
  auto lines = lines_of(logged_json(name, "request done status=200 ms=3"));
  REQUIRE(lines.size() == 1);
  rapidjson::Document doc;
  std::string why;
  REQUIRE_MESSAGE(parse_json(lines[0], doc, why), why << ": " << lines[0]);
  REQUIRE(doc.HasMember("time"));
  REQUIRE(doc.HasMember("level"));
  REQUIRE(doc.HasMember("logger"));
  REQUIRE(doc.HasMember("msg"));
  CHECK(matches_shape(doc["time"].GetString(), kTimeShape));
  CHECK(std::string(doc["level"].GetString()) == "info");
  CHECK(std::string(doc["logger"].GetString()) == name);
  CHECK(std::string(doc["msg"].GetString()) == "request done status=200 ms=3");
}

TEST_CASE("logging: JSON escapes messages") {
  std::string message;
  SUBCASE("quotes and backslashes") { message = R"(say "hi" \ C:\path)"; }
  SUBCASE("newline, tab and CR") { message = "line one\nline two\tcol\r"; }
  SUBCASE("control bytes") { message = std::string("bell\x07 esc\x1b nul") + '\0' + "end"; }
  SUBCASE("braces are not format fields") { message = "{\"json\":{}}"; }
  SUBCASE("UTF-8 text") { message = "caf\xc3\xa9 \xe2\x82\xac"; }
  CAPTURE(message);
  auto lines = lines_of(logged_json(unique_name("esc"), message));
  REQUIRE(lines.size() == 1);
  rapidjson::Document doc;
  std::string why;
  REQUIRE_MESSAGE(parse_json(lines[0], doc, why), why << ": " << lines[0]);
  CHECK(std::string(doc["msg"].GetString(), doc["msg"].GetStringLength()) == message);
}

TEST_CASE("logging: JSON escapes the logger name") {
  std::string name = unique_name("fn \"quoted\" \\");
  auto lines = lines_of(logged_json(name, "x"));
  REQUIRE(lines.size() == 1);
  rapidjson::Document doc;
  std::string why;
  REQUIRE_MESSAGE(parse_json(lines[0], doc, why), why << ": " << lines[0]);
  CHECK(std::string(doc["logger"].GetString()) == name);
}

TEST_CASE("logging: JSON lines stay valid UTF-8 when a message is not") {
  // A child's stderr is forwarded line by line and may hold any bytes (binary output, Latin-1).
  for (std::string message : {std::string("latin1 caf\xe9"), std::string("binary \xff\xfe\x80"),
                              std::string("cut utf-8 \xe2\x82")}) {
    CAPTURE(message);
    auto lines = lines_of(logged_json(unique_name("fn"), message));
    REQUIRE(lines.size() == 1);
    rapidjson::Document doc;
    std::string why;
    CHECK_MESSAGE(parse_json(lines[0], doc, why), why);
  }
}

namespace {

std::string escaped(std::string_view text) {
  std::string storage;
  return std::string(common::escape_log_text(text, storage));
}

}  // namespace

TEST_CASE("logging: escape_log_text makes control characters visible") {
  CHECK(escaped("plain text, 100% {braces} \\ backslash\ttab") ==
        "plain text, 100% {braces} \\ backslash\ttab");
  CHECK(escaped("a\rb\nc") == "a\\rb\\nc");
  CHECK(escaped("\x1b[2J\x1b]0;title\x07") == "\\x1b[2J\\x1b]0;title\\x07");
  CHECK(escaped(std::string("\0\x01\x1f\x7f", 4)) == "\\x00\\x01\\x1f\\x7f");
  SUBCASE("UTF-8 text is kept, C1 controls and line separators are not") {
    CHECK(escaped("caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80") == "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80");
    CHECK(escaped("csi\xc2\x9b" "31m nel\xc2\x85") == "csi\\u009b31m nel\\u0085");
    CHECK(escaped("ls\xe2\x80\xa8ps\xe2\x80\xa9") == "ls\\u2028ps\\u2029");
  }
  SUBCASE("bytes that are not UTF-8 are escaped one by one") {
    CHECK(escaped("latin1 caf\xe9") == "latin1 caf\\xe9");
    CHECK(escaped("\xff\xfe") == "\\xff\\xfe");
    CHECK(escaped("cut \xe2\x82") == "cut \\xe2\\x82");
  }
  SUBCASE("escaping twice changes nothing more") {
    std::string once = escaped("x\r\x1b\xc2\x85\xff\n");
    CHECK(escaped(once) == once);
  }
  SUBCASE("text that needs nothing is returned as it is, uncopied") {
    std::string storage;
    std::string_view text = "nothing to do";
    CHECK(common::escape_log_text(text, storage).data() == text.data());
  }
}

TEST_CASE("logging: a text message is one line, whatever it holds") {
  common::setup_logging(LogFormat::kText);
  auto log = common::logger(unique_name("fn"));
  std::string out = capture_stderr(
      [&] { log->info("{}", "ok\r2026-12-02T00:00:00.000 info [http] forged\nsecond\x1b[0m"); });
  auto lines = lines_of(out);
  REQUIRE(lines.size() == 1);
  CHECK(lines[0].ends_with("ok\\r2026-12-02T00:00:00.000 info [http] forged\\nsecond\\x1b[0m"));
}
