#include "gateway/health_prober.h"

#include <sstream>

#include <Poco/Net/HTTPClientSession.h>
#include <Poco/Net/HTTPRequest.h>
#include <Poco/Net/HTTPResponse.h>
#include <Poco/Net/SocketAddress.h>
#include <Poco/Net/StreamSocket.h>
#include <Poco/StreamCopier.h>
#include <Poco/Timespan.h>

namespace gateway {
namespace {

constexpr std::chrono::milliseconds kStartingInterval{50};

Poco::Net::SocketAddress socket_address(const common::Address& address) {
  if (address.kind == common::Address::Kind::kUnix)
    return Poco::Net::SocketAddress(Poco::Net::SocketAddress::UNIX_LOCAL, address.path);
  return Poco::Net::SocketAddress(address.host.empty() ? "127.0.0.1" : address.host, address.port);
}

}  // namespace

ProbeResult probe_health(const common::Address& address, std::chrono::milliseconds timeout) {
  Poco::Timespan span(static_cast<Poco::Timespan::TimeDiff>(timeout.count()) * 1000);
  try {
    Poco::Net::StreamSocket socket;
    socket.connect(socket_address(address), span);
    Poco::Net::HTTPClientSession session(socket);
    session.setTimeout(span);
    Poco::Net::HTTPRequest request(Poco::Net::HTTPRequest::HTTP_GET, "/_/health",
                                   Poco::Net::HTTPMessage::HTTP_1_1);
    request.setKeepAlive(false);
    request.setHost(address.kind == common::Address::Kind::kUnix || address.host.empty() ? "localhost"
                                                                                          : address.host);
    session.sendRequest(request);
    Poco::Net::HTTPResponse response;
    std::istream& body = session.receiveResponse(response);
    std::string text;
    Poco::StreamCopier::copyToString(body, text, 4096);
    if (response.getStatus() == Poco::Net::HTTPResponse::HTTP_OK) return {true, ""};
    return {false, "health " + std::to_string(response.getStatus()) + ": " + text.substr(0, 300)};
  } catch (const Poco::Exception& e) {
    return {false, "health probe of " + address.to_string() + " failed: " + e.displayText()};
  }
}

HealthProber::HealthProber(Sockets sockets, std::chrono::milliseconds interval)
    : sockets_(std::move(sockets)), interval_(interval), thread_([this] { run(); }) {}

HealthProber::~HealthProber() {
  {
    std::lock_guard lock(mutex_);
    quit_ = true;
  }
  wakeup_.notify_all();
  thread_.join();
}

void HealthProber::set_interval(std::chrono::milliseconds interval) {
  std::lock_guard lock(mutex_);
  interval_ = interval;
}

void HealthProber::poke() {
  {
    std::lock_guard lock(mutex_);
    poked_ = true;
  }
  wakeup_.notify_all();
}

void HealthProber::run() {
  std::unique_lock lock(mutex_);
  while (!quit_) {
    lock.unlock();
    bool starting = false;
    for (const auto& upstream : sockets_()) {
      if (upstream->state() == Upstream::State::kCold) continue;  // parked: nothing to ask
      auto result = probe_health(upstream->address(), std::chrono::milliseconds(1000));
      if (result.up) {
        upstream->mark(Upstream::State::kUp);
      } else if (!upstream->in_startup()) {
        // A watchdog that is restarting stays down through the supervisor; others by the probe.
        upstream->mark(Upstream::State::kDown, result.reason);
      }
      starting = starting || upstream->state() == Upstream::State::kStarting;
    }
    lock.lock();
    auto wait = starting ? std::min(interval_, kStartingInterval) : interval_;
    wakeup_.wait_for(lock, wait, [this] { return quit_ || poked_; });
    poked_ = false;
  }
}

}  // namespace gateway
