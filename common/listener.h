// Opens the listening socket of either binary from an Address, with the safety DESIGN.md asks for:
// a unix socket is created 0600 (its folder 0700 when we create it), a stale socket file left by a
// dead process is removed first, and a live one or a busy tcp port is a clear error.
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

// True when something accepts connections on the unix socket at `path`.
bool unix_socket_in_use(const std::string& path);

// Creates `dir` (and missing parents) with mode 0700 when it does not exist; throws ListenError when
// it cannot, or when it exists and is not a directory.
void ensure_private_dir(const std::string& dir);

// ensure_private_dir, and then refuses (ListenError) a directory that another user owns or that
// group or others may enter: the gateway's socket dir, whose sockets are the way into every function.
void require_private_dir(const std::string& dir);

}  // namespace common
