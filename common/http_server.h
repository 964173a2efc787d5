// The HTTP/1.1 server of both binaries. One event-loop thread holds every connection while it costs
// no work: it accepts, waits for idle keep-alive connections and for heads that trickle in (a whole
// head within the read timeout, or 408), receives small bodies (up to 64 KiB, each wait for bytes
// within the read timeout, as nginx's client_body_timeout), answers malformed heads with 400/431
// itself, and drops a body its handler left unread (1 MiB within the read timeout at most). A
// connection goes to a worker thread only with a whole head (and small body) to serve, and comes
// back when the answer is done, so threads are bounded by requests in flight, not by connections:
// ten thousand idle or slow clients cost ten thousand fds and a little memory each. Open
// connections are bounded by max_connections (more wait in the listen backlog), which the fd limit
// caps (connection_limit).
#pragma once

#include <Poco/Net/ServerSocket.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>
#include <unordered_map>

#include "common/acceptor.h"
#include "common/event_loop.h"
#include "common/http_connection.h"
#include "common/http_exchange.h"
#include "common/worker_threads.h"

namespace common {

struct ServerSettings {
  std::chrono::milliseconds read_timeout{
      10'000};  // a whole head; each wait for body bytes; a discard
  std::chrono::milliseconds write_timeout{10'000};  // each send
  std::chrono::milliseconds keep_alive_timeout{30'000};
  std::size_t max_head_bytes = 64 * 1024;
  std::size_t max_headers = 100;
  int max_threads = 1024;        // requests served at once; more wait for a thread
  int max_connections = 10'000;  // open at once; more wait in the backlog (see connection_limit)
  // After an answer, how long a worker waits for the next request of its connection before it
  // hands the connection back to the loop (0: at once).
  std::chrono::milliseconds worker_linger{1};
  std::chrono::milliseconds idle_thread_exit{
      10'000};  // a worker with no request for this long ends
};

// File descriptors kept for the server's own work beyond its connections: a cgi request's pipes
// and pidfd, a hot process's, the gateway's upstream connections, logs, the functions dir scan.
inline constexpr std::uint64_t kReservedFds = 64;

// The connections a server may hold: `requested`, but no more than the fd soft limit less
// kReservedFds (and at least 1). Pure.
int connection_limit(int requested, std::uint64_t fd_soft_limit);

// The process's RLIMIT_NOFILE soft limit.
std::uint64_t fd_soft_limit();

class HttpServer {
 public:
  // Takes the listening socket (the ServerSocket given is closed: this server's copy is the only
  // one, so that stop_accepting() really refuses connections). `handler` is copied; what it refers
  // to must outlive the server. Caps settings.max_connections with connection_limit (logged).
  HttpServer(Poco::Net::ServerSocket socket, const ServerSettings& settings,
             RequestHandler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  // Starts the loop thread.
  void start();
  // Runs `tick` on the loop thread now and then every `period` until the loop stops (in
  // abort_connections). It runs only while the loop turns: a loop stuck in a callback, which
  // accepts and reads nothing, stops it too (what a liveness ping should prove). `tick` must not
  // block. From any thread, before or after start().
  void repeat(std::chrono::milliseconds period, std::function<void()> tick);
  // Closes the listening socket at once: new connections are refused. Open ones go on.
  void stop_accepting();
  // Responses from now on close their connection; idle connections are closed now. A head being
  // received is still served (with Connection: close) if it completes in time.
  void begin_drain();
  // Shuts down every open connection, waits for the requests in flight to end, and stops the loop.
  void abort_connections();

  int current_connections() const noexcept { return connection_count_.load(); }
  // Connections with a request begun (a head being received) or in flight: what a drain waits for.
  int open_requests() const noexcept { return open_requests_.load(); }
  int max_connections() const noexcept { return settings_.max_connections; }

 private:
  enum class Phase { kIdle, kHead, kBody, kBusy, kDiscard };
  struct Entry {
    // Shared with the worker serving it: a worker that re-arms the fd after queueing its return
    // may still hold it when the loop has closed it (the fd is then not reused meanwhile).
    std::shared_ptr<HttpConnection> connection;
    EventLoop::WatchId watch = 0;
    EventLoop::TimerId timer = 0;
    Phase phase = Phase::kIdle;
  };
  using Id = std::uint64_t;

  // Runs `callback` on the loop thread and waits for it.
  void on_loop(const EventLoop::Callback& callback);
  // All on the loop thread.
  void on_listener_ready();
  void add_connection(Acceptor::Accepted accepted);
  void on_readable(Id id);
  void on_deadline(Id id);
  void read_head(Id id, Entry& entry);
  void take_head(Id id, Entry& entry, HttpConnection::Head head);
  void start_request(Id id, Entry& entry);
  void read_body(Id id, Entry& entry);
  void hand_off(Id id, Entry& entry);
  void on_returned(Id id, HttpConnection::Outcome outcome);
  void continue_discard(Id id, Entry& entry);
  void set_phase(Entry& entry, Phase phase);
  void wait_readable(Entry& entry);
  void close_connection(Id id);
  void close_idle();
  void update_listener();
  void log_limit_reached();

  ServerSettings settings_;
  RequestHandler handler_;
  EventLoop loop_;
  Acceptor acceptor_;
  WorkerThreads workers_;
  std::thread loop_thread_;
  std::atomic<bool> draining_{false};
  std::atomic<int> connection_count_{0};
  std::atomic<int> open_requests_{0};

  // Loop thread only.
  std::unordered_map<Id, Entry> connections_;
  Id next_id_ = 1;
  EventLoop::WatchId listener_watch_ = 0;
  EventLoop::TimerId accept_pause_timer_ = 0;
  EventLoop::TimerId trim_timer_ = 0;
  std::size_t peak_since_trim_ = 0;
  bool accept_paused_ = false;  // out of fds: a short pause
  bool aborting_ = false;
  std::chrono::steady_clock::time_point limit_logged_{};
};

}  // namespace common
