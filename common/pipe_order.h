// What a process did with its stdio pipes, in the order it did it: did it read its request before
// it began to answer, and did it read anything after? The kernel counts a pipe's unread bytes
// (FIONREAD) but not when they were taken, and a buffered reader takes a body it will never look at
// together with whatever it reads next. inotify puts the process's reads of its stdin (IN_ACCESS)
// and writes to its stdout (IN_MODIFY) into one queue, in the order each of its syscalls made them,
// which is the order that tells a late answer (written before the request was read) and a leftover
// (read after the answer began) from a correct exchange.
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>

#include "common/unique_fd.h"

namespace common {

// The verdict on one request, from the events since begin(). Pure: fed by PipeWatcher.
class PipeOrderState {
 public:
  // Starts a request. Unsettled: the process may still be inside the last write of its previous
  // answer, whose event the kernel queues after the bytes reached us; a write before any read then
  // proves nothing (and the caller relies on the bytes left in the stdin pipe alone).
  void begin(bool settled = true) noexcept {
    *this = PipeOrderState();
    unsettled_ = !settled;
  }
  void on_read() noexcept;          // the process read from its stdin
  void on_answer_write() noexcept;  // the process wrote to its stdout
  void on_lost() noexcept { lost_ = true; }  // events were dropped (queue overflow)

  bool answered() const noexcept { return answered_; }
  // Whether answered_before_reading() is final: once a read of this request is queued, no write
  // event queued after it can make the answer come first.
  bool order_known() const noexcept { return answered_ || reads_ > 0; }
  // It wrote before reading anything of the request: its output answers something else.
  bool answered_before_reading() const noexcept { return answered_before_reading_; }
  // It read after it began to answer: bytes of this request it had not looked at (or lost events).
  bool read_after_answering() const noexcept { return read_after_answering_ || lost_; }

 private:
  std::uint64_t reads_ = 0;
  bool answered_ = false;
  bool answered_before_reading_ = false;
  bool read_after_answering_ = false;
  bool lost_ = false;
  bool unsettled_ = false;
};

class PipeWatcher;

// One process's pipes under a PipeWatcher. Thread-safe; destroyed before the pipes are closed.
class PipeOrder {
 public:
  ~PipeOrder();
  PipeOrder(const PipeOrder&) = delete;
  PipeOrder& operator=(const PipeOrder&) = delete;

  // Takes the events so far, then starts a new request: what the caller checks before it writes.
  PipeOrderState begin(bool settled = true);
  // The state of the request begun last, with every event queued so far.
  PipeOrderState now();
  // As now(), but first waits (briefly) until the order of the first write whose bytes the caller
  // has already read is known: the kernel queues the write's event just after it wakes the reader,
  // and only when no read came before does the caller need it.
  PipeOrderState after_answer_seen();

 private:
  friend class PipeWatcher;
  PipeOrder(PipeWatcher& watcher, int read_wd, int write_wd)
      : watcher_(watcher), read_wd_(read_wd), write_wd_(write_wd) {}

  PipeWatcher& watcher_;
  int read_wd_;   // the process's stdin pipe, IN_ACCESS
  int write_wd_;  // the process's stdout pipe, IN_MODIFY
  PipeOrderState state_;  // guarded by watcher_.mutex_
};

// One inotify instance for many processes' pipes (instances are few: 128 per user by default).
// Thread-safe. Must outlive its PipeOrders.
class PipeWatcher {
 public:
  PipeWatcher();  // never throws: without inotify, available() is false and watch() gives nullptr
  bool available() const noexcept { return fd_.valid(); }

  // Watches the pipes behind `stdin_fd` (our write end of the process's stdin) and `stdout_fd` (our
  // read end of its stdout). nullptr when that is not possible.
  std::unique_ptr<PipeOrder> watch(int stdin_fd, int stdout_fd);

 private:
  friend class PipeOrder;
  void drain_locked();  // REQUIRES: mutex_ held

  UniqueFd fd_;
  std::mutex mutex_;
  std::unordered_map<int, PipeOrder*> by_wd_;
};

}  // namespace common
