// Replays every seed of every fuzz target on each build, with any compiler: the invariants the
// targets assert hold for the corpus, and a finding fixed once stays fixed once its input is added.
#define DOCTEST_CONFIG_IMPLEMENT_WITH_MAIN
#include <doctest/doctest.h>

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

extern "C" int fuzz_http_request(const std::uint8_t* data, std::size_t size);
extern "C" int fuzz_http_response(const std::uint8_t* data, std::size_t size);
extern "C" int fuzz_chunked(const std::uint8_t* data, std::size_t size);
extern "C" int fuzz_cgi_response(const std::uint8_t* data, std::size_t size);

namespace {

using Entry = int (*)(const std::uint8_t*, std::size_t);

void replay(const std::string& target, Entry entry) {
  std::filesystem::path dir = std::filesystem::path(FUZZ_CORPUS_DIR) / target;
  REQUIRE(std::filesystem::is_directory(dir));
  int files = 0;
  for (const auto& file : std::filesystem::directory_iterator(dir)) {
    std::ifstream in(file.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CAPTURE(file.path().string());
    CHECK(entry(reinterpret_cast<const std::uint8_t*>(bytes.data()), bytes.size()) == 0);
    ++files;
  }
  CHECK(files >= 3);
}

}  // namespace

TEST_CASE("fuzz corpus: http_request_fuzz") { replay("http_request_fuzz", fuzz_http_request); }
TEST_CASE("fuzz corpus: http_response_fuzz") { replay("http_response_fuzz", fuzz_http_response); }
TEST_CASE("fuzz corpus: chunked_fuzz") { replay("chunked_fuzz", fuzz_chunked); }
TEST_CASE("fuzz corpus: cgi_response_fuzz") { replay("cgi_response_fuzz", fuzz_cgi_response); }
