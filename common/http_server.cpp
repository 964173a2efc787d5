#include "common/http_server.h"

#include <fcntl.h>
#include <malloc.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/time.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <system_error>

#include "common/logging.h"

namespace common {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::uint32_t kReadable = EPOLLIN | EPOLLONESHOT;
constexpr int kAcceptsPerWakeup = 64;  // then the loop serves its other fds before more
constexpr std::chrono::milliseconds kAcceptPause{100};
constexpr std::chrono::seconds kLimitLogInterval{60};
// After this many connections closed since the last trim (and half of them gone), the memory they
// held is given back: glibc keeps freed small blocks in its heap, so ten thousand connections come
// and gone would leave their ~10 MiB resident for good.
constexpr std::size_t kTrimAfterClosed = 1024;
constexpr std::chrono::seconds kTrimDelay{1};

// The listening socket as our own fd; the Poco socket is closed, so that ours is the only copy
// left and closing it refuses connections.
UniqueFd adopt_listener(Poco::Net::ServerSocket& socket) {
  int fd = ::fcntl(socket.impl()->sockfd(), F_DUPFD_CLOEXEC, 3);
  if (fd < 0) throw std::system_error(errno, std::system_category(), "dup listener");
  socket.close();
  return UniqueFd(fd);
}

void set_send_timeout(int fd, std::chrono::milliseconds timeout) {
  timeval tv{};
  tv.tv_sec = static_cast<time_t>(timeout.count() / 1000);
  tv.tv_usec = static_cast<suseconds_t>((timeout.count() % 1000) * 1000);
  ::setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
}

}  // namespace

int connection_limit(int requested, std::uint64_t fd_soft_limit) {
  std::uint64_t room = fd_soft_limit > kReservedFds + 1 ? fd_soft_limit - kReservedFds : 1;
  return static_cast<int>(
      std::min<std::uint64_t>(static_cast<std::uint64_t>(std::max(requested, 1)), room));
}

std::uint64_t fd_soft_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur == RLIM_INFINITY) return UINT32_MAX;
  return limit.rlim_cur;
}

HttpServer::HttpServer(Poco::Net::ServerSocket socket, const ServerSettings& settings,
                       RequestHandler handler)
    : settings_(settings),
      handler_(std::move(handler)),
      acceptor_(adopt_listener(socket)),
      workers_({settings.max_threads, settings.idle_thread_exit}) {
  std::uint64_t soft = fd_soft_limit();
  settings_.max_connections = connection_limit(settings.max_connections, soft);
  if (settings_.max_connections < settings.max_connections)
    logger("http")->warn(
        "max_connections capped by the fd limit requested={} max_connections={} "
        "fd_limit={} reserved={}",
        settings.max_connections, settings_.max_connections, soft, kReservedFds);
  accept_pause_timer_ = loop_.add_timer([this] {
    accept_paused_ = false;
    update_listener();
  });
  trim_timer_ = loop_.add_timer([this] {
    ::malloc_trim(0);
    peak_since_trim_ = connections_.size();
  });
  update_listener();
}

HttpServer::~HttpServer() { abort_connections(); }

void HttpServer::start() {
  loop_thread_ = std::thread([this] { loop_.run(); });
}

void HttpServer::on_loop(const EventLoop::Callback& callback) {
  // Before start() and after the loop thread has ended, no other thread touches the loop's state.
  if (loop_thread_.joinable())
    loop_.run_and_wait(callback);
  else
    callback();
}

void HttpServer::repeat(std::chrono::milliseconds period, std::function<void()> tick) {
  on_loop([this, period, tick = std::move(tick)] {
    // The timer re-arms itself from its own callback; it knows its id only once added.
    auto id = std::make_shared<EventLoop::TimerId>(0);
    *id = loop_.add_timer([this, period, tick, id] {
      tick();
      loop_.arm(*id, Clock::now() + period);
    });
    loop_.arm(*id, Clock::now());
  });
}

void HttpServer::stop_accepting() {
  on_loop([this] {
    if (listener_watch_) loop_.unwatch(listener_watch_);
    listener_watch_ = 0;
    acceptor_.close();
  });
}

void HttpServer::begin_drain() {
  draining_ = true;
  on_loop([this] { close_idle(); });
}

void HttpServer::abort_connections() {
  on_loop([this] {
    aborting_ = true;
    if (listener_watch_) loop_.unwatch(listener_watch_);
    listener_watch_ = 0;
    acceptor_.close();
    std::vector<Id> idle;
    for (auto& [id, entry] : connections_) {
      // A busy connection's worker sees its reads and writes fail and returns it; it is closed
      // then.
      if (entry.phase == Phase::kBusy)
        ::shutdown(entry.connection->fd(), SHUT_RDWR);
      else
        idle.push_back(id);
    }
    for (Id id : idle) close_connection(id);
  });
  workers_.stop();  // the requests in flight end; their connections come back to the loop, closed
  loop_.stop();
  if (loop_thread_.joinable()) loop_thread_.join();
  connections_.clear();
  connection_count_ = 0;
  open_requests_ = 0;
}

