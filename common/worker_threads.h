// The threads that run the blocking part of a request (a handler reading its body, waiting for a
// process, writing the answer), so that the event loop never blocks. A thread exists only while
// there is work for it: one is started when a task finds no idle thread (up to max_threads, then
// tasks wait in a FIFO queue), and one that found no task for `idle_exit` ends. Idle connections
// cost no thread here: the loop holds them. (Not gateway/admission's FastFN "worker_pool", which
// limits requests per function.)
#pragma once

#include <chrono>
#include <condition_variable>
#include <deque>
#include <functional>
#include <list>
#include <mutex>
#include <thread>

namespace common {

class WorkerThreads {
 public:
  struct Settings {
    int max_threads = 1024;
    std::chrono::milliseconds idle_exit{60'000};
  };

  explicit WorkerThreads(const Settings& settings);
  // stop().
  ~WorkerThreads();
  WorkerThreads(const WorkerThreads&) = delete;
  WorkerThreads& operator=(const WorkerThreads&) = delete;

  // Runs `task` on an idle thread, on a new one when every thread is busy and fewer than
  // max_threads run, else when a thread frees (FIFO). An exception from `task` is logged and ends
  // neither the thread nor the process. False (the task is dropped) after stop(), or when no thread
  // runs and none can be started (EAGAIN: no process or memory to be had). Thread-safe.
  bool submit(std::function<void()> task);
  // Refuses new tasks, lets the running and queued ones finish, and joins every thread.
  // Idempotent; not from a task.
  void stop();

  // For metrics and tests. Thread-safe.
  int threads() const;
  int idle() const;
  std::size_t queued() const;

 private:
  using ThreadList = std::list<std::thread>;
  void worker_main(ThreadList::iterator self);
  // REQUIRES: mutex_ held. False when the thread could not be started.
  bool start_thread_locked();

  const Settings settings_;
  mutable std::mutex mutex_;
  std::condition_variable work_;
  std::condition_variable all_gone_;
  std::deque<std::function<void()>> queue_;
  ThreadList running_;
  // The last thread that ended, not yet joined: the next one to end joins it (so no ended thread
  // waits for stop() to be joined, and none is detached).
  std::thread retired_;
  int threads_ = 0;
  int idle_ = 0;
  bool stopping_ = false;
};

}  // namespace common
