#include "gateway/upstream.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <thread>

namespace gateway {
namespace {

using common::Error;

// Idle connections older than this are closed rather than reused: the watchdog closes idle
// keep-alive connections after 30 s, and reusing one it is closing would fail a request.
constexpr std::chrono::seconds kMaxIdle{5};
constexpr std::size_t kMaxIdleConnections = 64;

common::Result<common::UniqueFd> finish_connect(common::UniqueFd fd, const sockaddr* address,
                                                socklen_t length,
                                                std::chrono::milliseconds timeout) {
  if (::connect(fd.get(), address, length) == 0) return fd;
  if (errno != EINPROGRESS && errno != EAGAIN)
    return common::fail(Error::Code::kUnavailable, std::strerror(errno));
  pollfd pfd{fd.get(), POLLOUT, 0};
  if (::poll(&pfd, 1, static_cast<int>(timeout.count())) <= 0)
    return common::fail(Error::Code::kUnavailable, "connect timed out");
  int error = 0;
  socklen_t size = sizeof(error);
  ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &size);
  if (error != 0) return common::fail(Error::Code::kUnavailable, std::strerror(error));
  return fd;
}

common::Result<common::UniqueFd> connect_unix(const std::string& path,
                                              std::chrono::milliseconds timeout) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path))
    return common::fail(Error::Code::kUnavailable, "socket path too long");
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  common::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return common::fail(Error::Code::kUnavailable, std::strerror(errno));
  return finish_connect(std::move(fd), reinterpret_cast<sockaddr*>(&address), sizeof(address),
                        timeout);
}

using AddressList = std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)>;

// The addresses of a tcp target ("" is loopback), for a stream socket.
common::Result<AddressList> resolve_tcp(const common::Address& target) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  std::string host = target.host.empty() ? "127.0.0.1" : target.host;
  if (int rc = ::getaddrinfo(host.c_str(), std::to_string(target.port).c_str(), &hints, &found))
    return common::fail(Error::Code::kUnavailable, ::gai_strerror(rc));
  return AddressList(found, &::freeaddrinfo);
}

common::Result<common::UniqueFd> connect_tcp(const common::Address& target,
                                             std::chrono::milliseconds timeout) {
  auto found = resolve_tcp(target);
  if (!found) return tl::unexpected(found.error());
  common::Result<common::UniqueFd> result = common::fail(Error::Code::kUnavailable, "no address");
  for (addrinfo* entry = found->get(); entry; entry = entry->ai_next) {
    common::UniqueFd fd(::socket(entry->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) continue;
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    result = finish_connect(std::move(fd), entry->ai_addr, entry->ai_addrlen, timeout);
    if (result) break;
  }
  return result;
}

// An idle connection the upstream has closed (or wrote to, out of turn) reads ready.
bool still_open(const UpstreamConnection& connection) {
  pollfd pfd{connection.fd.get(), POLLIN, 0};
  return ::poll(&pfd, 1, 0) == 0;
}

common::Result<PendingConnect> begin(common::UniqueFd fd, const sockaddr* address,
                                      socklen_t length) {
  if (::connect(fd.get(), address, length) == 0) return PendingConnect{std::move(fd), false};
  if (errno == EINPROGRESS) return PendingConnect{std::move(fd), true};
  // A unix socket whose backlog is full answers EAGAIN: its server accepts nothing.
  return common::fail(Error::Code::kUnavailable, std::strerror(errno));
}

}  // namespace

common::Result<PendingConnect> begin_connect(const common::Address& target) {
  if (target.kind == common::Address::Kind::kUnix) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (target.path.size() >= sizeof(address.sun_path))
      return common::fail(Error::Code::kUnavailable, "socket path too long");
    std::memcpy(address.sun_path, target.path.c_str(), target.path.size() + 1);
    common::UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return common::fail(Error::Code::kUnavailable, std::strerror(errno));
    return begin(std::move(fd), reinterpret_cast<sockaddr*>(&address), sizeof(address));
  }
  auto found = resolve_tcp(target);
  if (!found) return tl::unexpected(found.error());
  common::Result<PendingConnect> result = common::fail(Error::Code::kUnavailable, "no address");
  for (addrinfo* entry = found->get(); entry && !result; entry = entry->ai_next) {
    common::UniqueFd fd(::socket(entry->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (fd) result = begin(std::move(fd), entry->ai_addr, entry->ai_addrlen);
  }
  return result;
}

common::Status connect_result(int fd) {
  int error = 0;
  socklen_t size = sizeof(error);
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0) error = errno;
  if (error != 0) return common::fail(Error::Code::kUnavailable, std::strerror(error));
  return {};
}

