// Poco's HTTP server, configured once for both binaries: a thread per connection from a bounded
// pool, read/write/keep-alive timeouts on every client socket, header limits, and a graceful stop
// that first stops accepting, then (after the owner's drain) aborts the idle keep-alive connections.
#pragma once

#include <chrono>
#include <functional>
#include <memory>

#include <Poco/Net/HTTPServerRequest.h>
#include <Poco/Net/HTTPServerResponse.h>
#include <Poco/Net/ServerSocket.h>

namespace Poco {
class ThreadPool;
namespace Net {
class TCPServer;
}
}  // namespace Poco

namespace common {

struct ServerSettings {
  std::chrono::milliseconds read_timeout{10'000};
  std::chrono::milliseconds write_timeout{10'000};
  std::chrono::milliseconds keep_alive_timeout{30'000};
  int max_threads = 512;  // concurrent connections served; more wait in the accept queue
  int max_queued = 4096;
};

// Called on a pool thread for every request. Must not throw (see server edge in each binary).
using RequestHandler =
    std::function<void(Poco::Net::HTTPServerRequest&, Poco::Net::HTTPServerResponse&)>;

class HttpServer {
 public:
  // Takes the listening socket. `handler` must outlive the server.
  HttpServer(Poco::Net::ServerSocket socket, const ServerSettings& settings,
             RequestHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  void start();
  // Closes the listening socket: new connections are refused; connections being served continue.
  void stop_accepting();
  // Shuts down every open connection (idle keep-alive ones included) and waits for their threads.
  void abort_connections();
  int current_connections() const;

 private:
  class Factory;
  class HandlerFactory;
  std::unique_ptr<Poco::ThreadPool> pool_;
  HandlerFactory* handlers_;  // owned by server_ (Poco's SharedPtr)
  std::unique_ptr<Poco::Net::TCPServer> server_;
};

}  // namespace common
