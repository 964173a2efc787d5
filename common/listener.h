// Opens the listening socket of either binary from an Address, with the safety DESIGN.md asks for:
// a unix socket is created 0600 (its folder 0700 when we create it), a stale socket file left by a
// dead process is removed first, and a live one or a busy tcp port is a clear error. Or it takes the
// socket systemd passed (socket activation, open_or_adopt_listener), which is the service
// manager's: served as it is, its file never removed.
#pragma once

#include <cstdint>
#include <optional>
#include <stdexcept>

#include <Poco/Net/ServerSocket.h>

#include "common/address.h"

namespace common {

// One line for the user ("address in use: tcp:127.0.0.1:8080"); main prints it and exits 2.
class ListenError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

// Binds and listens. REQUIRES: called before any thread is started (it sets the umask briefly, which
// is process-wide). Throws ListenError.
Poco::Net::ServerSocket open_listener(const Address& address, int backlog = 1024);

// Removes a unix socket file made by open_listener; a no-op for tcp.
void remove_listener(const Address& address) noexcept;

// Takes over `fd`, a socket the service manager passed (socket activation): it must be a listening
// stream socket (unix, IPv4 or IPv6), else ListenError. The fd is the returned socket's from now
// on. Returns the socket and the address it listens on (the bound path or host and port).
struct AdoptedListener {
  Poco::Net::ServerSocket socket;
  Address address;
};
AdoptedListener adopt_listener(int fd);

// The identity of a unix socket file (device and inode), taken once it is bound. A server that
// closed its listener keeps the file until it exits, so that connects are refused (ECONNREFUSED)
// rather than "no such file"; meanwhile a successor may have replaced it (the refused socket is
// stale to it), and that one must not be removed.
struct SocketFileId {
  std::uint64_t device = 0;
  std::uint64_t inode = 0;
};
// nullopt for tcp, or when the file cannot be read.
std::optional<SocketFileId> socket_file_id(const Address& address);
// Removes the unix socket file at `address` if it is still `ours`; a no-op for tcp.
void remove_listener(const Address& address, const std::optional<SocketFileId>& ours) noexcept;

// The listening socket of a binary, and what it needs at exit.
struct ServiceListener {
  Poco::Net::ServerSocket socket;
  Address address;                    // where it listens: `configured`, or the passed socket's own
  std::optional<SocketFileId> file;   // the unix socket file to remove at exit: only one we bound
  bool passed = false;                // the service manager's socket, not ours
};
// The one socket systemd passed (sd_listen_fds(3): $LISTEN_FDS for our $LISTEN_PID) when there is
// one, and then `configured` is not used; else open_listener(configured). The LISTEN_* variables
// are removed from the environment. More than one passed socket, a passed fd that is not a
// listening stream socket, or malformed LISTEN_* values are ListenError. REQUIRES: as
// open_listener.
ServiceListener open_or_adopt_listener(const Address& configured, int backlog = 1024);

// True when something accepts connections on the unix socket at `path`.
bool unix_socket_in_use(const std::string& path);

// Creates `dir` (and missing parents) with mode 0700 when it does not exist; throws ListenError when
// it cannot, or when it exists and is not a directory.
void ensure_private_dir(const std::string& dir);

// ensure_private_dir, and then refuses (ListenError) a directory that another user owns or that
// group or others may enter: the gateway's socket dir, whose sockets are the way into every function.
void require_private_dir(const std::string& dir);

}  // namespace common
