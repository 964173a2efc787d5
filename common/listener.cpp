#include "common/listener.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <systemd/sd-daemon.h>
#include <unistd.h>

#include <cerrno>
#include <cstddef>
#include <cstring>
#include <filesystem>

#include <fmt/format.h>
#include <Poco/Net/NetException.h>
#include <Poco/Net/ServerSocketImpl.h>
#include <Poco/Net/SocketAddress.h>

#include "common/logging.h"
#include "common/unique_fd.h"

namespace common {
namespace {

namespace fs = std::filesystem;

void remove_stale_socket(const std::string& path) {
  struct stat st {};
  if (::lstat(path.c_str(), &st) != 0) return;
  if (!S_ISSOCK(st.st_mode)) throw ListenError("not a socket, refusing to replace: " + path);
  if (unix_socket_in_use(path)) throw ListenError("address in use: unix:" + path);
  ::unlink(path.c_str());
}

Poco::Net::ServerSocket listen_unix(const std::string& path, int backlog) {
  if (path.size() >= sizeof(sockaddr_un::sun_path))
    throw ListenError("unix socket path too long (max 107 bytes): " + path);
  fs::path parent = fs::absolute(path).parent_path();
  ensure_private_dir(parent.string());
  remove_stale_socket(path);
  // The umask makes the socket 0600 from its first moment; chmod after bind would leave a window.
  mode_t old_mask = ::umask(0177);
  try {
    Poco::Net::ServerSocket socket(Poco::Net::SocketAddress(Poco::Net::SocketAddress::UNIX_LOCAL, path),
                                   backlog);
    ::umask(old_mask);
    return socket;
  } catch (const Poco::Exception& e) {
    ::umask(old_mask);
    throw ListenError("cannot listen on unix:" + path + ": " + e.displayText());
  }
}

Poco::Net::ServerSocket listen_tcp(const Address& address, int backlog) {
  try {
    Poco::Net::SocketAddress where = address.host.empty()
        ? Poco::Net::SocketAddress(address.port)
        : Poco::Net::SocketAddress(address.host, address.port);
    Poco::Net::ServerSocket socket;
    socket.bind(where, /*reuseAddress=*/true, /*reusePort=*/false);
    socket.listen(backlog);
    return socket;
  } catch (const Poco::Net::NetException& e) {
    if (e.code() == EADDRINUSE || std::strstr(e.what(), "in use") ||
        e.displayText().find("in use") != std::string::npos)
      throw ListenError("address in use: " + address.to_string());
    throw ListenError("cannot listen on " + address.to_string() + ": " + e.displayText());
  } catch (const Poco::Exception& e) {
    throw ListenError("cannot listen on " + address.to_string() + ": " + e.displayText());
  }
}

}  // namespace

void ensure_private_dir(const std::string& dir) {
  std::error_code ec;
  if (fs::is_directory(dir, ec)) return;
  if (fs::exists(dir, ec)) throw ListenError("not a directory: " + dir);
  fs::create_directories(dir, ec);
  if (ec) throw ListenError("cannot create " + dir + ": " + ec.message());
  ::chmod(dir.c_str(), 0700);
}

void require_private_dir(const std::string& dir) {
  ensure_private_dir(dir);
  struct stat st {};
  if (::stat(dir.c_str(), &st) != 0) throw ListenError("cannot stat " + dir + ": " + std::strerror(errno));
  if (st.st_uid != ::geteuid())
    throw ListenError("socket dir " + dir + " belongs to another user (uid " + std::to_string(st.st_uid) + ")");
  if ((st.st_mode & 077) != 0)
    throw ListenError(fmt::format("socket dir {} is open to other users (mode {:04o}); use a private "
                                  "directory (mode 0700)", dir, st.st_mode & 07777));
}

bool unix_socket_in_use(const std::string& path) {
  UniqueFd fd(::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd) return false;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, path.c_str(), sizeof(addr.sun_path) - 1);
  return ::connect(fd.get(), reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0;
}

Poco::Net::ServerSocket open_listener(const Address& address, int backlog) {
  if (address.kind == Address::Kind::kUnix) return listen_unix(address.path, backlog);
  return listen_tcp(address, backlog);
}

void remove_listener(const Address& address) noexcept {
  if (address.kind == Address::Kind::kUnix) ::unlink(address.path.c_str());
}

}  // namespace common

