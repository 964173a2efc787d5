#include "gateway/health_prober.h"

#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>
#include <unordered_map>

#include "common/connect.h"

namespace gateway {
namespace {

using std::chrono::milliseconds;

constexpr std::string_view kRequest =
    "GET /_/health HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n";
constexpr std::size_t kMaxResponse = 64 * 1024;

int poll_timeout(std::chrono::steady_clock::duration left) {
  auto ms = std::chrono::duration_cast<milliseconds>(left).count();
  return static_cast<int>(std::clamp<long long>(ms + 1, 0, 1000));
}

}  // namespace

bool ProbePolicy::probed(const Upstream& upstream) {
  if (upstream.state() == Upstream::State::kCold) return false;
  return !upstream.supervised() || upstream.pid() > 0;
}

ProbePolicy::Clock::time_point ProbePolicy::apply(Upstream& upstream, const ProbeResult& result,
                                                  Clock::time_point started,
                                                  Clock::time_point now, int& missed) const {
  missed = result.timed_out ? missed + 1 : 0;
  if (result.up) {
    upstream.mark(Upstream::State::kUp);
  } else if (result.timed_out && missed < kMissesToDown &&
             upstream.state() == Upstream::State::kUp) {
    return now;  // late once: asked again at once, still routed meanwhile
  } else if (!upstream.in_startup(now)) {
    // A watchdog that is restarting stays starting through the supervisor; others go down.
    upstream.mark(Upstream::State::kDown, result.reason);
  }
  auto cadence = upstream.state() == Upstream::State::kStarting
                     ? std::min(interval, kStartingInterval)
                     : interval;
  return std::max(now, started + cadence);
}

Probe::Probe(const common::Address& address, Clock::time_point deadline)
    : what_("health probe of " + address.to_string()), deadline_(deadline) {
  auto pending = common::begin_connect(address);
  if (!pending) {
    finish(false, what_ + " failed: connect: " + pending.error().context);
    return;
  }
  fd_ = std::move(pending->fd);
  if (!pending->in_progress) step_ = Step::kWriting;
}

pollfd Probe::poll_entry() const {
  return {fd_.get(), static_cast<short>(step_ == Step::kReading ? POLLIN : POLLOUT), 0};
}

void Probe::finish(bool up, std::string reason) {
  result_ = ProbeResult{up, std::move(reason)};
  fd_.reset();
}

void Probe::expire(milliseconds timeout) {
  if (done()) return;
  const char* step = step_ == Step::kConnecting ? "connect" : step_ == Step::kWriting ? "write" : "read";
  finish(false, what_ + " failed: no answer within " + std::to_string(timeout.count()) + " ms (" +
                    step + ")");
  result_->timed_out = true;
}

void Probe::advance(short revents) {
  if (done() || revents == 0) return;
  if (step_ == Step::kConnecting) {
    if (auto connected = common::connect_result(fd_.get()); !connected) {
      finish(false, what_ + " failed: connect: " + connected.error().context);
      return;
    }
    step_ = Step::kWriting;
  }
  if (step_ == Step::kWriting) write_some();
  else read_some();
}

void Probe::write_some() {
  ssize_t sent = ::send(fd_.get(), kRequest.data() + written_, kRequest.size() - written_,
                        MSG_NOSIGNAL);
  if (sent < 0) {
    if (errno == EAGAIN || errno == EINTR) return;
    finish(false, what_ + " failed: write: " + std::strerror(errno));
    return;
  }
  written_ += static_cast<std::size_t>(sent);
  if (written_ == kRequest.size()) step_ = Step::kReading;
}

void Probe::read_some() {
  char buffer[4096];
  ssize_t got = ::recv(fd_.get(), buffer, sizeof(buffer), 0);
  if (got < 0) {
    if (errno == EAGAIN || errno == EINTR) return;
    finish(false, what_ + " failed: read: " + std::strerror(errno));
    return;
  }
  auto status = got == 0 ? parser_.finish() : parser_.feed({buffer, static_cast<std::size_t>(got)});
  if (status == protocol::ParseStatus::kIncomplete) {
    if (got == 0) finish(false, what_ + " failed: closed without an answer");
    else if (parser_.consumed() + parser_.unconsumed().size() > kMaxResponse)
      finish(false, what_ + " failed: answer too large");
    return;
  }
  if (status == protocol::ParseStatus::kError) {
    finish(false, what_ + " failed: bad answer: " + std::string(protocol::describe(parser_.error())));
    return;
  }
  const auto& message = parser_.message();
  if (message.head.status == 200) finish(true, "");
  else finish(false, "health " + std::to_string(message.head.status) + ": " + message.body.substr(0, 300));
}

HealthProber::HealthProber(Sockets sockets, milliseconds interval)
    : sockets_(std::move(sockets)),
      wakeup_(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK)),
      interval_(interval) {
  if (!wakeup_) throw std::system_error(errno, std::system_category(), "eventfd");
  thread_ = std::thread([this] { run(); });
}

