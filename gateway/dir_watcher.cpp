#include "gateway/dir_watcher.h"

#include <poll.h>
#include <sys/eventfd.h>
#include <sys/inotify.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdint>
#include <limits>
#include <map>
#include <string>
#include <string_view>
#include <system_error>
#include <unordered_set>
#include <utility>
#include <vector>

#include "common/logging.h"
#include "common/unique_fd.h"

namespace gateway {
namespace {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// Every kind of change that can alter a function: content (MODIFY, CLOSE_WRITE), the executable
// bit of an exec `handler` (ATTRIB), entries coming and going (CREATE, DELETE, MOVED_*), and the
// watched folder itself going away (DELETE_SELF, MOVE_SELF), which matters for the root.
constexpr std::uint32_t kWatchMask = IN_CREATE | IN_DELETE | IN_MODIFY | IN_CLOSE_WRITE |
                                     IN_ATTRIB | IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF |
                                     IN_MOVE_SELF | IN_ONLYDIR;
// Directory events that change which folders need a watch.
constexpr std::uint32_t kTreeEvents = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO;
// Discovery's limit too: deeper nesting is not walked, so it cannot hold functions.
constexpr std::size_t kMaxDepth = 32;

bool is_skipped_dir(std::string_view name) {
  return name.starts_with('.') || name == "node_modules" || name == "__pycache__";
}

struct EntryStat {
  mode_t mode;
  off_t size;
  std::int64_t mtime_ns;
  ino_t ino;
  dev_t dev;
  bool operator==(const EntryStat&) const = default;
};
using Snapshot = std::map<std::string, EntryStat>;

EntryStat entry_stat(const struct stat& st) {
  // A folder's own size and mtime move when skipped entries (a new node_modules) come and go; the
  // entries that matter are in the snapshot themselves, so those two would only add false alarms.
  const bool dir = S_ISDIR(st.st_mode);
  const std::int64_t mtime_ns =
      std::int64_t{st.st_mtim.tv_sec} * 1'000'000'000 + st.st_mtim.tv_nsec;
  return {st.st_mode, dir ? 0 : st.st_size, dir ? 0 : mtime_ns, st.st_ino, st.st_dev};
}

const std::shared_ptr<spdlog::logger>& log() {
  static const auto logger = common::logger("gateway.watch");
  return logger;
}

bool is_gone(int error) { return error == ENOENT || error == ENOTDIR; }

// The tree walk shared by the snapshot and the watch set. It follows symlinks as discovery does
// (stat, not lstat); a dangling link is still an entry. Symlink loops are cut by remembering the
// (dev, inode) of the folders above.
class TreeWalk {
 public:
  using Visitor = std::function<void(const fs::path&, const struct stat&)>;

  // Returns the folders it could not read: the root when even its stat fails (for another
  // reason than absence), else the folders it could not list. A missing root is an empty tree.
  static std::vector<ReadFailure> run(const fs::path& root, const TreeReader& reader,
                                      const Visitor& visit) {
    struct stat st;
    if (::stat(root.c_str(), &st) != 0) {
      if (is_gone(errno)) return {};
      return {ReadFailure{root, errno}};
    }
    visit(root, st);
    TreeWalk walk(reader, visit);
    if (S_ISDIR(st.st_mode)) walk.descend(root, st);
    return std::move(walk.failures_);
  }

 private:
  struct DirId {
    dev_t dev;
    ino_t ino;
    bool operator==(const DirId&) const = default;
  };

  TreeWalk(const TreeReader& reader, const Visitor& visit) : reader_(reader), visit_(visit) {}

  void descend(const fs::path& dir, const struct stat& st) {
    const DirId id{st.st_dev, st.st_ino};
    if (ancestors_.size() >= kMaxDepth ||
        std::find(ancestors_.begin(), ancestors_.end(), id) != ancestors_.end()) {
      return;
    }
    ancestors_.push_back(id);
    list(dir);
    ancestors_.pop_back();
  }

