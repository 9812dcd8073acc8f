#include "examples/common/fault_control_server.h"

#include <mutex>

#include <CLI/CLI.hpp>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/thread.h>
#include <nlohmann/json.hpp>

#include "examples/common/http_util.h"

namespace bulwark::examples {
namespace {

const HeaderList kJsonHeaders = {{"Content-Type", "application/json"}};

void sendJson(evhttp_request* req, int status, const nlohmann::json& body) {
  sendReply(req, status, body.dump() + "\n", kJsonHeaders);
}

void sendError(evhttp_request* req, int status, const std::string& message) {
  sendJson(req, status, {{"error", message}});
}

}  // namespace

void enableLibeventThreads() {
  static std::once_flag once;
  std::call_once(once, [] { evthread_use_pthreads(); });
}

void addControlPortFlag(CLI::App& app, int& port) {
  app.add_option("--control-port", port,
                 "fault control endpoint on 127.0.0.1 (0 = any free port, printed as "
                 "'control port: N'; -1 = disabled)")
      ->check(CLI::Range(-1, 65535));
}

FaultControlServer::FaultControlServer(FaultInjector& injector, HealthCallback health)
    : injector_(injector), health_(std::move(health)) {}

Result<std::unique_ptr<FaultControlServer>> FaultControlServer::start(FaultInjector& injector,
                                                                      int port,
                                                                      HealthCallback health) {
  enableLibeventThreads();
  std::unique_ptr<FaultControlServer> server(new FaultControlServer(injector, std::move(health)));
  server->base_ = event_base_new();
  if (server->base_ == nullptr) {
    return Status::error("control: event_base_new failed");
  }
  server->http_ = evhttp_new(server->base_);
  if (server->http_ == nullptr) {
    return Status::error("control: evhttp_new failed");
  }
  evhttp_set_allowed_methods(server->http_, EVHTTP_REQ_GET | EVHTTP_REQ_POST);
  evhttp_set_gencb(server->http_, &FaultControlServer::onRequest, server.get());
  auto bound = bindLoopback(server->http_, port, nullptr);
  if (!bound) {
    return Status::error("control: " + bound.error());
  }
  server->port_ = *bound;
  event_base* base = server->base_;
  server->stop_event_ = event_new(
      base, -1, 0,
      [](evutil_socket_t, short, void* b) { event_base_loopbreak(static_cast<event_base*>(b)); },
      base);
  if (server->stop_event_ == nullptr) {
    return Status::error("control: event_new failed");
  }
  server->thread_ = std::thread([base] { event_base_loop(base, EVLOOP_NO_EXIT_ON_EMPTY); });
  return server;
}

FaultControlServer::~FaultControlServer() {
  stop();
  if (stop_event_ != nullptr) {
    event_free(stop_event_);
  }
  if (base_ != nullptr) {
    event_base_free(base_);
  }
}

void FaultControlServer::stop() {
  if (thread_.joinable()) {
    event_active(stop_event_, EV_TIMEOUT, 0);
    thread_.join();
  }
  // Closes the listener too, so that a stopped endpoint refuses connections.
  if (http_ != nullptr) {
    evhttp_free(http_);
    http_ = nullptr;
  }
}

void FaultControlServer::onRequest(evhttp_request* req, void* arg) {
  static_cast<FaultControlServer*>(arg)->handle(req);
}

void FaultControlServer::handle(evhttp_request* req) {
  if (!peerIsLoopback(evhttp_request_get_connection(req))) {
    sendError(req, 403, "the fault control endpoint only answers loopback peers");
    return;
  }
  std::string path;
  std::string query;
  if (!splitUri(req, path, query)) {
    sendError(req, 400, "bad request URI");
    return;
  }
  const auto method = evhttp_request_get_command(req);
  if (path == "/_fault") {
    if (method == EVHTTP_REQ_GET) {
      sendJson(req, 200, injector_.current().toJson());
      return;
    }
    auto spec = FaultSpec::fromJsonText(requestBody(req));
    if (!spec) {
      sendError(req, 400, spec.error());
      return;
    }
    injector_.set(*spec);
    sendJson(req, 200, spec->toJson());
    return;
  }
  if (path == "/_fault/health") {
    if (!health_) {
      sendError(req, 404, "this server has no switchable health");
      return;
    }
    if (method != EVHTTP_REQ_POST) {
      sendError(req, 405, "use POST {\"serving\": true|false}");
      return;
    }
    auto json = nlohmann::json::parse(requestBody(req), nullptr, /*allow_exceptions=*/false);
    if (json.is_discarded() || !json.is_object() || !json.contains("serving") ||
        !json["serving"].is_boolean()) {
      sendError(req, 400, "body must be {\"serving\": true|false}");
      return;
    }
    bool serving = json["serving"].get<bool>();
    health_(serving);
    sendJson(req, 200, {{"serving", serving}});
    return;
  }
  sendError(req, 404, "unknown control path " + path);
}

}  // namespace bulwark::examples
