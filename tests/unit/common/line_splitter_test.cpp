#include "common/line_splitter.h"

#include <doctest/doctest.h>

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
  SUBCASE("a lone CR inside a line is kept") { CHECK(split_all({"a\rb\n"}, 64) == V{"a\rb"}); }
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
  LineSplitter splitter(16 * 1024);
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
