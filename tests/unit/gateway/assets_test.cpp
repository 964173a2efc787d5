#include "gateway/assets.h"

#include <doctest/doctest.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace {

namespace fs = std::filesystem;
using common::Error;
using gateway::RangeKind;

constexpr std::array<std::string_view, 2> kFolders = {"hello", "api/users"};

// The error code of a refusal, or nullopt when the path resolves.
std::optional<Error::Code> refusal(std::string_view path) {
  auto resolved = gateway::resolve_asset_path(path, kFolders);
  if (resolved) return std::nullopt;
  return resolved.error().code;
}

std::string relative(std::string_view path) {
  auto resolved = gateway::resolve_asset_path(path, kFolders);
  REQUIRE_MESSAGE(resolved.has_value(), std::string(path));
  return resolved->relative;
}

}  // namespace

TEST_CASE("assets: resolves plain paths and directory indexes") {
  CHECK(relative("/app.js") == "app.js");
  CHECK(relative("/css/site.css") == "css/site.css");
  CHECK(relative("/") == "index.html");
  CHECK(relative("/docs/") == "docs/index.html");
  CHECK(gateway::resolve_asset_path("/docs/")->directory_index);
  CHECK_FALSE(gateway::resolve_asset_path("/docs")->directory_index);
  CHECK(relative("/caf%C3%A9.txt") == "caf\xc3\xa9.txt");
  CHECK(relative("/a%20b.txt") == "a b.txt");
  CHECK(relative("/helloworld.txt") == "helloworld.txt");  // not inside the folder "hello"
  CHECK(relative("/api/usersx") == "api/usersx");
  CHECK(relative("/file.with.dots.txt") == "file.with.dots.txt");
}

TEST_CASE("assets: refuses dotfiles and dot-segments anywhere") {
  for (std::string_view path : {"/.env", "/.git/config", "/css/.hidden", "/.", "/..", "/./a",
                                "/a/./b", "/a/../b", "/../etc/passwd", "/a/..", "/.well-known/x"}) {
    CAPTURE(path);
    CHECK(refusal(path) == Error::Code::kNotFound);
  }
}

TEST_CASE("assets: refuses .. in every encoding") {
  SUBCASE("percent-encoded dots") {
    for (std::string_view path : {"/%2e%2e/etc/passwd", "/%2E%2E/etc/passwd", "/.%2e/x", "/%2e./x",
                                  "/a/%2e%2e/%2e%2e/etc/passwd", "/%2eenv"}) {
      CAPTURE(path);
      CHECK(refusal(path) == Error::Code::kNotFound);
    }
  }
  SUBCASE("encoded slashes and backslashes") {
    for (std::string_view path : {"/a%2fb", "/a%2Fb", "/..%2f..%2fetc%2fpasswd", "/..%5c..%5cetc",
                                  "/a%5cb", "/a\\b", "/..\\..\\etc\\passwd", "/%2f%2fetc/passwd"}) {
      CAPTURE(path);
      CHECK(refusal(path) == Error::Code::kNotFound);
    }
  }
  SUBCASE("double encoding") {
    for (std::string_view path : {"/%252e%252e/etc/passwd", "/%252f", "/a%25", "/%25%32%65"}) {
      CAPTURE(path);
      CHECK(refusal(path) == Error::Code::kNotFound);
    }
  }
  SUBCASE("overlong and invalid UTF-8") {
    for (std::string_view path :
         {"/%c0%ae%c0%ae/etc/passwd", "/%c0%af", "/%c1%9c", "/%e0%80%ae", "/%f0%80%80%ae",
          "/%ed%a0%80", "/%f4%90%80%80", "/%c3", "/%80", "/%ff", "/a\xc0\xae"}) {
      CAPTURE(path);
      CHECK(refusal(path) == Error::Code::kBadRequest);
    }
  }
}

TEST_CASE("assets: NUL, control bytes and malformed encoding are bad requests") {
  for (std::string_view path : {"/a%00.html", "/%00", "/index.html%00.txt", "/a%0a", "/a%0d%0a",
                                "/a%7f", "/%zz", "/%4", "/a%", "/%g0", "/%0"}) {
    CAPTURE(path);
    CHECK(refusal(path) == Error::Code::kBadRequest);
  }
  CHECK(refusal(std::string_view("/a\0b", 4)) == Error::Code::kBadRequest);
}