  void list(const fs::path& dir) {
    const auto entries = reader_.list(dir);
    if (!entries) {
      // Gone since its stat is a change the snapshot shows; anything else is unknown.
      if (!is_gone(entries.error().error)) failures_.push_back(entries.error());
      return;
    }
    for (const TreeReader::Entry& entry : *entries) {
      const fs::path path = dir / entry.name;
      struct stat st;
      // Entries that vanish between readdir and stat are simply not there.
      if (::stat(path.c_str(), &st) != 0 && ::lstat(path.c_str(), &st) != 0) continue;
      const bool dir_entry = S_ISDIR(st.st_mode);
      if (dir_entry && is_skipped_dir(path.filename().native())) continue;
      visit_(path, st);
      if (dir_entry) descend(path, st);
    }
  }

  const TreeReader& reader_;
  const Visitor& visit_;
  std::vector<DirId> ancestors_;
  std::vector<ReadFailure> failures_;
};

struct Walked {
  Snapshot snapshot;
  std::vector<ReadFailure> failures;
};

// A folder that cannot be read is not an emptied one: what `previous` saw in it is carried over,
// so it raises no change now and is compared again once it can be read.
Walked take_snapshot(const fs::path& root, const TreeReader& reader, const Snapshot& previous) {
  Walked walked;
  walked.failures =
      TreeWalk::run(root, reader, [&walked](const fs::path& path, const struct stat& st) {
        walked.snapshot.emplace(path.native(), entry_stat(st));
      });
  for (const ReadFailure& failure : walked.failures) {
    if (failure.path == root) {
      walked.snapshot.insert(previous.begin(), previous.end());
      continue;
    }
    const std::string prefix = failure.path.native() + "/";
    for (auto it = previous.lower_bound(prefix);
         it != previous.end() && it->first.starts_with(prefix); ++it)
      walked.snapshot.insert(*it);
  }
  return walked;
}

std::string describe(const std::exception_ptr& error) {
  try {
    std::rethrow_exception(error);
  } catch (const std::exception& e) {
    return e.what();
  } catch (...) {
    return "an exception that is not a std::exception";
  }
}

enum class EventKind { kIgnored, kChange, kTreeChange };

EventKind classify(const inotify_event& event) {
  // Events were dropped: anything may have changed, including which folders exist.
  if (event.mask & IN_Q_OVERFLOW) return EventKind::kTreeChange;
  // A watch ended: our own inotify_rm_watch, or the DELETE_SELF reported just before.
  if (event.mask & IN_IGNORED) return EventKind::kIgnored;
  const bool dir = (event.mask & IN_ISDIR) != 0;
  if (dir && event.len > 0 && is_skipped_dir(event.name)) return EventKind::kIgnored;
  if (event.mask & (IN_DELETE_SELF | IN_MOVE_SELF)) return EventKind::kTreeChange;
  if (dir && (event.mask & kTreeEvents)) return EventKind::kTreeChange;
  return EventKind::kChange;
}

}  // namespace

// Everything the watcher thread owns. Built by start() on the caller's thread so the first
// snapshot and the watches exist before start() returns; then only that thread touches it,
// except wake().
class DirWatcher::Loop {
 public:
  Loop(const DirWatcher& owner, bool use_inotify);
  void run();
  // Thread-safe: makes run() return promptly.
  void wake();

 private:
  Clock::time_point fire_time() const;
  int poll_timeout_ms(Clock::time_point now) const;
  void drain_inotify();
  void sync_watches();
  void note_change(Clock::time_point now);
  void maybe_fire(Clock::time_point now);
  void maybe_rescan(Clock::time_point now);
  Snapshot walk();
  void call_back();
  void log_once(bool& failing, const std::string& what, const std::exception_ptr& error);

  const DirWatcher& owner_;  // owns this Loop, so outlives it
  common::UniqueFd wake_fd_;
  common::UniqueFd inotify_fd_;  // invalid when inotify is off or unavailable
  std::unordered_set<int> watches_;
  Snapshot snapshot_;  // the tree as of the last callback (or start)
  bool pending_ = false;
  bool complete_ = true;     // the last walk read every folder
  bool unreadable_ = false;  // in an episode of walks that could not read everything; logged once
  bool retry_ = false;       // the last callback did not do its work: call again once readable
  bool callback_failing_ = false, loop_failing_ = false;  // logged once per episode
  Clock::time_point first_change_, last_change_, next_rescan_;
};

DirWatcher::Loop::Loop(const DirWatcher& owner, bool use_inotify)
    : owner_(owner), wake_fd_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)) {
  if (!wake_fd_) throw std::system_error(errno, std::system_category(), "eventfd");
  // Without inotify (ENOSYS, EMFILE, the instance limit) the rescan still notices every change.
  if (use_inotify) inotify_fd_.reset(::inotify_init1(IN_CLOEXEC | IN_NONBLOCK));
  // Watches first, then the snapshot: a change in between shows up in one or the other.
  sync_watches();
  snapshot_ = walk();
  next_rescan_ = Clock::now() + owner_.rescan_interval_;
}

