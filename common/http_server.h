// The HTTP/1.1 server of both binaries. Poco's TCPServer accepts and hands each connection to a
// thread of a bounded pool; the connection loop here reads request heads with protocol/'s strict
// parser, incrementally (each read is parsed on from where the last stopped), from one buffer per
// connection (pipelined requests included), answers malformed ones with 400/431 itself, applies
// keep-alive and the timeouts (a whole head must arrive within the read timeout, so a slowloris
// cannot hold a thread), closes after an HTTP/1.0 chunked request (RFC 9112 6.1), and calls the
// handler for the rest.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <set>

#include <Poco/Net/ServerSocket.h>

#include "common/http_exchange.h"

namespace Poco {
class ThreadPool;
namespace Net {
class TCPServer;
}
}  // namespace Poco

namespace common {

struct ServerSettings {
  std::chrono::milliseconds read_timeout{10'000};   // a whole head; then each wait for body bytes
  std::chrono::milliseconds write_timeout{10'000};  // each send
  std::chrono::milliseconds keep_alive_timeout{30'000};
  std::size_t max_head_bytes = 64 * 1024;
  std::size_t max_headers = 100;
  int max_threads = 1024;  // connections served at once; more wait in the accept queue
  int max_queued = 4096;
};

// Called on a connection thread for every well-formed request. It must finish (or abort) the
// response and must not throw.
using RequestHandler = std::function<void(ClientRequest&, ClientResponse&)>;

class HttpServer {
 public:
  // Takes the listening socket. `handler` is copied; what it refers to must outlive the server.
  HttpServer(Poco::Net::ServerSocket socket, const ServerSettings& settings,
             RequestHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  void start();
  // Closes the listening socket: new connections are refused; open ones go on.
  void stop_accepting();
  // Responses from now on close their connection (for the drain); idle connections are closed.
  void begin_drain();
  // Shuts down every open connection and waits for their threads.
  void abort_connections();
  int current_connections() const;

  // The state the connection threads share. Internal, public for the connection class.
  struct Shared {
    ServerSettings settings;
    RequestHandler handler;
    std::mutex mutex;
    std::set<int> open_fds;
    bool draining = false;
  };

 private:
  class Factory;
  std::shared_ptr<Shared> shared_;
  std::unique_ptr<Poco::ThreadPool> pool_;
  std::unique_ptr<Poco::Net::TCPServer> server_;
};

}  // namespace common
