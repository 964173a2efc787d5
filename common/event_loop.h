// One epoll loop on one thread (MPD's EventLoop with SocketEvent, CoarseTimerEvent and
// InjectEvent; h2o's per-thread loop): file descriptors with a callback when ready, timers on a
// DeadlineQueue (epoll_wait sleeps until the earliest), and callbacks posted from other threads
// through an eventfd. Everything registered here is touched only by the loop thread, so what the
// callbacks share needs no lock. A callback that throws is logged and the loop goes on.
#pragma once

#include <sys/epoll.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/deadline_queue.h"
#include "common/unique_fd.h"

namespace common {

class EventLoop {
 public:
  using Clock = std::chrono::steady_clock;
  using WatchId = std::uint64_t;  // never 0, never reused
  using TimerId = std::uint64_t;  // never 0, never reused
  using ReadyCallback = std::function<void(std::uint32_t events)>;
  using Callback = std::function<void()>;

  // Throws std::system_error when epoll or the eventfd cannot be made. `longest_sleep` bounds
  // each wait, so what post_quietly() queued runs within it even if nothing else happens.
  explicit EventLoop(std::chrono::milliseconds longest_sleep = std::chrono::milliseconds(1000));
  ~EventLoop();
  EventLoop(const EventLoop&) = delete;
  EventLoop& operator=(const EventLoop&) = delete;

  // --- On the loop thread, or before run() starts.

  // Calls `on_ready(events)` whenever `fd` is ready for `events` (EPOLLIN, EPOLLONESHOT, ...).
  // The fd stays the caller's to close, after unwatch(). 0 when epoll refuses it (errno set).
  WatchId watch(int fd, std::uint32_t events, ReadyCallback on_ready);
  // Changes the events of a watch (re-arms an EPOLLONESHOT one). False when epoll refuses.
  bool rearm(WatchId id, std::uint32_t events);
  // Stops watching; the callback is never called again (not even for an event already fetched).
  void unwatch(WatchId id);

  // A timer, disarmed; `on_expiry` runs each time an armed deadline passes (then it is disarmed).
  TimerId add_timer(Callback on_expiry);
  void arm(TimerId id, Clock::time_point when);
  void disarm(TimerId id);
  void remove_timer(TimerId id);

  // --- From any thread.

  // Runs `callback` on the loop thread soon, in the order posted. False once run() has returned:
  // the callback is dropped.
  bool post(Callback callback);
  // Like post(), without waking the loop: the callback runs at its next wake-up, at the latest
  // within the longest sleep (a second by default). For what needs no haste, or whose wake-up is
  // on its way by other means (an fd re-armed right after). Saves a write and a thread wake-up.
  bool post_quietly(Callback callback);
  // epoll_ctl(MOD) of a watch from any thread, for an fd the caller knows is still watched (the
  // loop does not unwatch it meanwhile). Touches no state of the loop's.
  bool rearm_fd(int fd, WatchId id, std::uint32_t events) noexcept;
  // Runs `callback` on the loop thread and waits for it; runs it on the calling thread when that
  // is the loop thread or when the loop has ended.
  void run_and_wait(const Callback& callback);
  // Makes run() return after the callbacks it is running.
  void stop();

  // Runs the loop on the calling thread until stop(). Call once.
  void run();
  bool in_loop_thread() const noexcept { return std::this_thread::get_id() == loop_thread_.load(); }

 private:
  struct Watch {
    int fd;
    ReadyCallback on_ready;
  };
  void consume_wake(const epoll_event* events, int count) noexcept;
  void dispatch_ready(const epoll_event* events, int count);
  void dispatch_timers();
  void dispatch_posted();
  void wake() noexcept;

  int longest_sleep_ms_;
  UniqueFd epoll_;
  UniqueFd wake_fd_;
  // Held by pointer: a callback that unwatches itself must not free the callback that runs. What
  // unwatch() and remove_timer() drop is freed after the callbacks of the round.
  std::unordered_map<WatchId, std::unique_ptr<Watch>> watches_;
  std::unordered_map<TimerId, std::unique_ptr<Callback>> timers_;
  DeadlineQueue deadlines_;
  std::vector<std::unique_ptr<Watch>> dropped_watches_;
  std::vector<std::unique_ptr<Callback>> dropped_timers_;
  std::uint64_t next_id_ = 1;

  std::mutex posted_mutex_;
  std::vector<Callback> posted_;
  bool ended_ = false;         // under posted_mutex_
  bool wake_pending_ = false;  // under posted_mutex_: a wake-up was written and not yet served
  std::atomic<bool> stop_{false};
  std::atomic<std::thread::id> loop_thread_{};
};

}  // namespace common
