#include "common/logging.h"

#include <unistd.h>

#include <doctest/doctest.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include "common/json_log_formatter.h"
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

std::vector<std::string> keys_of(const rapidjson::Document& doc) {
  std::vector<std::string> keys;
  for (const auto& member : doc.GetObject()) keys.emplace_back(member.name.GetString());
  return keys;
}

// The JSON line of `message` logged by `logger`, parsed (the formatter alone: no logger needed).
rapidjson::Document json_line(const std::string& logger, const std::string& message) {
  spdlog::memory_buf_t out;
  common::append_json_log_line(spdlog::level::info, logger, message, out);
  std::string line(out.data(), out.size());
  CAPTURE(line);
  REQUIRE(line.ends_with("\n"));
  REQUIRE(line.find('\n') == line.size() - 1);
  rapidjson::Document doc;
  std::string why;
  REQUIRE_MESSAGE(parse_json(line.substr(0, line.size() - 1), doc, why), why);
  CHECK(std::string(doc["logger"].GetString()) == logger);
  return doc;
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
  auto lines =
      lines_of(logged_json(name, "request done status=200 ms=3.25 path=/a?x=1 request_id=ab"));
  REQUIRE(lines.size() == 1);
  rapidjson::Document doc;
  std::string why;
  REQUIRE_MESSAGE(parse_json(lines[0], doc, why), why << ": " << lines[0]);
  CHECK(keys_of(doc) == std::vector<std::string>{"time", "level", "logger", "msg", "status", "ms",
                                                 "path", "request_id"});
  CHECK(std::string(doc["level"].GetString()) == "info");
  CHECK(std::string(doc["logger"].GetString()) == name);
  CHECK(std::string(doc["msg"].GetString()) == "request done");
  CHECK(doc["status"].IsInt());
  CHECK(doc["status"].GetInt() == 200);
  CHECK(doc["ms"].IsDouble());
  CHECK(doc["ms"].GetDouble() == 3.25);
  CHECK(std::string(doc["path"].GetString()) == "/a?x=1");
  CHECK(std::string(doc["request_id"].GetString()) == "ab");
}

TEST_CASE("logging: the JSON time is RFC 3339 with the zone") {
  std::string saved = std::getenv("TZ") ? std::getenv("TZ") : "";
  bool had = std::getenv("TZ") != nullptr;
  std::string tz, zone;
  SUBCASE("UTC is Z") { tz = "UTC0", zone = "Z"; }
  SUBCASE("east of UTC") { tz = "XXX-1", zone = "+01:00"; }
  SUBCASE("west of UTC, with minutes") { tz = "XXX+5:30", zone = "-05:30"; }
  CAPTURE(tz);
  ::setenv("TZ", tz.c_str(), 1);
  ::tzset();
  auto lines = lines_of(logged_json(unique_name("tz"), "x"));
  had ? ::setenv("TZ", saved.c_str(), 1) : ::unsetenv("TZ");
  ::tzset();
  REQUIRE(lines.size() == 1);
  rapidjson::Document doc;
  std::string why;
  REQUIRE_MESSAGE(parse_json(lines[0], doc, why), why);
  CHECK(matches_shape(doc["time"].GetString(), std::string(kTimeShape) + zone));
}

TEST_CASE("logging: a JSON field is a number when it is an integer or a decimal") {
  auto doc = json_line("event",
                       "checked a=1 b=-2 c=1.5 d=0 e=007 f=1e5 g=5000ms h=- i=1. j=\"200\" "
                       "request_id=123 call_id=4 function=42 name=7 k=");
  for (const char* key : {"a", "b", "c", "d"}) CHECK_MESSAGE(doc[key].IsNumber(), key);
  CHECK(doc["b"].GetInt() == -2);
  CHECK(doc["c"].GetDouble() == 1.5);
  for (const char* key :
       {"e", "f", "g", "h", "i", "j", "request_id", "call_id", "function", "name", "k"})
    CHECK_MESSAGE(doc[key].IsString(), key);
  CHECK(std::string(doc["e"].GetString()) == "007");
  CHECK(std::string(doc["j"].GetString()) == "200");
  CHECK(std::string(doc["k"].GetString()).empty());
}