void DirWatcher::Loop::run() {
  for (;;) {
    pollfd fds[2] = {{wake_fd_.get(), POLLIN, 0}, {inotify_fd_.get(), POLLIN, 0}};
    // poll ignores the negative fd when inotify is off. A failure (EINTR, ENOMEM) is handled
    // like a timeout: the timers below are checked and the loop polls again.
    const int ready = ::poll(fds, 2, poll_timeout_ms(Clock::now()));
    if (ready > 0 && fds[0].revents != 0) return;  // the eventfd is never read, so stays ready
    // Nothing ends this thread (bad_alloc in a walk, say): the timers were moved on before the
    // work that threw, so the loop waits as usual and tries again.
    try {
      if (ready > 0 && fds[1].revents != 0) drain_inotify();
      maybe_fire(Clock::now());
      maybe_rescan(Clock::now());
      loop_failing_ = false;
    } catch (...) {
      log_once(loop_failing_, "watching the functions dir failed", std::current_exception());
    }
  }
}

void DirWatcher::Loop::log_once(bool& failing, const std::string& what,
                                const std::exception_ptr& error) {
  if (!std::exchange(failing, true))
    log()->error("{}, trying again at the next rescan path={} error=\"{}\"", what,
                 owner_.root_.string(), describe(error));
}

// A walk that reports, once per episode, the folders it could not read.
Snapshot DirWatcher::Loop::walk() {
  Walked walked = take_snapshot(owner_.root_, owner_.reader_, snapshot_);
  complete_ = walked.failures.empty();
  if (!complete_ && !unreadable_) {
    const ReadFailure& first = walked.failures.front();
    log()->warn(
        "cannot read the functions dir, changes there wait until it can be read path={} "
        "error=\"{}\" folders={}",
        first.path.string(), first.reason(), walked.failures.size());
  } else if (complete_ && unreadable_) {
    log()->info("functions dir readable again path={}", owner_.root_.string());
  }
  unreadable_ = !complete_;
  return std::move(walked.snapshot);
}

void DirWatcher::Loop::call_back() {
  bool failed = false;
  try {
    owner_.on_change_();
    callback_failing_ = false;
  } catch (...) {
    failed = true;
    log_once(callback_failing_, "reload after a change failed", std::current_exception());
  }
  retry_ = failed || owner_.retry_wanted_();
}

void DirWatcher::Loop::wake() {
  const std::uint64_t one = 1;
  // Can only fail with EAGAIN, when the counter is already non-zero: the thread wakes anyway.
  [[maybe_unused]] const ssize_t written = ::write(wake_fd_.get(), &one, sizeof one);
}

Clock::time_point DirWatcher::Loop::fire_time() const {
  // A burst that never goes quiet (a log file written every 100 ms) must not starve reloads.
  const auto max_delay = std::max<Clock::duration>(std::chrono::seconds(1), 2 * owner_.debounce_);
  return std::min(last_change_ + owner_.debounce_, first_change_ + max_delay);
}

int DirWatcher::Loop::poll_timeout_ms(Clock::time_point now) const {
  Clock::time_point deadline = next_rescan_;
  if (pending_) deadline = std::min(deadline, fire_time());
  if (deadline <= now) return 0;
  const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - now).count();
  return static_cast<int>(std::min<std::int64_t>(left, std::numeric_limits<int>::max()));
}

