#include "common/worker_threads.h"

#include <system_error>
#include <utility>

#include "common/logging.h"

namespace common {
namespace {

void run_logged(const std::function<void()>& task) noexcept {
  try {
    task();
  } catch (const std::exception& e) {
    logger("worker")->error("task failed error=\"{}\"", e.what());
  } catch (...) {
    logger("worker")->error("task failed error=\"unknown exception\"");
  }
}

}  // namespace

WorkerThreads::WorkerThreads(const Settings& settings) : settings_(settings) {}

WorkerThreads::~WorkerThreads() { stop(); }

bool WorkerThreads::submit(std::function<void()> task) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return false;
    queue_.push_back(std::move(task));
    // Idle threads that were woken but have not taken their task yet are still counted idle: a
    // thread is started whenever the queue holds more tasks than idle threads to take them.
    if (queue_.size() > static_cast<std::size_t>(idle_) && threads_ < settings_.max_threads &&
        !start_thread_locked() && threads_ == 0) {
      queue_.pop_back();  // nobody would ever run it
      return false;
    }
  }
  // Outside the lock: the thread woken takes the lock at once, and would only wait for ours.
  work_.notify_one();
  return true;
}

bool WorkerThreads::start_thread_locked() {
  // Started under the lock: the new thread's first step takes the lock, so it cannot look at its
  // list entry before the std::thread is stored in it.
  auto self = running_.emplace(running_.end());
  try {
    *self = std::thread(&WorkerThreads::worker_main, this, self);
  } catch (const std::system_error& e) {
    running_.erase(self);
    logger("worker")->warn("cannot start a thread, the task waits threads={} error=\"{}\"",
                           threads_, e.what());
    return false;
  }
  ++threads_;
  return true;
}

void WorkerThreads::worker_main(ThreadList::iterator self) {
  std::unique_lock lock(mutex_);
  for (;;) {
    if (queue_.empty()) {
      if (stopping_) break;
      ++idle_;
      bool woken = work_.wait_for(lock, settings_.idle_exit,
                                  [this] { return !queue_.empty() || stopping_; });
      --idle_;
      if (!woken) break;  // idle for idle_exit: this thread is not needed
      continue;
    }
    std::function<void()> task = std::move(queue_.front());
    queue_.pop_front();
    lock.unlock();
    run_logged(task);
    task = nullptr;  // what the task captured is released outside the lock too
    lock.lock();
  }
  --threads_;
  std::thread previous = std::exchange(retired_, std::move(*self));
  running_.erase(self);
  if (threads_ == 0) all_gone_.notify_all();
  lock.unlock();
  if (previous.joinable()) previous.join();
}

void WorkerThreads::stop() {
  std::unique_lock lock(mutex_);
  stopping_ = true;
  work_.notify_all();
  all_gone_.wait(lock, [this] { return threads_ == 0; });
  std::thread last = std::move(retired_);
  lock.unlock();
  if (last.joinable()) last.join();
}

int WorkerThreads::threads() const {
  std::lock_guard lock(mutex_);
  return threads_;
}

int WorkerThreads::idle() const {
  std::lock_guard lock(mutex_);
  return idle_;
}

std::size_t WorkerThreads::queued() const {
  std::lock_guard lock(mutex_);
  return queue_.size();
}

}  // namespace common
