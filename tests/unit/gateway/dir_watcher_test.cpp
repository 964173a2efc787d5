#include "gateway/dir_watcher.h"

#include <doctest/doctest.h>
#include <stdlib.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <system_error>
#include <thread>

namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Long enough that a test relying on inotify cannot pass through the rescan by accident.
constexpr milliseconds kNoRescan(60'000);
// Generous bounds for a loaded CI machine; the expected latency is debounce or rescan interval.
constexpr milliseconds kDeadline(5'000);
// How long "nothing happens" is observed. Waiting a fixed time is the assertion itself here.
constexpr milliseconds kQuiet(500);
// How long settle() waits for silence after a callback: several debounces.
constexpr milliseconds kSettle(300);

// A functions dir in a fresh temp folder, removed at the end of the test.
class TempTree {
 public:
  TempTree() {
    std::string pattern = (fs::temp_directory_path() / "fastfn-watcher-XXXXXX").string();
    REQUIRE(mkdtemp(pattern.data()) != nullptr);
    base_ = pattern;
  }
  ~TempTree() {
    std::error_code ec;
    fs::remove_all(base_, ec);
  }
  TempTree(const TempTree&) = delete;
  TempTree& operator=(const TempTree&) = delete;

  const fs::path& base() const { return base_; }
  fs::path root() const { return base_ / "functions"; }
  fs::path make_root() const {
    fs::create_directories(root());
    return root();
  }
  void write(const std::string& rel, const std::string& content = "x") const {
    const fs::path path = root() / rel;
    fs::create_directories(path.parent_path());
    std::ofstream(path) << content;
  }

 private:
  fs::path base_;
};

// Counts callbacks and remembers when the last one ran.
struct Calls {
  std::atomic<int> count{0};
  std::atomic<Clock::rep> last{0};
  std::function<void()> callback() {
    return [this] {
      last = Clock::now().time_since_epoch().count();
      ++count;
    };
  }
  Clock::time_point last_time() const { return Clock::time_point(Clock::duration(last.load())); }
};

bool wait_until(const std::function<bool()>& done, milliseconds timeout = kDeadline) {
  const auto deadline = Clock::now() + timeout;
  while (!done()) {
    if (Clock::now() >= deadline) return false;
    std::this_thread::sleep_for(milliseconds(5));
  }
  return true;
}

// Waits for at least `n` callbacks, then for the watcher to stay quiet, and returns the total.
int settle(const Calls& calls, int n = 1) {
  REQUIRE(wait_until([&] { return calls.count >= n; }));
  const auto deadline = Clock::now() + kDeadline;
  int seen = calls.count;
  do {
    std::this_thread::sleep_for(kSettle);
    if (calls.count == seen) return seen;
    seen = calls.count;
  } while (Clock::now() < deadline);
  FAIL("the watcher never went quiet");
  return seen;
}

std::size_t open_fds() {
  return static_cast<std::size_t>(std::distance(fs::directory_iterator("/proc/self/fd"), {}));
}

TEST_CASE("dir_watcher: creating a file in the root fires once after the debounce") {
  TempTree tree;
  Calls calls;
  gateway::DirWatcher watcher(tree.make_root(), calls.callback(), milliseconds(150), kNoRescan);
  watcher.start();
  const auto written = Clock::now();
  tree.write("handler.sh", "echo hi");
  CHECK(settle(calls) == 1);
  CHECK(calls.last_time() - written >= milliseconds(150));
}

TEST_CASE("dir_watcher: a burst of changes fires once") {
  TempTree tree;
  Calls calls;
  gateway::DirWatcher watcher(tree.make_root(), calls.callback(), milliseconds(150), kNoRescan);
  watcher.start();
  for (int i = 0; i < 20; ++i)
    tree.write("fn" + std::to_string(i % 4) + "/handler.py", "v" + std::to_string(i));
  const int total = settle(calls);
  CHECK(total >= 1);
  CHECK(total <= 2);  // one burst; a second call only if the machine stalled mid-burst
}

TEST_CASE("dir_watcher: a change in a folder created after start fires") {
  TempTree tree;
  Calls calls;
  gateway::DirWatcher watcher(tree.make_root(), calls.callback(), milliseconds(50), kNoRescan);
  watcher.start();
  fs::create_directories(tree.root() / "api/users/v1");
  const int after_mkdir = settle(calls);
  tree.write("api/users/v1/handler.py", "print()");
  CHECK(wait_until([&] { return calls.count > after_mkdir; }));
  const int after_write = settle(calls);
  std::ofstream(tree.root() / "api/users/v1/handler.py", std::ios::app) << "more";
  CHECK(wait_until([&] { return calls.count > after_write; }));
}

TEST_CASE("dir_watcher: deleting a folder fires") {
  TempTree tree;
  tree.make_root();
  tree.write("hello/handler.sh");
  Calls calls;
  gateway::DirWatcher watcher(tree.root(), calls.callback(), milliseconds(50), kNoRescan);
  watcher.start();
  fs::remove_all(tree.root() / "hello");
  CHECK(settle(calls) >= 1);
}

TEST_CASE("dir_watcher: chmod fires") {
  TempTree tree;
  tree.make_root();
  tree.write("tool/handler", "#!/bin/sh\n");
  Calls calls;
  gateway::DirWatcher watcher(tree.root(), calls.callback(), milliseconds(50), kNoRescan);
  watcher.start();
  fs::permissions(tree.root() / "tool/handler", fs::perms::owner_exec, fs::perm_options::add);
  CHECK(settle(calls) == 1);
}

TEST_CASE("dir_watcher: moves in, out and within the tree fire") {
  TempTree tree;
  tree.make_root();
  tree.write("a/handler.sh");
  fs::create_directories(tree.base() / "outside/b");
  Calls calls;
  gateway::DirWatcher watcher(tree.root(), calls.callback(), milliseconds(50), kNoRescan);
  watcher.start();

  SUBCASE("a folder moved in is watched") {
    fs::rename(tree.base() / "outside/b", tree.root() / "b");
    const int seen = settle(calls);
    tree.write("b/handler.py");
    CHECK(wait_until([&] { return calls.count > seen; }));
  }
  SUBCASE("a folder renamed within the tree is watched under its new name") {
    fs::rename(tree.root() / "a", tree.root() / "renamed");
    const int seen = settle(calls);
    tree.write("renamed/handler.py");
    CHECK(wait_until([&] { return calls.count > seen; }));
  }
  SUBCASE("a folder moved out is no longer watched") {
    fs::rename(tree.root() / "a", tree.base() / "outside/a");
    const int seen = settle(calls);
    std::ofstream(tree.base() / "outside/a/handler.sh") << "changed";
    std::this_thread::sleep_for(kQuiet);
    CHECK(calls.count == seen);
  }
}

TEST_CASE("dir_watcher: changes in dotfolders, node_modules and __pycache__ stay quiet") {
  TempTree tree;
  tree.make_root();
  tree.write(".git/HEAD");
  tree.write("fn/node_modules/dep/index.js");
  tree.write("fn/__pycache__/handler.cpython-311.pyc");
  Calls calls;
  // A short rescan interval: the snapshot must skip these folders too.
  gateway::DirWatcher watcher(tree.root(), calls.callback(), milliseconds(20), milliseconds(50));
  watcher.start();
  tree.write(".git/HEAD", "ref: refs/heads/other");
  tree.write(".git/objects/ab/cdef");
  tree.write("fn/node_modules/dep/index.js", "changed");
  tree.write("fn/node_modules/new/index.js");
  fs::remove_all(tree.root() / "fn/__pycache__");
  tree.write("fn/.cache/new/file");  // a dotfolder created after start
  std::this_thread::sleep_for(kQuiet);
  CHECK(calls.count == 0);
}

TEST_CASE("dir_watcher: stop returns promptly and no callback runs after it") {
  TempTree tree;
  Calls calls;
  gateway::DirWatcher watcher(tree.make_root(), calls.callback(), milliseconds(300), kNoRescan);
  watcher.start();
  tree.write("pending/handler.sh");               // its callback would come 300 ms later
  std::this_thread::sleep_for(milliseconds(20));  // let the thread see the event
  const auto before = Clock::now();
  watcher.stop();
  CHECK(Clock::now() - before < milliseconds(250));  // it did not wait out the debounce
  const int at_stop = calls.count;
  tree.write("later/handler.sh");
  std::this_thread::sleep_for(kQuiet);
  CHECK(calls.count == at_stop);
  watcher.stop();  // a second stop is a no-op

  SUBCASE("and start() resumes watching") {
    watcher.start();
    watcher.start();  // a second start is a no-op
    tree.write("again/handler.sh");
    CHECK(wait_until([&] { return calls.count > at_stop; }));
  }
}

TEST_CASE("dir_watcher: a stream of changes that never goes quiet still fires") {
  TempTree tree;
  Calls calls;
  // The debounce alone would wait for the stream to end; the cap is max(1 s, 2 * debounce).
  gateway::DirWatcher watcher(tree.make_root(), calls.callback(), milliseconds(100), kNoRescan);
  watcher.start();
  const auto end = Clock::now() + milliseconds(2'000);
  int i = 0;
  while (Clock::now() < end && calls.count == 0) {
    tree.write("log.txt", std::to_string(++i));
    std::this_thread::sleep_for(milliseconds(30));
  }
  CHECK(calls.count >= 1);
}

TEST_CASE("dir_watcher: a root that appears after start fires within the rescan interval") {
  TempTree tree;
  Calls calls;
  gateway::DirWatcher watcher(tree.root(), calls.callback(), milliseconds(20), milliseconds(200));
  watcher.start();
  fs::create_directories(tree.root());
  const int appeared = settle(calls);
  CHECK(appeared >= 1);

  SUBCASE("then it is watched with inotify") {
    tree.write("hello/handler.sh");
    CHECK(wait_until([&] { return calls.count > appeared; }, milliseconds(150)));
  }
  SUBCASE("and its removal and re-creation are noticed") {
    fs::remove_all(tree.root());
    const int removed = settle(calls, appeared + 1);
    CHECK(removed > appeared);
    tree.write("back/handler.sh");
    CHECK(wait_until([&] { return calls.count > removed; }));
  }
}

TEST_CASE("dir_watcher: without inotify the rescan notices changes") {
  TempTree tree;
  tree.make_root();
  tree.write("fn/handler.sh", "v1");
  Calls calls;
  gateway::DirWatcher watcher(tree.root(), calls.callback(), milliseconds(20), milliseconds(100),
                              /*use_inotify=*/false);
  watcher.start();
  std::this_thread::sleep_for(milliseconds(250));  // several rescans of an unchanged tree
  CHECK(calls.count == 0);

  SUBCASE("content") { tree.write("fn/handler.sh", "version 2"); }
  SUBCASE("mode") {
    fs::permissions(tree.root() / "fn/handler.sh", fs::perms::owner_exec, fs::perm_options::add);
  }
  SUBCASE("a new nested file") { tree.write("new/deep/handler.py"); }
  SUBCASE("a removed folder") { fs::remove_all(tree.root() / "fn"); }
  CHECK(settle(calls) == 1);
}

TEST_CASE("dir_watcher: leaks no file descriptors") {
  TempTree tree;
  tree.make_root();
  tree.write("a/b/handler.sh");
  const std::size_t before = open_fds();
  {
    Calls calls;
    gateway::DirWatcher watcher(tree.root(), calls.callback(), milliseconds(20), milliseconds(50));
    watcher.start();
    tree.write("a/c/handler.sh");
    settle(calls);
    watcher.stop();
    watcher.start();
    tree.write("a/d/handler.sh");
    settle(calls);
  }  // the destructor stops
  CHECK(open_fds() == before);
}

// --- folders that cannot be read (out of fds, EACCES, EIO): not emptied, only unknown

// The disk, except for folders given an errno. It counts the listings of each folder, so a test
// waits for rescans to have happened instead of sleeping. Thread-safe: the watcher's thread reads.
class FlakyReader final : public gateway::TreeReader {
 public:
  void fail(const fs::path& dir, int error) {
    std::lock_guard lock(mutex_);
    errors_[dir] = error;
  }
  void heal() {
    std::lock_guard lock(mutex_);
    errors_.clear();
  }
  int listings(const fs::path& dir) const {
    std::lock_guard lock(mutex_);
    const auto it = listings_.find(dir);
    return it == listings_.end() ? 0 : it->second;
  }

  gateway::ReadResult<std::vector<Entry>> list(const fs::path& dir) const override {
    {
      std::lock_guard lock(mutex_);
      ++listings_[dir];
      if (const auto it = errors_.find(dir); it != errors_.end())
        return tl::unexpected(gateway::ReadFailure{dir, it->second});
    }
    return gateway::disk_reader().list(dir);
  }
  gateway::ReadResult<std::string> read(const fs::path& file) const override {
    return gateway::disk_reader().read(file);
  }

 private:
  mutable std::mutex mutex_;
  std::map<fs::path, int> errors_;
  mutable std::map<fs::path, int> listings_;
};

// Waits until the watcher has listed `dir` `n` more times: with inotify off, once per rescan and
// once per callback, so any callback a rescan before the last two raised has run by then.
void wait_listings(const FlakyReader& reader, const fs::path& dir, int n = 4) {
  const int start = reader.listings(dir);
  REQUIRE(wait_until([&] { return reader.listings(dir) >= start + n; }));
}

constexpr milliseconds kFastRescan(20);

gateway::DirWatcherSeams seams(const FlakyReader& reader, std::function<bool()> retry = {}) {
  return {&reader, retry ? std::move(retry) : [] { return false; }};
}

TEST_CASE("dir_watcher: a functions dir that cannot be listed raises no change") {
  TempTree tree;
  tree.make_root();
  tree.write("a/handler.sh");
  tree.write("b/handler.sh");
  FlakyReader reader;
  Calls calls;
  gateway::DirWatcher watcher(tree.root(), calls.callback(), milliseconds(0), kFastRescan,
                              /*use_inotify=*/false, seams(reader));
  watcher.start();
  reader.fail(tree.root(), EMFILE);
  wait_listings(reader, tree.root());
  CHECK(calls.count == 0);  // an unreadable tree is not an emptied one

  SUBCASE("and readable again, unchanged, still none") {
    reader.heal();
    wait_listings(reader, tree.root());
    CHECK(calls.count == 0);
  }
  SUBCASE("a change made meanwhile is reported once it can be read") {
    fs::remove_all(tree.root() / "b");
    wait_listings(reader, tree.root());
    CHECK(calls.count == 0);
    reader.heal();
    CHECK(settle(calls) == 1);
  }
}

TEST_CASE("dir_watcher: an unlistable subfolder keeps its snapshot, the rest is watched") {
  TempTree tree;
  tree.make_root();
  tree.write("a/handler.sh");
  tree.write("a/nested/handler.sh");
  FlakyReader reader;
  Calls calls;
  gateway::DirWatcher watcher(tree.root(), calls.callback(), milliseconds(0), kFastRescan,
                              /*use_inotify=*/false, seams(reader));
  watcher.start();
  reader.fail(tree.root() / "a", EACCES);
  fs::remove_all(tree.root() / "a/nested");
  wait_listings(reader, tree.root());
  CHECK(calls.count == 0);

  tree.write("c/handler.sh");  // elsewhere: seen
  const int seen = settle(calls);
  CHECK(seen == 1);
  reader.heal();  // the removal in a/ shows now
  CHECK(settle(calls, seen + 1) == seen + 1);
}

TEST_CASE("dir_watcher: a callback that could not read is called again once the tree reads") {
  TempTree tree;
  tree.make_root();
  FlakyReader reader;
  Calls calls;
  std::atomic<int> retries{1};  // the first callback asks for one more
  gateway::DirWatcher watcher(tree.root(), calls.callback(), milliseconds(0), kFastRescan,
                              /*use_inotify=*/false,
                              seams(reader, [&retries] { return retries-- > 0; }));
  watcher.start();

  SUBCASE("at the next rescan") {
    tree.write("a/handler.sh");
    CHECK(settle(calls) == 2);  // the change, then the retry; then quiet: nothing changed
  }
  SUBCASE("not while the tree still cannot be read") {
    tree.write("a/handler.sh");
    REQUIRE(wait_until([&] { return calls.count >= 1; }));
    reader.fail(tree.root(), EMFILE);
    wait_listings(reader, tree.root());
    const int while_failing = calls.count;
    CHECK(while_failing <= 2);  // the retry may have run before the failure began
    reader.heal();
    CHECK(settle(calls) == 2);
  }
}

TEST_CASE("dir_watcher: a callback that throws does not end the watcher; it is called again") {
  TempTree tree;
  tree.make_root();
  FlakyReader reader;
  std::atomic<int> calls{0};
  gateway::DirWatcher watcher(
      tree.root(),
      [&calls] {
        if (++calls == 1) throw std::system_error(EMFILE, std::system_category(), "opendir");
      },
      milliseconds(0), kFastRescan, /*use_inotify=*/false, seams(reader));
  watcher.start();
  tree.write("a/handler.sh");
  REQUIRE(wait_until([&] { return calls >= 2; }));  // retried at the next rescan
  wait_listings(reader, tree.root());
  CHECK(calls == 2);  // and then quiet: that one did its work
  tree.write("b/handler.sh");
  CHECK(wait_until([&] { return calls >= 3; }));  // still watching
}

}  // namespace