void DirWatcher::Loop::drain_inotify() {
  alignas(inotify_event) char buffer[16 * 1024];  // fits at least one event with a NAME_MAX name
  bool changed = false;
  bool tree_changed = false;
  for (;;) {
    const ssize_t n = ::read(inotify_fd_.get(), buffer, sizeof buffer);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;  // EAGAIN: drained
    for (ssize_t offset = 0; offset < n;) {
      const auto* event = reinterpret_cast<const inotify_event*>(buffer + offset);
      offset += static_cast<ssize_t>(sizeof(inotify_event) + event->len);
      if (event->mask & IN_IGNORED) watches_.erase(event->wd);
      const EventKind kind = classify(*event);
      changed = changed || kind != EventKind::kIgnored;
      tree_changed = tree_changed || kind == EventKind::kTreeChange;
    }
  }
  // Once per batch, not per event: `cp -r` of a big tree would otherwise walk it per folder.
  if (tree_changed) sync_watches();
  if (changed) note_change(Clock::now());
}

// Makes the watch set exactly the folders the walk reaches. Re-adding a watched folder returns
// its existing descriptor, so this also settles moves within the tree; folders that were deleted
// or moved out are dropped. A folder created between an event and this walk is still found,
// because the walk happens after the event.
void DirWatcher::Loop::sync_watches() {
  if (!inotify_fd_) return;
  std::unordered_set<int> current;
  const auto failures =
      TreeWalk::run(owner_.root_, owner_.reader_, [&](const fs::path& path, const struct stat& st) {
        if (!S_ISDIR(st.st_mode)) return;
        // ENOSPC (fs.inotify.max_user_watches) or EACCES leave that folder to the rescan.
        const int wd = ::inotify_add_watch(inotify_fd_.get(), path.c_str(), kWatchMask);
        if (wd >= 0) current.insert(wd);
      });
  // The folders below one that could not be listed were not reached, not removed: keep them.
  if (!failures.empty()) current.insert(watches_.begin(), watches_.end());
  for (const int wd : watches_) {
    if (!current.contains(wd)) ::inotify_rm_watch(inotify_fd_.get(), wd);
  }
  watches_ = std::move(current);
}

void DirWatcher::Loop::note_change(Clock::time_point now) {
  if (!pending_) first_change_ = now;
  pending_ = true;
  last_change_ = now;
}

void DirWatcher::Loop::maybe_fire(Clock::time_point now) {
  if (!pending_ || now < fire_time()) return;
  pending_ = false;
  // Taken before the callback: a change made while it runs differs from this snapshot (and
  // raises an event), so it is reported by a later call rather than lost.
  snapshot_ = walk();
  call_back();
}

void DirWatcher::Loop::maybe_rescan(Clock::time_point now) {
  if (now < next_rescan_) return;
  next_rescan_ = now + owner_.rescan_interval_;
  // A callback that could not do its work is retried once the whole tree reads again, so a
  // change it missed is not lost when nothing else changes afterwards.
  if (walk() == snapshot_ && !(retry_ && complete_)) return;
  // inotify missed something (no support, overflow, no watch yet on a new root or folder):
  // fix the watches, then report it like an event so the debounce still applies.
  sync_watches();
  note_change(now);
}

DirWatcher::DirWatcher(std::filesystem::path root, std::function<void()> on_change,
                       std::chrono::milliseconds debounce,
                       std::chrono::milliseconds rescan_interval, bool use_inotify,
                       DirWatcherSeams seams)
    : root_(std::move(root)),
      on_change_(std::move(on_change)),
      debounce_(debounce),
      rescan_interval_(rescan_interval),
      use_inotify_(use_inotify),
      reader_(seams.reader ? *seams.reader : disk_reader()),
      retry_wanted_(seams.retry_wanted ? std::move(seams.retry_wanted)
                                       : [] { return process_discovery().retry_wanted(); }) {
  assert(on_change_);
  assert(debounce_.count() >= 0 && rescan_interval_.count() > 0);
}

DirWatcher::~DirWatcher() { stop(); }

void DirWatcher::start() {
  std::lock_guard lock(mutex_);
  if (loop_) return;
  auto loop = std::make_unique<Loop>(*this, use_inotify_);
  thread_ = std::thread([raw = loop.get()] { raw->run(); });  // run() lets nothing escape
  loop_ = std::move(loop);
}

void DirWatcher::stop() {
  std::lock_guard lock(mutex_);
  if (!loop_) return;
  assert(thread_.get_id() != std::this_thread::get_id());  // stop() from on_change would deadlock
  loop_->wake();
  thread_.join();
  loop_.reset();
}

}  // namespace gateway