TEST_CASE("logging: JSON takes quoted values whole, unescaped") {
  SUBCASE("spaces and escaped quotes") {
    auto doc = json_line("event", R"(failed error="a b \"c\" d" path="C:\\x" status=500)");
    CHECK(std::string(doc["msg"].GetString()) == "failed");
    CHECK(std::string(doc["error"].GetString()) == R"(a b "c" d)");
    CHECK(std::string(doc["path"].GetString()) == R"(C:\x)");
    CHECK(doc["status"].GetInt() == 500);
  }
  SUBCASE("quotes left unescaped inside, as e.what() puts them") {
    auto doc = json_line("event", R"(failed reason="it said "hi" there" status=1)");
    CHECK(std::string(doc["reason"].GetString()) == R"(it said "hi" there)");
    CHECK(doc["status"].GetInt() == 1);
  }
  SUBCASE("text after a quoted value") {
    auto doc = json_line("event", R"(callback failed error="boom" (the last))");
    CHECK(std::string(doc["error"].GetString()) == "boom");
    CHECK(std::string(doc["msg"].GetString()) == "callback failed (the last)");
  }
  SUBCASE("an unterminated quote runs to the end") {
    auto doc = json_line("event", R"(failed error="cut here)");
    CHECK(std::string(doc["error"].GetString()) == "cut here");
  }
}

TEST_CASE("logging: JSON message text around and without fields") {
  SUBCASE("no fields: the message as it is") {
    auto doc = json_line("event", "stopped  twice, a == b, x =1 =2");
    CHECK(keys_of(doc) == std::vector<std::string>{"time", "level", "logger", "msg"});
    CHECK(std::string(doc["msg"].GetString()) == "stopped  twice, a == b, x =1 =2");
  }
  SUBCASE("words between fields are text") {
    auto doc = json_line("event", "install function=py queued manifest=requirements.txt");
    CHECK(std::string(doc["msg"].GetString()) == "install queued");
    CHECK(std::string(doc["manifest"].GetString()) == "requirements.txt");
  }
  SUBCASE("the last bare value runs to the end") {
    auto doc = json_line("event", "listening address=unix:/x.sock command=python3 handler.py -v");
    CHECK(std::string(doc["msg"].GetString()) == "listening");
    CHECK(std::string(doc["address"].GetString()) == "unix:/x.sock");
    CHECK(std::string(doc["command"].GetString()) == "python3 handler.py -v");
  }
  SUBCASE("fields in the middle of the text") {
    auto doc = json_line("event", "reload refused, keeping it signal=SIGHUP error=\"bad\"");
    CHECK(std::string(doc["msg"].GetString()) == "reload refused, keeping it");
    CHECK(std::string(doc["signal"].GetString()) == "SIGHUP");
  }
}

TEST_CASE("logging: JSON keys that would repeat one are prefixed") {
  auto doc = json_line("event", "x msg=a time=b level=c logger=d status=1 status=2 field_status=3");
  CHECK(keys_of(doc) == std::vector<std::string>{"time", "level", "logger", "msg", "field_msg",
                                                 "field_time", "field_level", "field_logger",
                                                 "status", "field_status", "field_field_status"});
  CHECK(std::string(doc["msg"].GetString()) == "x");
  CHECK(std::string(doc["logger"].GetString()) == "event");
  CHECK(std::string(doc["field_logger"].GetString()) == "d");
  CHECK(doc["field_status"].GetInt() == 2);
  CHECK(doc["field_field_status"].GetInt() == 3);
}