TEST_CASE("assets: refuses absolute paths, empty segments and non-origin forms") {
  for (std::string_view path :
       {"//etc/passwd", "///etc/passwd", "/a//b", "etc/passwd", "", "*", "http://x/y"}) {
    CAPTURE(path);
    CHECK(refusal(path) == Error::Code::kNotFound);
  }
  CHECK(refusal("/" + std::string(256, 'a')) == Error::Code::kNotFound);
  CHECK_FALSE(refusal("/" + std::string(255, 'a')));
  CHECK(refusal("/" + std::string(5000, 'a')) == Error::Code::kNotFound);
}

TEST_CASE("assets: refuses the reserved prefixes, also encoded") {
  for (std::string_view path : {"/_fn/health", "/_fn", "/_fn/", "/console", "/console/",
                                "/console/index.html", "/%5ffn/health", "/%5Ffn", "/c%6fnsole/x"}) {
    CAPTURE(path);
    CHECK(refusal(path) == Error::Code::kNotFound);
  }
  CHECK(relative("/_fnx") == "_fnx");
  CHECK(relative("/consoles/a") == "consoles/a");
}

TEST_CASE("assets: refuses paths in a function folder") {
  for (std::string_view path : {"/hello", "/hello/", "/hello/handler.py", "/h%65llo/handler.sh",
                                "/api/users", "/api/users/fn.config.json"}) {
    CAPTURE(path);
    CHECK(refusal(path) == Error::Code::kNotFound);
  }
  CHECK(relative("/api/other.json") == "api/other.json");
  auto without = gateway::resolve_asset_path("/hello/x.css");
  REQUIRE(without);  // no function folders given
  CHECK(without->relative == "hello/x.css");
}

TEST_CASE("assets: content type by extension") {
  using gateway::content_type_for;
  CHECK(content_type_for("index.html") == "text/html; charset=utf-8");
  CHECK(content_type_for("a/site.css") == "text/css; charset=utf-8");
  CHECK(content_type_for("app.js") == "text/javascript; charset=utf-8");
  CHECK(content_type_for("mod.mjs") == "text/javascript; charset=utf-8");
  CHECK(content_type_for("data.json") == "application/json; charset=utf-8");
  CHECK(content_type_for("app.js.map") == "application/json; charset=utf-8");
  CHECK(content_type_for("logo.svg") == "image/svg+xml");
  CHECK(content_type_for("a.png") == "image/png");
  CHECK(content_type_for("a.jpg") == "image/jpeg");
  CHECK(content_type_for("a.JPEG") == "image/jpeg");
  CHECK(content_type_for("a.gif") == "image/gif");
  CHECK(content_type_for("a.webp") == "image/webp");
  CHECK(content_type_for("favicon.ico") == "image/x-icon");
  CHECK(content_type_for("readme.txt") == "text/plain; charset=utf-8");
  CHECK(content_type_for("m.wasm") == "application/wasm");
  CHECK(content_type_for("f.woff2") == "font/woff2");
  CHECK(content_type_for("doc.pdf") == "application/pdf");
  CHECK(content_type_for("feed.xml") == "application/xml; charset=utf-8");
  CHECK(content_type_for("INDEX.HTML") == "text/html; charset=utf-8");
  CHECK(content_type_for("archive.tar.gz") == "application/octet-stream");
  CHECK(content_type_for("Makefile") == "application/octet-stream");
  CHECK(content_type_for("dir.css/file") == "application/octet-stream");
  CHECK(content_type_for("trailing.") == "application/octet-stream");
}

TEST_CASE("assets: ETag and HTTP dates") {
  CHECK(gateway::etag_for({1234, 0x17a2b3c4d5e6f708}) == "W/\"4d2-17a2b3c4d5e6f708\"");
  CHECK(gateway::etag_for({0, 0}) == "W/\"0-0\"");
  CHECK(gateway::http_date(784111777) == "Sun, 06 Nov 1994 08:49:37 GMT");
  CHECK(gateway::http_date(0) == "Thu, 01 Jan 1970 00:00:00 GMT");
  CHECK(gateway::parse_http_date("Sun, 06 Nov 1994 08:49:37 GMT") == 784111777);
  CHECK(gateway::parse_http_date(gateway::http_date(1700000000)) == 1700000000);
  for (std::string_view bad : {"", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994",
                               "Sun, 06 Foo 1994 08:49:37 GMT", "Sun, 06 Nov 1994 25:49:37 GMT",
                               "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 6 Nov 1994 08:49:37 GMT",
                               "Xyz, 06 Nov 1994 08:49:37 GMT"}) {
    CAPTURE(bad);
    CHECK_FALSE(gateway::parse_http_date(bad));
  }
}

