// Per-function admission at the gateway (FastFN's worker_pool): at most max_workers requests in
// flight, at most max_queue waiting in FIFO order, each waiting at most queue_timeout. A full queue
// and a wait past the timeout are both refused with the configured overflow status, saying which
// limit was hit. Disabled, it admits everything and only counts.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <mutex>
#include <string>

#include <tl/expected.hpp>

#include "common/error.h"
#include "gateway/function_config.h"

namespace gateway {

struct Refusal {
  common::Error error;  // kTooBusy (429) or kUnavailable (503), as overflow_status says
  std::string limit;    // "max_queue" or "queue_timeout_ms"
};

class Admission {
 public:
  using Clock = std::chrono::steady_clock;

  explicit Admission(const WorkerPoolConfig& config) : config_(config) {}

  // Holds a worker slot until destroyed. Move-only.
  class Ticket {
   public:
    explicit Ticket(Admission* owner) : owner_(owner) {}
    Ticket(Ticket&& other) noexcept : owner_(std::exchange(other.owner_, nullptr)) {}
    Ticket& operator=(Ticket&&) = delete;
    Ticket(const Ticket&) = delete;
    ~Ticket();

   private:
    Admission* owner_;
  };

  // Takes a slot, waiting in the queue when every slot is taken, until `deadline` (the request's
  // own) or queue_timeout, whichever comes first. Thread-safe.
  tl::expected<Ticket, Refusal> enter(Clock::time_point deadline);

  int in_flight() const;
  int queued() const;

 private:
  void leave();
  Refusal refuse(std::string limit, std::string why) const;

  WorkerPoolConfig config_;
  mutable std::mutex mutex_;
  int in_flight_ = 0;
  std::uint64_t next_ticket_ = 0;  // FIFO: waiters are served in the order of their number
  std::deque<std::uint64_t> queue_;
  std::condition_variable freed_;
};

}  // namespace gateway
