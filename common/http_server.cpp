#include "common/http_server.h"

#include <Poco/Net/HTTPRequestHandler.h>
#include <Poco/Net/HTTPRequestHandlerFactory.h>
#include <Poco/Net/HTTPServerConnection.h>
#include <Poco/Net/HTTPServerParams.h>
#include <Poco/Net/TCPServer.h>
#include <Poco/Net/TCPServerConnectionFactory.h>
#include <Poco/ThreadPool.h>
#include <Poco/Timespan.h>

namespace common {
namespace {

Poco::Timespan to_timespan(std::chrono::milliseconds ms) {
  return Poco::Timespan(static_cast<Poco::Timespan::TimeDiff>(ms.count()) * 1000);
}

// Poco deletes the handler after each request, so this one is a thin forwarder.
class ForwardingHandler : public Poco::Net::HTTPRequestHandler {
 public:
  explicit ForwardingHandler(const RequestHandler& handler) : handler_(handler) {}
  void handleRequest(Poco::Net::HTTPServerRequest& request,
                     Poco::Net::HTTPServerResponse& response) override {
    handler_(request, response);
  }

 private:
  const RequestHandler& handler_;
};

}  // namespace

class HttpServer::HandlerFactory : public Poco::Net::HTTPRequestHandlerFactory {
 public:
  explicit HandlerFactory(RequestHandler handler) : handler_(std::move(handler)) {}
  Poco::Net::HTTPRequestHandler* createRequestHandler(
      const Poco::Net::HTTPServerRequest&) override {
    return new ForwardingHandler(handler_);  // Poco takes ownership
  }
  // serverStopped is protected: only the server may announce its stop to the connections.
  void announce_stop(const void* sender, bool abort) { serverStopped(sender, abort); }

 private:
  RequestHandler handler_;
};


// Sets the write timeout on each accepted socket (Poco's HTTPServer only sets the read timeout).
class HttpServer::Factory : public Poco::Net::TCPServerConnectionFactory {
 public:
  Factory(Poco::Net::HTTPServerParams::Ptr params, Poco::Net::HTTPRequestHandlerFactory::Ptr handlers,
          std::chrono::milliseconds write_timeout)
      : params_(std::move(params)), handlers_(std::move(handlers)), write_timeout_(write_timeout) {}

  Poco::Net::TCPServerConnection* createConnection(const Poco::Net::StreamSocket& socket) override {
    Poco::Net::StreamSocket client(socket);
    client.setSendTimeout(to_timespan(write_timeout_));
    return new Poco::Net::HTTPServerConnection(client, params_, handlers_);  // Poco takes ownership
  }

 private:
  Poco::Net::HTTPServerParams::Ptr params_;
  Poco::Net::HTTPRequestHandlerFactory::Ptr handlers_;
  std::chrono::milliseconds write_timeout_;
};

HttpServer::HttpServer(Poco::Net::ServerSocket socket, const ServerSettings& settings,
                       RequestHandler handler)
    : pool_(std::make_unique<Poco::ThreadPool>(2, settings.max_threads, 60)) {
  Poco::Net::HTTPServerParams::Ptr params = new Poco::Net::HTTPServerParams;
  params->setTimeout(to_timespan(settings.read_timeout));
  params->setKeepAlive(true);
  params->setKeepAliveTimeout(to_timespan(settings.keep_alive_timeout));
  params->setMaxKeepAliveRequests(0);
  params->setMaxThreads(settings.max_threads);
  params->setMaxQueued(settings.max_queued);
  params->setSoftwareVersion("");
  auto* handler_factory = new HandlerFactory(std::move(handler));
  Poco::Net::HTTPRequestHandlerFactory::Ptr handlers = handler_factory;
  handlers_ = handler_factory;
  server_ = std::make_unique<Poco::Net::TCPServer>(
      new Factory(params, handlers, settings.write_timeout), *pool_, socket, params);
}

HttpServer::~HttpServer() {
  abort_connections();
}

void HttpServer::start() { server_->start(); }

void HttpServer::stop_accepting() { server_->stop(); }

void HttpServer::abort_connections() {
  server_->stop();
  handlers_->announce_stop(this, true);
  pool_->joinAll();
}

int HttpServer::current_connections() const { return server_->currentConnections(); }

}  // namespace common
