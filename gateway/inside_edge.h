// Runs a queued call through the gateway's own request handler on the calling thread, as if a
// client on a unix socket had sent it: admission, routing, failover, metrics and the access line
// as for any request, but without a connection to the edge, its event loop or a thread hand-off.
// The answer is kept (HttpReply), not sent.
#pragma once

#include <functional>
#include <mutex>
#include <set>
#include <vector>

#include "common/error.h"
#include "common/http_client.h"
#include "common/http_exchange.h"
#include "common/unique_fd.h"
#include "gateway/call_queue.h"

namespace gateway {

class InsideEdge {
 public:
  using Handler = std::function<void(common::ClientRequest&, common::ClientResponse&)>;

  // `result_limit`: the most of a reply's body kept (more is dropped and marked truncated).
  InsideEdge(Handler handler, std::size_t result_limit)
      : handler_(std::move(handler)), result_limit_(result_limit) {}

  // The function's reply to `call`. kBadGateway when the answer was cut off (the function died
  // in its body, or the run was aborted); kUnavailable once abort_runs() was called, or when no
  // socket can be made for the run. Thread-safe.
  common::Result<common::HttpReply> run(const StoredCall& call);

  // Cuts the runs in flight (the handler sees their client gone, as a closed connection's) and
  // refuses the later ones: the gateway is stopping. Thread-safe.
  void abort_runs();

 private:
  // The two ends of the socket a run's handler sees as its client's.
  struct ClientSocket {
    common::UniqueFd mine;
    common::UniqueFd client;
  };

  Handler handler_;
  std::size_t result_limit_;
  std::mutex mutex_;
  std::set<int> running_;  // the client sockets of the runs in flight
  // Sockets of runs that ended whole, for the next runs: nothing was ever sent or shut down on
  // them, so they are as new, and making and closing a socketpair was a twelfth of the gateway's
  // CPU while a backlog ran.
  std::vector<ClientSocket> spare_;
  bool aborted_ = false;
};

}  // namespace gateway