common::Result<common::UniqueFd> connect_to(const common::Address& address,
                                            std::chrono::milliseconds timeout) {
  if (address.kind == common::Address::Kind::kUnix) return connect_unix(address.path, timeout);
  return connect_tcp(address, timeout);
}

Upstream::Upstream(std::string function, int index, common::Address address, bool supervised)
    : function_(std::move(function)), index_(index), address_(std::move(address)),
      supervised_(supervised) {}

Upstream::~Upstream() = default;

common::Result<UpstreamConnection> Upstream::checkout(std::chrono::milliseconds connect_timeout) {
  {
    std::lock_guard lock(mutex_);
    auto now = Clock::now();
    while (!idle_.empty()) {
      UpstreamConnection connection = std::move(idle_.back());
      idle_.pop_back();
      if (now - connection.idle_since < kMaxIdle && still_open(connection)) {
        connection.reused = true;
        return connection;
      }
    }
  }
  auto fd = connect_to(address_, connect_timeout);
  // A watchdog that is starting has not bound its socket yet: wait for it rather than fail. It
  // binds within a few milliseconds of its spawn, which a request starting it on demand waits for.
  for (auto pause = std::chrono::milliseconds(1); !fd && in_startup();
       pause = std::min(pause * 2, std::chrono::milliseconds(10))) {
    std::this_thread::sleep_for(pause);
    fd = connect_to(address_, connect_timeout);
  }
  if (!fd) {
    mark(State::kDown, "connect to " + address_.to_string() + " failed: " + fd.error().context);
    return tl::unexpected(fd.error());
  }
  return UpstreamConnection{std::move(*fd), {}, {}};
}

void Upstream::checkin(UpstreamConnection connection) {
  std::lock_guard lock(mutex_);
  if (idle_.size() >= kMaxIdleConnections) return;
  connection.idle_since = Clock::now();
  idle_.push_back(std::move(connection));
}

void Upstream::drop_idle() {
  std::lock_guard lock(mutex_);
  idle_.clear();
}

void Upstream::mark(State state, std::optional<std::string> error) {
  std::lock_guard lock(mutex_);
  // A probe or a connect that raced with parking must not make a parked watchdog look up or down.
  if (state_.load(std::memory_order_relaxed) == State::kCold) return;
  state_.store(state, std::memory_order_relaxed);
  if (state == State::kUp) last_error_.reset();
  else if (error) last_error_ = std::move(error);
  if (state == State::kDown) idle_.clear();
}

void Upstream::starting(Clock::time_point until) {
  std::lock_guard lock(mutex_);
  startup_until_ = until;
  state_.store(State::kStarting, std::memory_order_relaxed);
  problem_.reset();
  idle_.clear();
}

void Upstream::park() {
  std::lock_guard lock(mutex_);
  state_.store(State::kCold, std::memory_order_relaxed);
  last_error_.reset();
  idle_.clear();
}

bool Upstream::in_startup(Clock::time_point now) const {
  std::lock_guard lock(mutex_);
  return state() == State::kStarting && now < startup_until_;
}

std::optional<std::string> Upstream::last_error() const {
  std::lock_guard lock(mutex_);
  return problem_ ? problem_ : last_error_;
}

void Upstream::set_problem(std::optional<std::string> problem) {
  std::lock_guard lock(mutex_);
  problem_ = std::move(problem);
}

std::optional<std::string> Upstream::problem() const {
  std::lock_guard lock(mutex_);
  return problem_;
}

}  // namespace gateway
