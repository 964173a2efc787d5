// The watcher behind hot reload: it tells the gateway that something under the functions dir
// changed, so added, changed and removed functions take effect within about a second without a
// restart. It only says "something changed, look again": discovery re-reads the tree and compares
// fingerprints, so a spurious call costs one walk and is otherwise harmless, while a missed change
// is a bug. Hence two sources: inotify on every directory under the root (immediate), and a full
// rescan every few seconds comparing a cheap snapshot (paths, types, sizes, mtimes, modes, inodes)
// for file systems without inotify (NFS, some FUSE mounts), an exhausted watch limit, queue
// overflow, a root that does not exist yet or was removed and recreated, and changes behind
// symlinks. Bursts (an editor's save, `git checkout`, `cp -r`) are coalesced by a debounce. A
// folder it cannot read (out of fds, EACCES, EIO) is not taken as emptied: what it held keeps its
// last snapshot until it can be read again, and the episode is logged once.
#pragma once

#include <chrono>
#include <filesystem>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>

#include "gateway/discovery.h"

namespace gateway {

// What tests replace. The defaults: the disk, and the process's discovery.
struct DirWatcherSeams {
  // Lists the folders of the tree; nullptr is disk_reader(). Must outlive the watcher.
  const TreeReader* reader = nullptr;
  // Asked after each callback: true means the callback could not read everything it needed (a
  // transient failure), so it is called again at the first rescan that reads the whole tree, even
  // if nothing changed. Empty is process_discovery().retry_wanted().
  std::function<bool()> retry_wanted;
};

class DirWatcher {
 public:
  // Calls `on_change` on the watcher's own thread once a burst of changes under `root` has been
  // quiet for `debounce` (a burst that never goes quiet still fires about every
  // max(1 s, 2 * debounce)). Dotfolders, node_modules and __pycache__ are not walked or watched:
  // their contents are not function code. Symlinked directories are followed, as discovery
  // follows them. `root` may be missing at start and may be removed and recreated later; its
  // appearance is noticed by the rescan, within `rescan_interval`. `use_inotify = false` leaves
  // only the rescan (tests use it to exercise the fallback). An exception from on_change is logged
  // (once while it keeps failing) and the call is tried again at the next rescan that reads the
  // whole tree: nothing ends the watcher's thread. on_change must not call start() or stop().
  // REQUIRES: on_change is set, debounce >= 0, rescan_interval > 0.
  DirWatcher(std::filesystem::path root, std::function<void()> on_change,
             std::chrono::milliseconds debounce = std::chrono::milliseconds(150),
             std::chrono::milliseconds rescan_interval = std::chrono::seconds(2),
             bool use_inotify = true, DirWatcherSeams seams = {});
  // Stops and joins.
  ~DirWatcher();
  DirWatcher(const DirWatcher&) = delete;
  DirWatcher& operator=(const DirWatcher&) = delete;

  // Takes the first snapshot and adds the watches before returning, so every change made after
  // start() returns is reported. A no-op when already running. Throws std::system_error when the
  // wake-up eventfd cannot be created; a failing inotify_init1 only leaves the rescan.
  // Thread-safe.
  void start();
  // Wakes the thread and joins it. When it returns no callback is running and none will run
  // until the next start(); a callback in progress is waited for. A no-op when not running.
  // Thread-safe.
  void stop();

 private:
  class Loop;  // the thread's state: fds, watches, snapshot; defined in the .cpp

  const std::filesystem::path root_;
  const std::function<void()> on_change_;
  const std::chrono::milliseconds debounce_;
  const std::chrono::milliseconds rescan_interval_;
  const bool use_inotify_;
  const TreeReader& reader_;  // outlives this object (DirWatcherSeams)
  const std::function<bool()> retry_wanted_;

  std::mutex mutex_;  // serialises start() and stop()
  std::unique_ptr<Loop> loop_;
  std::thread thread_;
};

}  // namespace gateway
