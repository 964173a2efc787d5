#include "common/event_loop.h"

#include <sys/eventfd.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <future>
#include <system_error>

#include "common/logging.h"

namespace common {
namespace {

constexpr std::uint64_t kWakeData = 0;  // watch ids start at 1
constexpr int kEventsPerWait = 256;

UniqueFd checked(int fd, const char* what) {
  if (fd < 0) throw std::system_error(errno, std::system_category(), what);
  return UniqueFd(fd);
}

// Runs one callback; whatever it throws is logged, so that nothing ends the loop.
template <class F>
void guarded(const char* what, F&& f) noexcept {
  try {
    f();
  } catch (const std::exception& e) {
    logger("loop")->error("{} failed error=\"{}\"", what, e.what());
  } catch (...) {
    logger("loop")->error("{} failed error=\"unknown exception\"", what);
  }
}

}  // namespace

EventLoop::EventLoop(std::chrono::milliseconds longest_sleep)
    : longest_sleep_ms_(static_cast<int>(std::max<std::chrono::milliseconds::rep>(1, longest_sleep.count()))),
      epoll_(checked(::epoll_create1(EPOLL_CLOEXEC), "epoll_create1")),
      wake_fd_(checked(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK), "eventfd")) {
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.u64 = kWakeData;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, wake_fd_.get(), &event) != 0)
    throw std::system_error(errno, std::system_category(), "epoll_ctl");
}

EventLoop::~EventLoop() = default;

EventLoop::WatchId EventLoop::watch(int fd, std::uint32_t events, ReadyCallback on_ready) {
  WatchId id = next_id_++;
  epoll_event event{};
  event.events = events;
  event.data.u64 = id;
  if (::epoll_ctl(epoll_.get(), EPOLL_CTL_ADD, fd, &event) != 0) return 0;
  watches_.emplace(id, std::make_unique<Watch>(Watch{fd, std::move(on_ready)}));
  return id;
}

bool EventLoop::rearm(WatchId id, std::uint32_t events) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return false;
  epoll_event event{};
  event.events = events;
  event.data.u64 = id;
  return ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, it->second->fd, &event) == 0;
}

void EventLoop::unwatch(WatchId id) {
  auto it = watches_.find(id);
  if (it == watches_.end()) return;
  ::epoll_ctl(epoll_.get(), EPOLL_CTL_DEL, it->second->fd, nullptr);
  dropped_watches_.push_back(std::move(it->second));
  watches_.erase(it);
}

EventLoop::TimerId EventLoop::add_timer(Callback on_expiry) {
  TimerId id = next_id_++;
  timers_.emplace(id, std::make_unique<Callback>(std::move(on_expiry)));
  return id;
}

void EventLoop::arm(TimerId id, Clock::time_point when) { deadlines_.set(id, when); }

void EventLoop::disarm(TimerId id) { deadlines_.cancel(id); }

void EventLoop::remove_timer(TimerId id) {
  deadlines_.cancel(id);
  auto it = timers_.find(id);
  if (it == timers_.end()) return;
  dropped_timers_.push_back(std::move(it->second));
  timers_.erase(it);
}

bool EventLoop::post(Callback callback) {
  bool need_wake;
  {
    std::lock_guard lock(posted_mutex_);
    if (ended_) return false;
    posted_.push_back(std::move(callback));
    need_wake = !wake_pending_;  // else one is on its way already
    wake_pending_ = true;
  }
  if (need_wake) wake();
  return true;
}

bool EventLoop::post_quietly(Callback callback) {
  std::lock_guard lock(posted_mutex_);
  if (ended_) return false;
  posted_.push_back(std::move(callback));
  return true;
}

bool EventLoop::rearm_fd(int fd, WatchId id, std::uint32_t events) noexcept {
  epoll_event event{};
  event.events = events;
  event.data.u64 = id;
  return ::epoll_ctl(epoll_.get(), EPOLL_CTL_MOD, fd, &event) == 0;
}

void EventLoop::run_and_wait(const Callback& callback) {
  if (in_loop_thread()) return callback();
  std::promise<void> done;
  auto finished = done.get_future();
  if (!post([&] {
        guarded("posted callback", callback);
        done.set_value();
      }))
    return callback();  // the loop has ended: nothing else runs its callbacks now
  finished.wait();
}

void EventLoop::stop() {
  stop_ = true;
  wake();
}

void EventLoop::wake() noexcept {
  std::uint64_t one = 1;
  // EAGAIN (the counter is full) still leaves the eventfd readable: the wake-up is not lost.
  [[maybe_unused]] ssize_t n = ::write(wake_fd_.get(), &one, sizeof one);
}

void EventLoop::run() {
  loop_thread_ = std::this_thread::get_id();
  epoll_event events[kEventsPerWait];
  while (!stop_) {
    int timeout = deadlines_.wait_ms(Clock::now());
    if (timeout < 0 || timeout > longest_sleep_ms_) timeout = longest_sleep_ms_;
    int count = ::epoll_wait(epoll_.get(), events, kEventsPerWait, timeout);
    if (count < 0) {
      if (errno != EINTR)
        logger("loop")->error("epoll_wait failed error=\"{}\"", std::strerror(errno));
      count = 0;
    }
    consume_wake(events, count);
    // Posted first: a quiet post made before its fd was re-armed is seen before that fd's event.
    dispatch_posted();
    dispatch_ready(events, count);
    dispatch_timers();
    dropped_watches_.clear();
    dropped_timers_.clear();
  }
  {
    std::lock_guard lock(posted_mutex_);
    ended_ = true;
  }
  dispatch_posted();  // what was posted before the end still runs (run_and_wait waits for it)
  loop_thread_ = std::thread::id();
}

void EventLoop::consume_wake(const epoll_event* events, int count) noexcept {
  // Before the posts are taken, never after: a post made once they are taken must find the
  // eventfd clear, so that its wake-up makes the next wait return at once. Read after the take,
  // that wake-up would be swallowed and its callback left for the longest sleep.
  for (int i = 0; i < count; ++i) {
    if (events[i].data.u64 != kWakeData) continue;
    std::uint64_t counter;
    [[maybe_unused]] ssize_t n = ::read(wake_fd_.get(), &counter, sizeof counter);
    return;
  }
}

void EventLoop::dispatch_ready(const epoll_event* events, int count) {
  for (int i = 0; i < count; ++i) {
    if (events[i].data.u64 == kWakeData) continue;
    // Looked up for each event: an earlier callback of this batch may have unwatched it.
    auto it = watches_.find(events[i].data.u64);
    if (it == watches_.end()) continue;
    Watch* watch = it->second.get();
    std::uint32_t ready = events[i].events;
    guarded("ready callback", [&] { watch->on_ready(ready); });
  }
}

void EventLoop::dispatch_timers() {
  for (TimerId id : deadlines_.take_expired(Clock::now())) {
    auto it = timers_.find(id);
    if (it == timers_.end()) continue;
    Callback* callback = it->second.get();
    guarded("timer callback", [&] { (*callback)(); });
  }
}

void EventLoop::dispatch_posted() {
  std::vector<Callback> batch;
  {
    std::lock_guard lock(posted_mutex_);
    batch.swap(posted_);
    wake_pending_ = false;
  }
  for (auto& callback : batch) guarded("posted callback", callback);
}

}  // namespace common
