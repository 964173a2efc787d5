#include "common/line_splitter.h"

#include <doctest/doctest.h>

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

using common::LineSplitter;

// Shows the lines when a comparison fails.
template <>
struct doctest::StringMaker<std::vector<std::string>> {
  static doctest::String convert(const std::vector<std::string>& lines) {
    std::string out = "{";
    for (const auto& line : lines) out += (out.size() > 1 ? ", \"" : "\"") + line + "\"";
    return (out + "}").c_str();
  }
};

namespace {

// Collects what a splitter emits.
struct Lines {
  std::vector<std::string> lines;
  LineSplitter::Emit emit() {
    return [this](std::string_view line) { lines.emplace_back(line); };
  }
};

constexpr common::LogCaps kUncapped{UINT64_MAX, UINT64_MAX, UINT64_MAX};

std::vector<std::string> split_all(const std::vector<std::string>& chunks, std::size_t max_line) {
  LineSplitter splitter(max_line);
  Lines out;
  auto emit = out.emit();
  for (const auto& chunk : chunks) splitter.feed(chunk, emit);
  splitter.flush(emit);
  return out.lines;
}

using V = std::vector<std::string>;

}  // namespace

TEST_CASE("line_splitter: emits complete lines without their newline") {
  CHECK(split_all({"one\ntwo\n"}, 64) == V{"one", "two"});
}

TEST_CASE("line_splitter: strips CRLF") {
  CHECK(split_all({"one\r\ntwo\r\n"}, 64) == V{"one", "two"});
  SUBCASE("a lone CR inside a line is kept, escaped") {
    CHECK(split_all({"a\rb\n"}, 64) == V{"a\\rb"});
  }
}

TEST_CASE("line_splitter: keeps empty lines") {
  CHECK(split_all({"\n\nx\n"}, 64) == V{"", "", "x"});
}

TEST_CASE("line_splitter: joins a line split across feeds") {
  SUBCASE("two pieces") { CHECK(split_all({"hel", "lo\n"}, 64) == V{"hello"}); }
  SUBCASE("byte by byte") {
    CHECK(split_all({"a", "b", "\r", "\n", "c", "\n"}, 64) == V{"ab", "c"});
  }
  SUBCASE("many lines in mixed chunks") {
    CHECK(split_all({"a\nb", "c\nd", "\ne"}, 64) == V{"a", "bc", "d", "e"});
  }
}

TEST_CASE("line_splitter: nothing is emitted for an unfinished line until flush") {
  LineSplitter splitter(64);
  Lines out;
  auto emit = out.emit();
  splitter.feed("partial", emit);
  CHECK(out.lines.empty());
  splitter.flush(emit);
  CHECK(out.lines == V{"partial"});
  SUBCASE("flush twice emits once") {
    splitter.flush(emit);
    CHECK(out.lines == V{"partial"});
  }
}

TEST_CASE("line_splitter: flush with nothing pending emits nothing") {
  CHECK(split_all({"a\n"}, 64) == V{"a"});
  CHECK(split_all({}, 64).empty());
}

TEST_CASE("line_splitter: flush strips a trailing CR") {
  CHECK(split_all({"last\r"}, 64) == V{"last"});
}

TEST_CASE("line_splitter: a long line is emitted in pieces of max_line") {
  SUBCASE("in one feed with its newline") {
    CHECK(split_all({"abcdefghij\n"}, 4) == V{"abcd", "efgh", "ij"});
  }
  SUBCASE("as it arrives, before its newline") {
    LineSplitter splitter(4);
    Lines out;
    auto emit = out.emit();
    splitter.feed("abcdef", emit);
    CHECK(out.lines == V{"abcd"});
    splitter.feed("ghijk", emit);
    CHECK(out.lines == V{"abcd", "efgh"});
    splitter.feed("\n", emit);
    CHECK(out.lines == V{"abcd", "efgh", "ijk"});
  }
}

TEST_CASE("line_splitter: a 1 MiB line never buffers more than max_line") {
  LineSplitter splitter(16 * 1024, kUncapped);
  std::size_t emitted = 0;
  std::size_t longest = 0;
  auto emit = [&](std::string_view line) {
    emitted += line.size();
    longest = std::max(longest, line.size());
  };
  std::string chunk(4096, 'x');
  for (int i = 0; i < 256; ++i) splitter.feed(chunk, emit);
  // Everything but at most one piece has been handed on already.
  CHECK(emitted >= 1024u * 1024 - 16 * 1024);
  CHECK(longest == 16u * 1024);
  splitter.feed("\n", emit);
  splitter.flush(emit);
  CHECK(emitted == 1024u * 1024);
}

TEST_CASE("line_splitter: a line of exactly max_line bytes is one line however it is fed") {
  // Fed with its newline it is one line; fed in two parts it must not grow an extra empty line.
  SUBCASE("in one feed") { CHECK(split_all({"abcd\n"}, 4) == V{"abcd"}); }
  SUBCASE("newline in the next feed") { CHECK(split_all({"abcd", "\n"}, 4) == V{"abcd"}); }
  SUBCASE("two pieces, newline in the next feed") {
    CHECK(split_all({"abcdefgh", "\n", "x\n"}, 4) == V{"abcd", "efgh", "x"});
  }
  SUBCASE("ended by CRLF") { CHECK(split_all({"abcd\r\n", "x\n"}, 4) == V{"abcd", "x"}); }
}

