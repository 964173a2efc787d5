// Probes GET /_/health on every socket of every function: each socket once per health-interval
// (every 50 ms while it is starting, so a restarted watchdog takes traffic as soon as it answers).
// One thread runs every probe at once, on non-blocking sockets polled together, and each probe has
// a deadline of half an interval (at least 500 ms) that covers connect, write and read. So a hung
// watchdog (SIGSTOP: the kernel still accepts its connections, nobody answers) delays no other
// socket's probe. A socket that was up and misses one deadline is probed again at once, and marked
// down (no new requests) when it misses that one too: one late answer on a busy machine is not a
// hung watchdog. That is within two intervals of its last answer (one interval plus 2 x 500 ms
// for intervals below 1 s). A probe that fails otherwise (refused, closed, a status other than
// 200) marks it down at once, and the first answer after it wakes marks it up again.
#pragma once

#include <poll.h>

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/unique_fd.h"
#include "gateway/upstream.h"
#include "protocol/http_parser.h"

namespace gateway {

// The result of one probe: up, or down with why.
struct ProbeResult {
  bool up = false;
  std::string reason;
  bool timed_out = false;  // no answer by the deadline (rather than a refusal or a bad answer)
};

// When probes run and what their results do to a socket. Pure: time is passed in.
struct ProbePolicy {
  using Clock = std::chrono::steady_clock;
  static constexpr std::chrono::milliseconds kStartingInterval{50};
  // A probe may always take this long: on a busy machine a healthy watchdog may need some 100 ms to
  // answer, and marking it down for that would make routing flap.
  static constexpr std::chrono::milliseconds kMinTimeout{500};

  // Deadlines missed in a row that mark a socket down.
  static constexpr int kMissesToDown = 2;

  std::chrono::milliseconds interval{1000};

  // How long a probe may take: half an interval, at least kMinTimeout.
  std::chrono::milliseconds timeout() const { return std::max(interval / 2, kMinTimeout); }
  // Whether `upstream` is probed at all: not while parked, nor while a supervised watchdog is not
  // running (the supervisor's reason for it stays shown).
  static bool probed(const Upstream& upstream);
  // Marks `upstream` up or down by `result` (a watchdog in its startup allowance stays starting)
  // and answers when the next probe of a probe begun at `started` is due. `missed` counts the
  // socket's deadlines missed in a row.
  Clock::time_point apply(Upstream& upstream, const ProbeResult& result, Clock::time_point started,
                          Clock::time_point now, int& missed) const;
};

// One GET /_/health exchange over a non-blocking socket: connect, write the request, read the
// response, each step when poll() says the fd is ready for it.
class Probe {
 public:
  using Clock = std::chrono::steady_clock;

  // Begins connecting. A connect that fails at once finishes the probe (done()).
  Probe(const common::Address& address, Clock::time_point deadline);

  bool done() const noexcept { return result_.has_value(); }
  const std::optional<ProbeResult>& result() const noexcept { return result_; }
  Clock::time_point deadline() const noexcept { return deadline_; }
  // What to poll for while not done.
  pollfd poll_entry() const;
  // Goes on after poll() reported `revents` for poll_entry().
  void advance(short revents);
  // Ends the probe at its deadline: "no answer within N ms".
  void expire(std::chrono::milliseconds timeout);

 private:
  enum class Step { kConnecting, kWriting, kReading };
  void finish(bool up, std::string reason);
  void write_some();
  void read_some();

  std::string what_;  // "health probe of unix:/..."
  Clock::time_point deadline_;
  common::UniqueFd fd_;
  Step step_ = Step::kConnecting;
  std::size_t written_ = 0;
  protocol::ResponseParser parser_;
  std::optional<ProbeResult> result_;
};

class HealthProber {
 public:
  using Clock = std::chrono::steady_clock;
  using Sockets = std::function<std::vector<std::shared_ptr<Upstream>>()>;

  // `sockets` lists what to probe now (called on the prober's thread). Starts the thread.
  HealthProber(Sockets sockets, std::chrono::milliseconds interval);
  ~HealthProber();
  HealthProber(const HealthProber&) = delete;
  HealthProber& operator=(const HealthProber&) = delete;

  void set_interval(std::chrono::milliseconds interval);
  // Probes every socket again now (after a reload or a restart).
  void poke();

 private:
  struct Slot {
    std::shared_ptr<Upstream> upstream;
    Clock::time_point next_at{};
    Clock::time_point started{};
    std::optional<Probe> probe;
    int missed = 0;
  };

  void run();
  // Keeps the slots in step with the sockets there are now; returns the policy to use.
  ProbePolicy refresh(std::vector<Slot>& slots, Clock::time_point now);
  void wake();

  Sockets sockets_;
  common::UniqueFd wakeup_;  // an eventfd: poke() and the destructor interrupt the poll
  std::mutex mutex_;
  std::chrono::milliseconds interval_;
  bool poked_ = false;
  bool quit_ = false;
  std::thread thread_;
};

}  // namespace gateway