TEST_CASE("assets: If-None-Match and If-Modified-Since") {
  const gateway::FileStamp stamp{10, 784111777'500'000'000};  // half a second past the date
  const std::string etag = gateway::etag_for(stamp);
  const std::string strong = etag.substr(2);
  auto with = [](std::string name, std::string value) {
    return protocol::Headers{{std::move(name), std::move(value)}};
  };
  using gateway::not_modified;
  CHECK_FALSE(not_modified({}, etag, stamp));
  CHECK(not_modified(with("If-None-Match", etag), etag, stamp));
  CHECK(not_modified(with("if-none-match", strong), etag, stamp));  // weak comparison
  CHECK(not_modified(with("If-None-Match", "*"), etag, stamp));
  CHECK(not_modified(with("If-None-Match", "\"x\", " + etag), etag, stamp));
  CHECK(not_modified(with("If-None-Match", "\"x\"," + strong + ",\"y\""), etag, stamp));
  CHECK_FALSE(not_modified(with("If-None-Match", "\"x\", W/\"y\""), etag, stamp));
  CHECK_FALSE(not_modified(with("If-None-Match", "W/\"a-17a\""), etag, stamp));
  CHECK_FALSE(not_modified(with("If-None-Match", "garbage"), etag, stamp));
  CHECK(not_modified(with("If-Modified-Since", "Sun, 06 Nov 1994 08:49:37 GMT"), etag, stamp));
  CHECK(not_modified(with("If-Modified-Since", "Sun, 06 Nov 1994 09:00:00 GMT"), etag, stamp));
  CHECK_FALSE(
      not_modified(with("If-Modified-Since", "Sun, 06 Nov 1994 08:49:36 GMT"), etag, stamp));
  CHECK_FALSE(not_modified(with("If-Modified-Since", "yesterday"), etag, stamp));
  protocol::Headers both{{"If-None-Match", "\"other\""},
                         {"If-Modified-Since", "Sun, 06 Nov 1994 09:00:00 GMT"}};
  CHECK_FALSE(not_modified(both, etag, stamp));  // If-None-Match decides when present
}

TEST_CASE("assets: Range parsing") {
  using gateway::parse_range;
  auto partial = [](std::string_view value, std::uint64_t size, std::uint64_t first,
                    std::uint64_t length) {
    CAPTURE(value);
    auto choice = parse_range(value, size);
    REQUIRE(choice.kind == RangeKind::kPartial);
    CHECK(choice.range.first == first);
    CHECK(choice.range.length == length);
  };
  partial("bytes=0-99", 1000, 0, 100);
  partial("bytes=10-10", 1000, 10, 1);
  partial("bytes=990-2000", 1000, 990, 10);  // clamped to the end
  partial("bytes=500-", 1000, 500, 500);
  partial("bytes=-100", 1000, 900, 100);
  partial("bytes=-5000", 1000, 0, 1000);
  partial("Bytes=0-0", 1, 0, 1);
  partial(" bytes=1-2 ", 10, 1, 2);
  SUBCASE("unsatisfiable") {
    for (std::string_view value :
         {"bytes=1000-", "bytes=1000-1001", "bytes=-0", "bytes=5000-6000"}) {
      CAPTURE(value);
      CHECK(parse_range(value, 1000).kind == RangeKind::kUnsatisfiable);
    }
    CHECK(parse_range("bytes=0-", 0).kind == RangeKind::kUnsatisfiable);
    CHECK(parse_range("bytes=-1", 0).kind == RangeKind::kUnsatisfiable);
  }
  SUBCASE("ignored: several ranges and malformed values") {
    for (std::string_view value :
         {"bytes=0-1,5-6", "bytes=0-1, 3-", "bytes=5-1", "bytes=", "bytes=-", "bytes=a-b",
          "items=0-1", "bytes=0-1x", "bytes 0-1", "bytes=+1-2", "bytes=--1", "bytes=1-2-3",
          "bytes=99999999999999999999-"}) {
      CAPTURE(value);
      CHECK(parse_range(value, 1000).kind == RangeKind::kWhole);
    }
  }
  CHECK(gateway::content_range({900, 100}, 1000) == "bytes 900-999/1000");
}

TEST_CASE("assets: If-Range decides whether Range applies") {
  const std::string modified = "Sun, 06 Nov 1994 08:49:37 GMT";
  protocol::Headers range{{"Range", "bytes=0-1"}};
  CHECK(gateway::choose_range({}, 10, modified).kind == RangeKind::kWhole);
  CHECK(gateway::choose_range(range, 10, modified).kind == RangeKind::kPartial);
  range.push_back({"If-Range", modified});
  CHECK(gateway::choose_range(range, 10, modified).kind == RangeKind::kPartial);
  range.back().value = "Mon, 07 Nov 1994 08:49:37 GMT";
  CHECK(gateway::choose_range(range, 10, modified).kind == RangeKind::kWhole);
  range.back().value = "W/\"a-1\"";  // a weak ETag never matches If-Range
  CHECK(gateway::choose_range(range, 10, modified).kind == RangeKind::kWhole);
}

namespace {

class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "fastfn-assets-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    base_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return base_; }
  void write(const fs::path& rel, const std::string& content) const {
    fs::create_directories((base_ / rel).parent_path());
    std::ofstream(base_ / rel) << content;
  }

 private:
  fs::path base_;
};

std::string read_all(int fd) {
  std::string out(64, '\0');
  ssize_t n = ::pread(fd, out.data(), out.size(), 0);
  REQUIRE(n >= 0);
  out.resize(static_cast<std::size_t>(n));
  return out;
}

}  // namespace