void HttpServer::update_listener() {
  bool wanted = acceptor_.open() && !accept_paused_ && !aborting_ &&
                static_cast<int>(connections_.size()) < settings_.max_connections;
  if (wanted && !listener_watch_) {
    // Level-triggered: connections left in the backlog after a round of accepts wake it again.
    listener_watch_ =
        loop_.watch(acceptor_.fd(), EPOLLIN, [this](std::uint32_t) { on_listener_ready(); });
    if (!listener_watch_) {
      logger("http")->error("cannot watch the listening socket error=\"{}\"", std::strerror(errno));
      accept_paused_ = true;
      loop_.arm(accept_pause_timer_, Clock::now() + kAcceptPause);
    }
  } else if (!wanted && listener_watch_) {
    loop_.unwatch(listener_watch_);
    listener_watch_ = 0;
  }
}

void HttpServer::on_listener_ready() {
  for (int i = 0; i < kAcceptsPerWakeup; ++i) {
    if (static_cast<int>(connections_.size()) >= settings_.max_connections) {
      log_limit_reached();
      break;
    }
    Acceptor::Accepted accepted;
    auto result = acceptor_.accept(&accepted);
    if (result == Acceptor::Result::kAccepted) {
      add_connection(std::move(accepted));
      continue;
    }
    if (result != Acceptor::Result::kNone) {  // out of fds, or failing: try again in a moment
      accept_paused_ = true;
      loop_.arm(accept_pause_timer_, Clock::now() + kAcceptPause);
    }
    break;
  }
  update_listener();
}

void HttpServer::log_limit_reached() {
  auto now = Clock::now();
  if (limit_logged_ != Clock::time_point{} && now - limit_logged_ < kLimitLogInterval) return;
  limit_logged_ = now;
  logger("http")->warn(
      "connection limit reached, new connections wait in the backlog "
      "max_connections={}",
      settings_.max_connections);
}

void HttpServer::add_connection(Acceptor::Accepted accepted) {
  set_send_timeout(accepted.fd.get(), settings_.write_timeout);
  Id id = next_id_++;
  Entry entry;
  entry.connection =
      std::make_shared<HttpConnection>(std::move(accepted.fd), std::move(accepted.peer), settings_);
  entry.watch = loop_.watch(entry.connection->fd(), kReadable,
                            [this, id](std::uint32_t) { on_readable(id); });
  if (!entry.watch) return;  // epoll refused it (ENOMEM): the connection closes
  entry.timer = loop_.add_timer([this, id] { on_deadline(id); });
  auto& added = connections_.emplace(id, std::move(entry)).first->second;
  connection_count_ = static_cast<int>(connections_.size());
  peak_since_trim_ = std::max(peak_since_trim_, connections_.size());
  loop_.arm(added.timer, Clock::now() + settings_.keep_alive_timeout);
}

void HttpServer::set_phase(Entry& entry, Phase phase) {
  auto counts = [](Phase p) { return p == Phase::kHead || p == Phase::kBody || p == Phase::kBusy; };
  if (counts(entry.phase) != counts(phase)) open_requests_ += counts(phase) ? 1 : -1;
  entry.phase = phase;
}

void HttpServer::wait_readable(Entry& entry) {
  if (!loop_.rearm(entry.watch, kReadable))
    logger("http")->error("cannot watch a connection error=\"{}\"", std::strerror(errno));
}

void HttpServer::on_readable(Id id) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  Entry& entry = it->second;
  if (entry.phase == Phase::kDiscard)
    continue_discard(id, entry);
  else if (entry.phase == Phase::kBody)
    read_body(id, entry);
  else if (entry.phase != Phase::kBusy)
    read_head(id, entry);
}

void HttpServer::read_head(Id id, Entry& entry) {
  // A few pieces per wake-up: a head larger than one read needs no extra trip through epoll, and
  // a client that sends without pause cannot hold the loop.
  for (int piece = 0; piece < 8; ++piece) {
    auto received = entry.connection->receive_now();
    if (received == HttpConnection::Received::kClosed) return close_connection(id);
    if (received == HttpConnection::Received::kNothing) break;
    auto head = entry.connection->parse_head();
    if (head != HttpConnection::Head::kPartial) return take_head(id, entry, head);
    if (entry.phase == Phase::kIdle) {
      set_phase(entry, Phase::kHead);  // the whole head within the read timeout from its first byte
      loop_.arm(entry.timer, Clock::now() + settings_.read_timeout);
    }
  }
  wait_readable(entry);
}