TEST_CASE("line_splitter: control characters are escaped, so a line cannot forge another") {
  CHECK(split_all({"ok\r2026-12-02T00:00:00.000 info [http] forged\n"}, 1024) ==
        V{"ok\\r2026-12-02T00:00:00.000 info [http] forged"});
  CHECK(split_all({"\x1b[31mred\x1b[0m\n"}, 64) == V{"\\x1b[31mred\\x1b[0m"});
  CHECK(split_all({std::string("nul\0end\n", 8)}, 64) == V{"nul\\x00end"});
  SUBCASE("tabs and UTF-8 text stay as they are") {
    CHECK(split_all({"a\tcaf\xc3\xa9\n"}, 64) == V{"a\tcaf\xc3\xa9"});
  }
}

namespace {

using Clock = LineSplitter::Clock;

// Feeds `count` lines of `size` bytes each at `now`; returns what was emitted.
V feed_lines(LineSplitter& splitter, int count, std::size_t size, Clock::time_point now) {
  Lines out;
  auto emit = out.emit();
  std::string line(size, 'x');
  line += '\n';
  for (int i = 0; i < count; ++i) splitter.feed(line, emit, now);
  return out.lines;
}

bool is_note(const std::string& line) { return line.starts_with("stderr "); }

std::size_t count_lines(const V& lines, bool notes) {
  return static_cast<std::size_t>(
      std::count_if(lines.begin(), lines.end(), [&](const auto& l) { return is_note(l) == notes; }));
}

}  // namespace

TEST_CASE("line_splitter: one request logs at most its cap, then says how much it dropped") {
  // Lines of 900 bytes cost 1000 with the per-line overhead: ten fit in 10,000.
  LineSplitter splitter(1024, common::LogCaps{10'000, UINT64_MAX, UINT64_MAX});
  Clock::time_point now{};
  V lines = feed_lines(splitter, 25, 900, now);
  CHECK(count_lines(lines, false) == 10);
  REQUIRE(count_lines(lines, true) == 1);  // said at once, once
  CHECK(lines.back() == "stderr truncated: over 10000 bytes of log for this request, dropping the rest");
  Lines out;
  splitter.end_request(out.emit());
  CHECK(out.lines == V{"stderr truncated: dropped 13515 bytes"});  // 15 lines of 901 bytes
  SUBCASE("the next request has its own cap") {
    V next = feed_lines(splitter, 3, 900, now);
    CHECK(next.size() == 3);
    CHECK(count_lines(next, true) == 0);
  }
  SUBCASE("nothing more to say when nothing more was dropped") {
    out.lines.clear();
    splitter.end_request(out.emit());
    CHECK(out.lines.empty());
  }
}

TEST_CASE("line_splitter: a flood of empty lines is capped too") {
  LineSplitter splitter(1024, common::LogCaps{1000, UINT64_MAX, UINT64_MAX});
  Lines out;
  auto emit = out.emit();
  splitter.feed(std::string(100'000, '\n'), emit, Clock::time_point{});
  splitter.flush(emit);
  CHECK(count_lines(out.lines, false) == 10);  // 100 bytes of overhead each
  CHECK(out.lines.back() == "stderr truncated: dropped 99990 bytes");
}

TEST_CASE("line_splitter: the cap counts escaped bytes") {
  // 256 NULs are 1024 bytes once escaped: only one such line fits in 2000.
  LineSplitter splitter(4096, common::LogCaps{2000, UINT64_MAX, UINT64_MAX});
  Lines out;
  auto emit = out.emit();
  std::string nuls(256, '\0');
  splitter.feed(nuls + "\n" + nuls + "\n", emit, Clock::time_point{});
  REQUIRE(out.lines.size() == 2);
  CHECK(out.lines[0].size() == 1024);
  CHECK(is_note(out.lines[1]));
}

TEST_CASE("line_splitter: a process logs at most its rate, and says what it dropped") {
  // 1,000 bytes a second, 2,000 at once; lines cost 1,000.
  LineSplitter splitter(1024, common::LogCaps{UINT64_MAX, 1000, 2000});
  Clock::time_point start{};
  V first = feed_lines(splitter, 5, 900, start);
  CHECK(first.size() == 2);  // the burst; three lines dropped, silently for now
  SUBCASE("when lines pass again, the drop is said first") {
    V later = feed_lines(splitter, 1, 900, start + std::chrono::seconds(1));
    CHECK(later == V{"stderr rate limited: dropped 2703 bytes (over 1000 bytes per second)",
                     std::string(900, 'x')});
  }
  SUBCASE("or at the end of the request") {
    Lines out;
    splitter.end_request(out.emit());
    CHECK(out.lines == V{"stderr rate limited: dropped 2703 bytes (over 1000 bytes per second)"});
  }
  SUBCASE("over ten seconds, about ten seconds' worth passes") {
    std::size_t passed = first.size();
    for (int ms = 100; ms <= 10'000; ms += 100)
      passed += count_lines(feed_lines(splitter, 5, 900, start + std::chrono::milliseconds(ms)), false);
    CHECK(passed == 12);  // the burst of 2 plus 10 s at one line a second
  }
}

TEST_CASE("token bucket: starts full, refills at its rate, never beyond its burst") {
  using namespace std::chrono_literals;
  common::TokenBucket bucket(100, 300);
  auto t0 = common::TokenBucket::Clock::time_point{} + 1h;
  CHECK(bucket.take(300, t0));
  CHECK_FALSE(bucket.take(1, t0));
  CHECK(bucket.take(50, t0 + 500ms));
  CHECK_FALSE(bucket.take(1, t0 + 500ms));
  CHECK_FALSE(bucket.take(301, t0 + 1h));  // more than the burst never passes
  CHECK(bucket.take(300, t0 + 1h));
  SUBCASE("time going backwards adds nothing") { CHECK_FALSE(bucket.take(1, t0)); }
}
