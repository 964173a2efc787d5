#include "gateway/watchdog_output.h"

#include <doctest/doctest.h>

#include <string>
#include <vector>

namespace {

using gateway::LineCutter;

std::vector<std::string> cut_all(LineCutter& cutter, std::vector<std::string_view> pieces,
                                 bool flush = true) {
  std::vector<std::string> lines;
  auto emit = [&](std::string_view line) { lines.emplace_back(line); };
  for (auto piece : pieces) cutter.feed(piece, emit);
  if (flush) cutter.flush(emit);
  return lines;
}

}  // namespace

TEST_CASE("watchdog_output: lines are cut at newlines, wherever the reads split them") {
  LineCutter cutter(100);
  CHECK(cut_all(cutter, {"one\ntw", "o\n", "\nthr", "ee"}) ==
        std::vector<std::string>{"one", "two", "", "three"});
}

TEST_CASE("watchdog_output: a line stays as it came: JSON, carriage returns, any bytes") {
  LineCutter cutter(100);
  CHECK(cut_all(cutter, {"{\"msg\":\"a\\tb\"}\r\n\x1b[31m\n"}) ==
        std::vector<std::string>{"{\"msg\":\"a\\tb\"}\r", "\x1b[31m"});
}

TEST_CASE("watchdog_output: a line over the limit is cut, with a marker, and its rest dropped") {
  LineCutter cutter(40);
  std::string long_line(100, 'x');
  auto lines = cut_all(cutter, {long_line.substr(0, 30), long_line.substr(30), "\nnext\n"});
  REQUIRE(lines.size() == 2);
  CHECK(lines[0].size() == 40);
  CHECK(lines[0].ends_with(gateway::kCutMarker));
  CHECK(lines[1] == "next");
  SUBCASE("a line of exactly the limit is whole") {
    CHECK(cut_all(cutter, {std::string(40, 'y') + "\n"}) ==
          std::vector<std::string>{std::string(40, 'y')});
  }
}

TEST_CASE("watchdog_output: a partial last line is flushed at the end, an empty one is not") {
  LineCutter cutter(100);
  CHECK(cut_all(cutter, {"done\n"}) == std::vector<std::string>{"done"});
  CHECK(cut_all(cutter, {"last words"}) == std::vector<std::string>{"last words"});
}

TEST_CASE("watchdog_output: each line is relayed and kept in the function's log, in order") {
  auto log = std::make_shared<gateway::FunctionLog>();
  std::vector<std::string> relayed;
  gateway::WatchdogOutput output(log, [&](std::string_view line) { relayed.emplace_back(line); });
  output.on_bytes("a\nb");
  output.on_bytes("\nc");
  CHECK(relayed == std::vector<std::string>{"a", "b"});
  output.on_end();
  CHECK(relayed == std::vector<std::string>{"a", "b", "c"});
  CHECK(log->last().text == "a\nb\nc\n");
  SUBCASE("without a log, lines are relayed only") {
    gateway::WatchdogOutput bare(nullptr,
                                 [&](std::string_view line) { relayed.emplace_back(line); });
    bare.on_bytes("d\n");
    CHECK(relayed.back() == "d");
  }
}