TEST_CASE("assets: open_beneath stays inside the folder") {
  TempDir tmp;
  tmp.write("secret.txt", "secret");
  tmp.write("public/index.html", "<p>hi</p>");
  tmp.write("public/css/site.css", "body{}");
  fs::create_symlink("../secret.txt", tmp.path() / "public" / "leak.txt");
  fs::create_symlink("/etc/passwd", tmp.path() / "public" / "passwd");
  fs::create_symlink("..", tmp.path() / "public" / "up");
  fs::create_symlink("css/site.css", tmp.path() / "public" / "alias.css");
  REQUIRE(::mkfifo((tmp.path() / "public" / "fifo").c_str(), 0600) == 0);
  common::UniqueFd dir(::open((tmp.path() / "public").c_str(), O_PATH | O_DIRECTORY | O_CLOEXEC));
  REQUIRE(dir);

  for (bool walk : {false, true}) {
    CAPTURE(walk);
    auto index = gateway::open_beneath(dir.get(), "index.html", walk);
    REQUIRE(index);
    CHECK(read_all(index->get()) == "<p>hi</p>");
    auto nested = gateway::open_beneath(dir.get(), "css/site.css", walk);
    REQUIRE(nested);
    CHECK(read_all(nested->get()) == "body{}");
    for (std::string leaving : {"leak.txt", "passwd", "up/secret.txt"}) {
      CAPTURE(leaving);
      auto opened = gateway::open_beneath(dir.get(), leaving, walk);
      REQUIRE_FALSE(opened);
      CHECK((opened.error() == EXDEV || opened.error() == ELOOP || opened.error() == ENOTDIR));
    }
    CHECK(gateway::open_beneath(dir.get(), "missing.txt", walk).error() == ENOENT);
    auto fifo = gateway::open_beneath(dir.get(), "fifo", walk);  // must not block
    REQUIRE(fifo);
    struct stat st {};
    REQUIRE(::fstat(fifo->get(), &st) == 0);
    CHECK(S_ISFIFO(st.st_mode));
  }
  // A symlink that stays inside is followed by openat2, and by nothing in the O_NOFOLLOW walk.
  auto alias = gateway::open_beneath(dir.get(), "alias.css");
  REQUIRE(alias);
  CHECK(read_all(alias->get()) == "body{}");
  CHECK_FALSE(gateway::open_beneath(dir.get(), "alias.css", true));
}
