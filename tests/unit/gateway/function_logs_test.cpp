#include "gateway/function_logs.h"

#include <doctest/doctest.h>

#include <atomic>
#include <thread>

namespace {

using gateway::FollowEnd;
using gateway::FunctionLog;
using gateway::FunctionLogs;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

constexpr auto kGenerous = std::chrono::seconds(30);

}  // namespace

TEST_CASE("function_logs: the ring keeps the last lines, oldest first, each with its newline") {
  FunctionLog log({3, 1000});
  for (const char* line : {"one", "two", "three", "four"}) log.append(line);
  CHECK(log.last().text == "two\nthree\nfour\n");
  CHECK(log.last().next == 4);
  CHECK(log.last(2).text == "three\nfour\n");
  CHECK(log.last(0).text.empty());
  CHECK(log.last(99).text == "two\nthree\nfour\n");
}

TEST_CASE("function_logs: the ring is bounded by bytes too, newlines counted") {
  FunctionLog log({1000, 12});
  log.append("aaaa");  // 5 bytes
  log.append("bbbb");  // 10
  log.append("cc");    // 13 > 12: "aaaa" goes
  CHECK(log.last().text == "bbbb\ncc\n");
  log.append("");  // 9
  CHECK(log.last().text == "bbbb\ncc\n\n");
}

TEST_CASE("function_logs: a line longer than the ring is cut to it, with a marker") {
  FunctionLog log({1000, 64});
  log.append("short");
  log.append(std::string(200, 'x'));
  auto text = log.last().text;
  CHECK(text.size() == 64);  // the long line alone, cut to fit with its newline
  CHECK(text == std::string(64 - 1 - gateway::kCutMarker.size(), 'x') +
                    std::string(gateway::kCutMarker) + "\n");
}

TEST_CASE("function_logs: a cut never splits a UTF-8 sequence") {
  FunctionLog log({1000, 30});
  std::string euros;
  for (int i = 0; i < 20; ++i) euros += "\xE2\x82\xAC";  // 3 bytes each
  log.append(euros);
  auto text = log.last().text;
  auto kept = text.substr(0, text.find(gateway::kCutMarker.substr(0, 3)));
  CHECK(kept.size() % 3 == 0);
  CHECK(text.size() <= 30);
}

TEST_CASE("function_logs: since() gives the lines from a number on, and counts those gone") {
  FunctionLog log({2, 1000});
  log.append("a");
  log.append("b");
  CHECK(log.since(1).text == "b\n");
  CHECK(log.since(2).text.empty());
  log.append("c");
  log.append("d");  // "a" and "b" are gone
  auto lines = log.since(1);
  CHECK(lines.skipped == 1);
  CHECK(lines.text == "c\nd\n");
  CHECK(lines.next == 4);
}

TEST_CASE("function_logs: wait() returns at once for a line there, at the deadline for none") {
  FunctionLog log;
  CHECK_FALSE(log.wait(0, Clock::now()));
  log.append("x");
  CHECK(log.wait(0, Clock::now()));
  CHECK_FALSE(log.wait(1, Clock::now()));
  log.close();
  CHECK(log.wait(1, Clock::now()));
}

TEST_CASE("function_logs: a follower gets the lines appended after it began, then ends on close") {
  FunctionLog log;
  log.append("before");
  std::string got;
  std::atomic<int> sends{0};
  std::thread writer([&] {
    // Driven by what the follower received, never by time.
    log.append("first");
    while (sends.load() < 1) std::this_thread::yield();
    log.append("second");
    while (sends.load() < 2) std::this_thread::yield();
    log.close();
  });
  auto end = gateway::follow(
      log, 1,
      [&](std::string_view text) {
        got += text;
        if (got.find("first\n") != got.npos && sends == 0) sends = 1;
        if (got.find("second\n") != got.npos) sends = 2;
        return true;
      },
      [] { return false; }, kGenerous);
  writer.join();
  CHECK(end == FollowEnd::kClosed);
  CHECK(got == "first\nsecond\n");
}

TEST_CASE("function_logs: a follower whose client left ends without any line coming") {
  FunctionLog log;
  int asked = 0;
  auto end = gateway::follow(
      log, 0, [](std::string_view) { return true; }, [&] { return ++asked == 3; }, milliseconds(1));
  CHECK(end == FollowEnd::kClientGone);
  CHECK(asked == 3);
}

TEST_CASE("function_logs: a follower whose send fails ends") {
  FunctionLog log;
  log.append("x");
  auto end = gateway::follow(
      log, 0, [](std::string_view) { return false; }, [] { return false; }, kGenerous);
  CHECK(end == FollowEnd::kSendFailed);
}

TEST_CASE("function_logs: a follower that fell behind the ring is told how many lines it missed") {
  FunctionLog log({2, 1000});
  for (const char* line : {"a", "b", "c", "d"}) log.append(line);
  log.close();
  std::string got;
  gateway::follow(
      log, 0,
      [&](std::string_view text) {
        got += text;
        return true;
      },
      [] { return false; }, kGenerous);
  CHECK(got == gateway::skipped_line(2) + "c\nd\n");
}

TEST_CASE("function_logs: logs by name live while their function does") {
  FunctionLogs logs;
  auto orders = logs.open("orders/:id/get");
  CHECK(logs.open("orders/:id/get") == orders);
  CHECK(logs.find("orders/:id/get") == orders);
  CHECK(logs.find("nope") == nullptr);
  logs.keep_only({"orders/:id/get", "hello"});
  CHECK(logs.find("orders/:id/get") == orders);
  CHECK(logs.find("hello") != nullptr);
  CHECK_FALSE(orders->closed());
  logs.keep_only({"hello"});
  CHECK(logs.find("orders/:id/get") == nullptr);
  CHECK(orders->closed());  // its followers end
}

TEST_CASE("function_logs: close_all() ends every follower, and those to come") {
  FunctionLogs logs;
  auto hello = logs.open("hello");
  logs.close_all();
  CHECK(hello->closed());
  CHECK(logs.open("later")->closed());
}

TEST_CASE("function_logs: followers are bounded, and a place frees when its follower ends") {
  FunctionLogs logs({}, 2);
  {
    auto first = logs.admit();
    auto second = logs.admit();
    CHECK(first.has_value());
    CHECK(second.has_value());
    CHECK_FALSE(logs.admit().has_value());
    CHECK(logs.followers() == 2);
  }
  CHECK(logs.followers() == 0);
  CHECK(logs.admit().has_value());
}