HealthProber::~HealthProber() {
  {
    std::lock_guard lock(mutex_);
    quit_ = true;
  }
  wake();
  thread_.join();
}

void HealthProber::wake() {
  std::uint64_t one = 1;
  [[maybe_unused]] auto written = ::write(wakeup_.get(), &one, sizeof(one));
}

void HealthProber::set_interval(milliseconds interval) {
  {
    std::lock_guard lock(mutex_);
    interval_ = interval;
  }
  wake();
}

void HealthProber::poke() {
  {
    std::lock_guard lock(mutex_);
    poked_ = true;
  }
  wake();
}

ProbePolicy HealthProber::refresh(std::vector<Slot>& slots, Clock::time_point now) {
  bool poked;
  ProbePolicy policy;
  {
    std::lock_guard lock(mutex_);
    poked = std::exchange(poked_, false);
    policy.interval = interval_;
  }
  std::unordered_map<const Upstream*, std::size_t> known;
  for (std::size_t i = 0; i < slots.size(); ++i) known.emplace(slots[i].upstream.get(), i);
  std::vector<Slot> next;
  for (auto& upstream : sockets_()) {
    auto it = known.find(upstream.get());
    if (it == known.end() || !slots[it->second].upstream) {
      next.push_back({std::move(upstream), now, {}, {}});
      continue;
    }
    next.push_back(std::move(slots[it->second]));
    slots[it->second].upstream.reset();  // taken (a socket listed twice gets a second slot)
    if (poked && !next.back().probe) next.back().next_at = now;
  }
  slots = std::move(next);  // a removed socket's probe in flight is dropped with it
  return policy;
}

void HealthProber::run() {
  std::vector<Slot> slots;
  for (;;) {
    {
      std::lock_guard lock(mutex_);
      if (quit_) return;
    }
    auto now = Clock::now();
    ProbePolicy policy = refresh(slots, now);
    auto wake_at = now + policy.interval;
    std::vector<pollfd> fds{{wakeup_.get(), POLLIN, 0}};
    std::vector<Slot*> polled;
    for (Slot& slot : slots) {
      if (!slot.probe && now >= slot.next_at) {
        if (!ProbePolicy::probed(*slot.upstream)) {
          // Looked at again then (or when poked); soon while its watchdog is restarting.
          bool cold = slot.upstream->state() == Upstream::State::kCold;
          slot.next_at = now + (cold ? policy.interval
                                     : std::min(policy.interval, ProbePolicy::kStartingInterval));
        } else {
          slot.started = now;
          slot.probe.emplace(slot.upstream->address(), now + policy.timeout());
        }
      }
      if (slot.probe && !slot.probe->done() && now >= slot.probe->deadline())
        slot.probe->expire(policy.timeout());
      if (slot.probe && slot.probe->done()) {
        slot.next_at = policy.apply(*slot.upstream, *slot.probe->result(), slot.started, now,
                                    slot.missed);
        slot.probe.reset();
      }
      if (slot.probe) {
        fds.push_back(slot.probe->poll_entry());
        polled.push_back(&slot);
        wake_at = std::min(wake_at, slot.probe->deadline());
      } else {
        wake_at = std::min(wake_at, slot.next_at);
      }
    }
    ::poll(fds.data(), fds.size(), poll_timeout(wake_at - Clock::now()));
    std::uint64_t drained;
    [[maybe_unused]] auto read = ::read(wakeup_.get(), &drained, sizeof(drained));
    for (std::size_t i = 0; i < polled.size(); ++i) polled[i]->probe->advance(fds[i + 1].revents);
  }
}

}  // namespace gateway
