#include "gateway/inside_edge.h"

#include <sys/socket.h>

#include <cerrno>
#include <cstring>

#include "common/unique_fd.h"
#include "protocol/http_parser.h"

namespace gateway {
namespace {

constexpr std::chrono::milliseconds kBodyWait{10'000};  // never waited for: the body is whole
// Sockets kept for later runs: as many as runs usually go on at once.
constexpr std::size_t kMaxSpare = 32;

protocol::RequestHead head_of(const NewCall& call) {
  protocol::RequestHead head;
  head.method = call.method;
  head.target = call.target;
  head.version_minor = 1;
  head.headers = call.headers;
  // The body is the stored one, whole, whatever framing the client sent it with.
  for (auto name : {"Content-Length", "Transfer-Encoding", "Connection", "Keep-Alive", "Expect"})
    protocol::remove_header(head.headers, name);
  head.headers.push_back({"Content-Length", std::to_string(call.body.size())});
  if (!protocol::find_header(head.headers, "Host")) head.headers.push_back({"Host", "localhost"});
  return head;
}

}  // namespace

common::Result<common::HttpReply> InsideEdge::run(const StoredCall& stored) {
  using common::Error;
  // The client's socket as the handler sees it: nothing is ever sent on it, so it polls readable
  // (gone) only once abort_runs() shuts it down.
  ClientSocket socket;
  {
    std::lock_guard lock(mutex_);
    if (aborted_) return common::fail(Error::Code::kUnavailable, "the gateway is stopping");
    if (!spare_.empty()) {
      socket = std::move(spare_.back());
      spare_.pop_back();
    } else {
      int ends[2];
      if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, ends) != 0)
        return common::fail(Error::Code::kUnavailable,
                            std::string("cannot make a socketpair: ") + std::strerror(errno));
      socket = {common::UniqueFd(ends[0]), common::UniqueFd(ends[1])};
    }
    running_.insert(socket.client.get());
  }
  auto head = head_of(stored.call);
  auto framing = protocol::request_framing(head);
  std::string buffer = stored.call.body;
  common::PeerInfo peer;
  peer.unix_socket = true;
  common::HttpReply reply;
  bool cut = false;
  {
    common::ClientRequest request(socket.client.get(), buffer, 0, std::move(head), framing.framing,
                                  peer, kBodyWait);
    request.continue_sent();  // no client waits for "100 Continue": the body is all here
    common::ClientResponse response(reply, result_limit_, request);
    handler_(request, response);
    if (!response.finished()) response.abort();
    cut = response.aborted();
  }
  {
    std::lock_guard lock(mutex_);
    running_.erase(socket.client.get());
    if (!cut && !aborted_ && spare_.size() < kMaxSpare) spare_.push_back(std::move(socket));
  }
  if (cut) return common::fail(Error::Code::kBadGateway, "the answer was cut off");
  return reply;
}

void InsideEdge::abort_runs() {
  std::lock_guard lock(mutex_);
  aborted_ = true;
  for (int fd : running_) ::shutdown(fd, SHUT_RDWR);
  spare_.clear();
}

}  // namespace gateway
