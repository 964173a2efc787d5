#include "gateway/dependency_installer.h"

#include <doctest/doctest.h>

#include <condition_variable>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <mutex>
#include <sstream>
#include <string>

namespace {

namespace fs = std::filesystem;

class Folder {
 public:
  Folder() {
    std::string pattern = (fs::temp_directory_path() / "fastfn-installer-XXXXXX").string();
    REQUIRE(::mkdtemp(pattern.data()) != nullptr);
    path_ = pattern;
  }
  ~Folder() { fs::remove_all(path_); }
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

std::string read(const fs::path& file) {
  std::ifstream in(file);
  std::ostringstream text;
  text << in.rdbuf();
  return text.str();
}

// Counts the installer's calls of `done`, and waits for a number of them.
struct Done {
  std::mutex mutex;
  std::condition_variable changed;
  int count = 0;
  void operator()() {
    std::lock_guard lock(mutex);
    ++count;
    changed.notify_all();
  }
  bool wait_for(int n) {
    std::unique_lock lock(mutex);
    return changed.wait_for(lock, std::chrono::seconds(60), [&] { return count >= n; });
  }
};

gateway::DependencyInstall job(const fs::path& dir, std::string hash,
                               std::vector<std::string> argv) {
  return {"fn", dir, "requirements.txt", std::move(hash), std::move(argv), "probe", {}, {}};
}

}  // namespace

TEST_CASE("dependency installer: the verdict is written where discovery reads it") {
  Folder folder;
  Done done;
  gateway::DependencyInstaller installer({"PATH=/usr/bin:/bin"}, [&] { done(); });
  installer.request({job(folder.path(), "h1", {"true"})});
  REQUIRE(done.wait_for(1));
  CHECK(read(folder.path() / ".fastfn" / "deps.ok") == "h1\n");
  installer.request(
      {job(folder.path(), "h2", {"sh", "-c", "echo some output; echo oops >&2; exit 3"})});
  REQUIRE(done.wait_for(2));
  CHECK(read(folder.path() / ".fastfn" / "deps.failed") ==
        "h2\nprobe ended with exit code 3: oops\n");
}

TEST_CASE("dependency installer: a result it cannot record is not tried again") {
  Folder folder;
  std::ofstream(folder.path() / "file") << "a file, not a folder\n";
  Done done;
  gateway::DependencyInstaller installer({"PATH=/usr/bin:/bin"}, [&] { done(); });
  const auto unwritable = job(folder.path() / "file" / "fn", "h1", {"true"});
  installer.request({unwritable});
  REQUIRE(done.wait_for(1));
  // Asked again (each rescan would): not queued. A later job runs next, and is the only one.
  installer.request({unwritable, job(folder.path(), "h2", {"true"})});
  REQUIRE(done.wait_for(2));
  CHECK(read(folder.path() / ".fastfn" / "deps.ok") == "h2\n");
  installer.stop();
  CHECK(done.count == 2);
}