TEST_CASE("logging: a child's line is JSON text, never split") {
  SUBCASE("fn: the function, its pid and request, then the line") {
    auto doc = json_line("fn", R"(hotfx pid=12 request_id=abc: T7 line x=1 status="q")");
    CHECK(keys_of(doc) == std::vector<std::string>{"time", "level", "logger", "msg", "function",
                                                   "pid", "request_id"});
    CHECK(std::string(doc["msg"].GetString()) == R"(T7 line x=1 status="q")");
    CHECK(std::string(doc["function"].GetString()) == "hotfx");
    CHECK(doc["pid"].GetInt() == 12);
    CHECK(std::string(doc["request_id"].GetString()) == "abc");
  }
  SUBCASE("fn: a line outside any request") {
    auto doc = json_line("fn", "hotfx pid=12 request_id=: started");
    CHECK(std::string(doc["msg"].GetString()) == "started");
    CHECK(std::string(doc["request_id"].GetString()).empty());
  }
  SUBCASE("an installer's line") {
    auto doc = json_line("gateway.install", "install function=py: Collecting requests==2.0 a: b");
    CHECK(std::string(doc["msg"].GetString()) == "install: Collecting requests==2.0 a: b");
    CHECK(std::string(doc["function"].GetString()) == "py");
    CHECK_FALSE(doc.HasMember("requests"));
  }
  SUBCASE("elsewhere a value ending in a colon is a value (a client's path)") {
    auto doc = json_line("gateway.access", "request method=GET path=/a: function=- status=404");
    CHECK(std::string(doc["path"].GetString()) == "/a:");
    CHECK(std::string(doc["function"].GetString()) == "-");
    CHECK(doc["status"].GetInt() == 404);
  }
}

TEST_CASE("logging: JSON fields stay valid JSON whatever bytes they hold") {
  std::string message =
      std::string("bad path=/caf\xe9\x01 error=\"bell\x07 \x1b[0m\xc2\x85 \xff\" x=\xe2\x82") +
      '\0' + "nul";
  auto doc = json_line("event", message);
  CHECK(std::string(doc["path"].GetString()) == "/caf\xef\xbf\xbd\x01");
  CHECK(std::string(doc["error"].GetString()) == "bell\x07 \x1b[0m\xc2\x85 \xef\xbf\xbd");
  CHECK(std::string(doc["x"].GetString(), doc["x"].GetStringLength()) ==
        std::string("\xef\xbf\xbd\xef\xbf\xbd") + '\0' + "nul");
}

TEST_CASE("logging: print_fatal writes one line in the format asked for") {
  const std::string message = "--log-format: expected text or json, got \"xml\"";
  SUBCASE("text") {
    auto out =
        capture_stderr([&] { common::print_fatal(LogFormat::kText, "fastfn-gateway", message); });
    CHECK(out == "fastfn-gateway: " + message + "\n");
  }
  SUBCASE("JSON") {
    auto lines = lines_of(capture_stderr(
        [&] { common::print_fatal(LogFormat::kJson, "fastfn-watchdog", message + " path=/x"); }));
    REQUIRE(lines.size() == 1);
    rapidjson::Document doc;
    std::string why;
    REQUIRE_MESSAGE(parse_json(lines[0], doc, why), why);
    CHECK(std::string(doc["level"].GetString()) == "critical");
    CHECK(std::string(doc["logger"].GetString()) == "watchdog");
    CHECK(std::string(doc["msg"].GetString()) == message);
    CHECK(std::string(doc["path"].GetString()) == "/x");
  }
}

TEST_CASE("logging: requested_log_format reads a command line that may not parse") {
  using Args = std::vector<std::string>;
  CHECK(common::requested_log_format({}, "") == LogFormat::kText);
  CHECK(common::requested_log_format({}, "json") == LogFormat::kJson);
  CHECK(common::requested_log_format({"--bogus", "--log-format", "json"}, "") == LogFormat::kJson);
  CHECK(common::requested_log_format({"--log-format=json", "--listen"}, "") == LogFormat::kJson);
  CHECK(common::requested_log_format({"--log-format", "text"}, "json") == LogFormat::kText);
  CHECK(common::requested_log_format({"--log-format", "xml"}, "json") == LogFormat::kText);
  CHECK(common::requested_log_format({"--log-format"}, "json") == LogFormat::kJson);
  CHECK(common::requested_log_format(Args{"--", "--log-format", "json"}, "") == LogFormat::kText);
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