void HttpServer::take_head(Id id, Entry& entry, HttpConnection::Head head) {
  switch (head) {
    case HttpConnection::Head::kComplete:
      return start_request(id, entry);
    case HttpConnection::Head::kRefused:
      return close_connection(id);
    case HttpConnection::Head::kPartial:
      if (entry.phase != Phase::kHead) {
        set_phase(entry, Phase::kHead);
        loop_.arm(entry.timer, Clock::now() + settings_.read_timeout);
      }
      return wait_readable(entry);
    case HttpConnection::Head::kNone:
      if (draining_) return close_connection(id);
      set_phase(entry, Phase::kIdle);
      entry.connection->shrink_idle_buffer();
      loop_.arm(entry.timer, Clock::now() + settings_.keep_alive_timeout);
      return wait_readable(entry);
  }
}

void HttpServer::start_request(Id id, Entry& entry) {
  if (entry.connection->body_ready()) return hand_off(id, entry);
  set_phase(entry, Phase::kBody);
  loop_.arm(entry.timer, Clock::now() + settings_.read_timeout);
  wait_readable(entry);
}

void HttpServer::read_body(Id id, Entry& entry) {
  for (int piece = 0; piece < 8; ++piece) {
    auto received = entry.connection->receive_now();
    if (received == HttpConnection::Received::kClosed) return close_connection(id);
    if (received == HttpConnection::Received::kNothing) break;
    if (entry.connection->body_ready()) return hand_off(id, entry);
    loop_.arm(entry.timer, Clock::now() + settings_.read_timeout);  // each wait, not the whole body
  }
  wait_readable(entry);
}

void HttpServer::hand_off(Id id, Entry& entry) {
  loop_.disarm(entry.timer);
  set_phase(entry, Phase::kBusy);
  EventLoop::WatchId watch = entry.watch;
  bool submitted = workers_.submit([this, id, connection = entry.connection, watch] {
    auto outcome = connection->serve(handler_, draining_);
    // Dropped once the loop has ended: the connection is then closed with the server.
    if (outcome != HttpConnection::Outcome::kKeepAlive || draining_) {
      loop_.post([this, id, outcome] { on_returned(id, outcome); });
      return;
    }
    // The usual case, a keep-alive connection answered: the worker re-arms it itself and the
    // loop learns of it when it next wakes, which the client's next request does (the return is
    // queued first, so it is seen first). No wake-up of the loop per request. The loop may run
    // the return before the re-arm and close the connection: `connection` keeps its fd open
    // until then, so the re-arm finds the fd unwatched (ENOENT), never another connection's.
    loop_.post_quietly([this, id, outcome] { on_returned(id, outcome); });
    loop_.rearm_fd(connection->fd(), watch, kReadable);
  });
  if (!submitted) close_connection(id);
}

void HttpServer::on_returned(Id id, HttpConnection::Outcome outcome) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  Entry& entry = it->second;
  set_phase(entry, Phase::kIdle);
  if (aborting_ || outcome == HttpConnection::Outcome::kClose) return close_connection(id);
  if (outcome == HttpConnection::Outcome::kDiscard) {
    if (draining_) return close_connection(id);
    set_phase(entry, Phase::kDiscard);
    loop_.arm(entry.timer, Clock::now() + settings_.read_timeout);  // the whole discard
    return continue_discard(id, entry);
  }
  take_head(id, entry, entry.connection->parse_head());
}

void HttpServer::continue_discard(Id id, Entry& entry) {
  for (;;) {
    auto discarded = entry.connection->discard_buffered();
    if (discarded == HttpConnection::Discard::kFailed) return close_connection(id);
    if (discarded == HttpConnection::Discard::kDone) {
      set_phase(entry, Phase::kIdle);
      return take_head(id, entry, entry.connection->parse_head());
    }
    auto received = entry.connection->receive_now();
    if (received == HttpConnection::Received::kClosed) return close_connection(id);
    if (received == HttpConnection::Received::kNothing) return wait_readable(entry);
  }
}

void HttpServer::on_deadline(Id id) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  if (it->second.phase == Phase::kHead) it->second.connection->refuse_late_head();
  if (it->second.phase == Phase::kBody) it->second.connection->refuse_late_body();
  close_connection(id);  // idle past the keep-alive timeout, or a discard too slow
}

void HttpServer::close_connection(Id id) {
  auto it = connections_.find(id);
  if (it == connections_.end()) return;
  set_phase(it->second, Phase::kIdle);
  loop_.unwatch(it->second.watch);  // before the fd closes: its number may be reused at once
  loop_.remove_timer(it->second.timer);
  connections_.erase(it);
  connection_count_ = static_cast<int>(connections_.size());
  std::size_t left = connections_.size();
  if (peak_since_trim_ >= left + kTrimAfterClosed && left <= peak_since_trim_ / 2)
    loop_.arm(trim_timer_, Clock::now() + kTrimDelay);  // once the wave of closes is over
  update_listener();
}

void HttpServer::close_idle() {
  std::vector<Id> idle;
  for (const auto& [id, entry] : connections_)
    if (entry.phase == Phase::kIdle || entry.phase == Phase::kDiscard) idle.push_back(id);
  for (Id id : idle) close_connection(id);
}

}  // namespace common