namespace common {

std::optional<SocketFileId> socket_file_id(const Address& address) {
  struct stat st {};
  if (address.kind != Address::Kind::kUnix || ::lstat(address.path.c_str(), &st) != 0) return std::nullopt;
  return SocketFileId{static_cast<std::uint64_t>(st.st_dev), static_cast<std::uint64_t>(st.st_ino)};
}

void remove_listener(const Address& address, const std::optional<SocketFileId>& ours) noexcept {
  if (!ours) return;
  auto now = socket_file_id(address);
  if (now && now->device == ours->device && now->inode == ours->inode) ::unlink(address.path.c_str());
}

}  // namespace common

namespace common {
namespace {

// Poco makes a ServerSocket from an fd only through protected members; these two reach them.
class AdoptedSocketImpl : public Poco::Net::ServerSocketImpl {
 public:
  explicit AdoptedSocketImpl(int fd) { reset(fd); }
};
class AdoptedServerSocket : public Poco::Net::ServerSocket {
 public:
  explicit AdoptedServerSocket(int fd) : ServerSocket(new AdoptedSocketImpl(fd), true) {}
};

std::string passed_fd(int fd) {
  return "the socket passed by the service manager (fd " + std::to_string(fd) + ")";
}

// The address `fd` is bound to; an abstract unix socket's name is written "@name".
Address bound_address(int fd) {
  sockaddr_storage storage{};
  socklen_t length = sizeof storage;
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&storage), &length) != 0)
    throw ListenError("cannot read the address of " + passed_fd(fd) + ": " + std::strerror(errno));
  Address address;
  if (storage.ss_family == AF_UNIX) {
    const auto& un = reinterpret_cast<const sockaddr_un&>(storage);
    const std::size_t header = offsetof(sockaddr_un, sun_path);
    const std::size_t size = length > header ? length - header : 0;
    std::string path(un.sun_path, ::strnlen(un.sun_path, size));
    if (path.empty() && size > 1)  // abstract: a NUL, then the name
      path = "@" + std::string(un.sun_path + 1, ::strnlen(un.sun_path + 1, size - 1));
    return Address{Address::Kind::kUnix, path, "", 0};
  }
  char host[INET6_ADDRSTRLEN] = "";
  if (storage.ss_family == AF_INET6) {
    const auto& in6 = reinterpret_cast<const sockaddr_in6&>(storage);
    ::inet_ntop(AF_INET6, &in6.sin6_addr, host, sizeof host);
    address.port = ntohs(in6.sin6_port);
  } else {
    const auto& in4 = reinterpret_cast<const sockaddr_in&>(storage);
    ::inet_ntop(AF_INET, &in4.sin_addr, host, sizeof host);
    address.port = ntohs(in4.sin_port);
  }
  address.host = host;
  return address;
}

}  // namespace

AdoptedListener adopt_listener(int fd) {
  int stream = ::sd_is_socket(fd, AF_UNSPEC, SOCK_STREAM, /*listening=*/1);
  if (stream < 0) throw ListenError(passed_fd(fd) + " is not usable: " + std::strerror(-stream));
  if (stream == 0)
    throw ListenError(passed_fd(fd) + " is not a listening stream socket (ListenStream=)");
  if (::sd_is_socket_unix(fd, SOCK_STREAM, 1, nullptr, 0) <= 0 &&
      ::sd_is_socket_inet(fd, AF_UNSPEC, SOCK_STREAM, 1, 0) <= 0)
    throw ListenError(passed_fd(fd) + " is not a unix, IPv4 or IPv6 socket");
  Address address = bound_address(fd);
  return {AdoptedServerSocket(fd), std::move(address)};
}

ServiceListener open_or_adopt_listener(const Address& configured, int backlog) {
  int count = ::sd_listen_fds(/*unset_environment=*/1);
  if (count < 0)
    throw ListenError(std::string("socket activation: bad LISTEN_FDS or LISTEN_PID: ") +
                      std::strerror(-count));
  if (count == 0) {
    auto socket = open_listener(configured, backlog);
    return {std::move(socket), configured, socket_file_id(configured), false};
  }
  if (count > 1)
    throw ListenError("socket activation: " + std::to_string(count) +
                      " sockets passed (LISTEN_FDS), one is served: give the .socket unit one "
                      "ListenStream=");
  auto adopted = adopt_listener(SD_LISTEN_FDS_START);
  logger("listener")->info("serving the socket passed by the service manager fd={} address={} "
                           "unused={}", SD_LISTEN_FDS_START, adopted.address.to_string(),
                           configured.to_string());
  return {std::move(adopted.socket), std::move(adopted.address), std::nullopt, true};
}

}  // namespace common
