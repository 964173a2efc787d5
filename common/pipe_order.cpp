#include "common/pipe_order.h"

#include <poll.h>
#include <sys/inotify.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <string>

namespace common {

void PipeOrderState::on_read() noexcept {
  if (answered_) read_after_answering_ = true;
  ++reads_;
}

void PipeOrderState::on_answer_write() noexcept {
  // Writes before any read since begin() are either a late answer to an earlier request or, when
  // an answer is expected, still this one's: reads_ tells which came first.
  if (unsettled_ && reads_ == 0) return;  // maybe the previous answer's last write
  if (!answered_ && reads_ == 0) answered_before_reading_ = true;
  answered_ = true;
}

PipeWatcher::PipeWatcher() : fd_(::inotify_init1(IN_NONBLOCK | IN_CLOEXEC)) {}

std::unique_ptr<PipeOrder> PipeWatcher::watch(int stdin_fd, int stdout_fd) {
  if (!available()) return nullptr;
  // A pipe has no path, but its /proc/self/fd link resolves to the pipe's inode, which inotify can
  // watch; both ends share it, so the process's reads and writes are seen from ours.
  auto link = [](int fd) { return "/proc/self/fd/" + std::to_string(fd); };
  std::lock_guard lock(mutex_);
  int read_wd = ::inotify_add_watch(fd_.get(), link(stdin_fd).c_str(), IN_ACCESS);
  if (read_wd < 0) return nullptr;
  int write_wd = ::inotify_add_watch(fd_.get(), link(stdout_fd).c_str(), IN_MODIFY);
  if (write_wd < 0) {
    ::inotify_rm_watch(fd_.get(), read_wd);
    return nullptr;
  }
  std::unique_ptr<PipeOrder> order(new PipeOrder(*this, read_wd, write_wd));
  by_wd_[read_wd] = order.get();
  by_wd_[write_wd] = order.get();
  return order;
}

void PipeWatcher::drain_locked() {
  alignas(inotify_event) char buffer[4096];
  for (;;) {
    ssize_t n = ::read(fd_.get(), buffer, sizeof(buffer));
    if (n <= 0) return;  // EAGAIN: nothing more queued
    for (char* p = buffer; p < buffer + n;) {
      auto* event = reinterpret_cast<inotify_event*>(p);
      p += sizeof(inotify_event) + event->len;
      if (event->mask & IN_Q_OVERFLOW) {
        for (auto& [wd, order] : by_wd_) order->state_.on_lost();
        continue;
      }
      auto it = by_wd_.find(event->wd);
      if (it == by_wd_.end()) continue;
      if (event->mask & IN_ACCESS) it->second->state_.on_read();
      if (event->mask & IN_MODIFY) it->second->state_.on_answer_write();
    }
  }
}

PipeOrder::~PipeOrder() {
  std::lock_guard lock(watcher_.mutex_);
  watcher_.drain_locked();  // no event of these wds may reach a later owner of the numbers
  for (int wd : {read_wd_, write_wd_}) {
    ::inotify_rm_watch(watcher_.fd_.get(), wd);  // fails harmlessly when the pipe is gone already
    watcher_.by_wd_.erase(wd);
  }
}

PipeOrderState PipeOrder::begin(bool settled) {
  std::lock_guard lock(watcher_.mutex_);
  watcher_.drain_locked();
  PipeOrderState before = state_;
  state_.begin(settled);
  return before;
}

PipeOrderState PipeOrder::now() {
  std::lock_guard lock(watcher_.mutex_);
  watcher_.drain_locked();
  return state_;
}

PipeOrderState PipeOrder::after_answer_seen() {
  // The event is queued within the writer's syscall, just after the wake-up that let the caller
  // read the bytes; a second is far beyond that, and a state without it is reported as lost. As a
  // rule the process read its request long before it answered, and nothing needs waiting for.
  auto give_up = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  for (;;) {
    PipeOrderState state = now();
    if (state.order_known()) return state;
    if (std::chrono::steady_clock::now() >= give_up) {
      state.on_lost();
      return state;
    }
    pollfd pfd{watcher_.fd_.get(), POLLIN, 0};
    ::poll(&pfd, 1, 10);
  }
}

}  // namespace common
