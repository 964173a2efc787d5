#include "common/connect.h"

#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

namespace common {
namespace {

Result<UniqueFd> finish_connect(UniqueFd fd, const sockaddr* address, socklen_t length,
                                std::chrono::milliseconds timeout) {
  if (::connect(fd.get(), address, length) == 0) return fd;
  if (errno != EINPROGRESS && errno != EAGAIN)
    return fail(Error::Code::kUnavailable, std::strerror(errno));
  pollfd pfd{fd.get(), POLLOUT, 0};
  if (::poll(&pfd, 1, static_cast<int>(timeout.count())) <= 0)
    return fail(Error::Code::kUnavailable, "connect timed out");
  int error = 0;
  socklen_t size = sizeof(error);
  ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &error, &size);
  if (error != 0) return fail(Error::Code::kUnavailable, std::strerror(error));
  return fd;
}

Result<UniqueFd> connect_unix(const std::string& path, std::chrono::milliseconds timeout) {
  sockaddr_un address{};
  address.sun_family = AF_UNIX;
  if (path.size() >= sizeof(address.sun_path))
    return fail(Error::Code::kUnavailable, "socket path too long");
  std::memcpy(address.sun_path, path.c_str(), path.size() + 1);
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd) return fail(Error::Code::kUnavailable, std::strerror(errno));
  return finish_connect(std::move(fd), reinterpret_cast<sockaddr*>(&address), sizeof(address),
                        timeout);
}

using AddressList = std::unique_ptr<addrinfo, decltype(&::freeaddrinfo)>;

// The addresses of a tcp target ("" is loopback), for a stream socket.
Result<AddressList> resolve_tcp(const Address& target) {
  addrinfo hints{};
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* found = nullptr;
  std::string host = target.host.empty() ? "127.0.0.1" : target.host;
  if (int rc = ::getaddrinfo(host.c_str(), std::to_string(target.port).c_str(), &hints, &found))
    return fail(Error::Code::kUnavailable, ::gai_strerror(rc));
  return AddressList(found, &::freeaddrinfo);
}

Result<UniqueFd> connect_tcp(const Address& target, std::chrono::milliseconds timeout) {
  auto found = resolve_tcp(target);
  if (!found) return tl::unexpected(found.error());
  Result<UniqueFd> result = fail(Error::Code::kUnavailable, "no address");
  for (addrinfo* entry = found->get(); entry; entry = entry->ai_next) {
    UniqueFd fd(::socket(entry->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) continue;
    int one = 1;
    ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    result = finish_connect(std::move(fd), entry->ai_addr, entry->ai_addrlen, timeout);
    if (result) break;
  }
  return result;
}

Result<PendingConnect> begin(UniqueFd fd, const sockaddr* address, socklen_t length) {
  if (::connect(fd.get(), address, length) == 0) return PendingConnect{std::move(fd), false};
  if (errno == EINPROGRESS) return PendingConnect{std::move(fd), true};
  // A unix socket whose backlog is full answers EAGAIN: its server accepts nothing.
  return fail(Error::Code::kUnavailable, std::strerror(errno));
}

}  // namespace

Result<PendingConnect> begin_connect(const Address& target) {
  if (target.kind == Address::Kind::kUnix) {
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    if (target.path.size() >= sizeof(address.sun_path))
      return fail(Error::Code::kUnavailable, "socket path too long");
    std::memcpy(address.sun_path, target.path.c_str(), target.path.size() + 1);
    UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (!fd) return fail(Error::Code::kUnavailable, std::strerror(errno));
    return begin(std::move(fd), reinterpret_cast<sockaddr*>(&address), sizeof(address));
  }
  auto found = resolve_tcp(target);
  if (!found) return tl::unexpected(found.error());
  Result<PendingConnect> result = fail(Error::Code::kUnavailable, "no address");
  for (addrinfo* entry = found->get(); entry && !result; entry = entry->ai_next) {
    UniqueFd fd(::socket(entry->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
    if (fd) result = begin(std::move(fd), entry->ai_addr, entry->ai_addrlen);
  }
  return result;
}

Status connect_result(int fd) {
  int error = 0;
  socklen_t size = sizeof(error);
  if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &size) != 0) error = errno;
  if (error != 0) return fail(Error::Code::kUnavailable, std::strerror(error));
  return {};
}

Result<UniqueFd> connect_to(const Address& address, std::chrono::milliseconds timeout) {
  if (address.kind == Address::Kind::kUnix) return connect_unix(address.path, timeout);
  return connect_tcp(address, timeout);
}

}  // namespace common
