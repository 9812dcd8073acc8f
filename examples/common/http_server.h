#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

#include "common/result.h"
#include "examples/common/fault_injector.h"
#include "examples/common/http_util.h"
#include "policies/random.h"

struct event;
struct event_base;
struct evhttp;
struct evhttp_bound_socket;
struct evhttp_connection;
struct evhttp_request;

namespace bulwark::examples {

class HttpServer;

/** A response produced by an example backend's handler. */
struct HttpResponse {
  int status = 200;
  std::string body;
  /** Extra headers; Content-Type defaults to application/json when absent. */
  HeaderList headers;
};

/**
 * One HTTP request from arrival to the last byte of its answer. Handlers get a shared_ptr and
 * call reply() exactly once, at once or later (from a timer or a worker hand-off back to the
 * loop). The exchange applies the reply-side faults (slow body, reset mid-response) and stamps
 * x-replica-id. When the client goes away first, reply() does nothing and open() turns false.
 * Thread: the server's loop thread only.
 */
class HttpExchange {
public:
  HttpExchange(HttpServer& server, evhttp_request* req, FaultDecision decision);
  ~HttpExchange();
  HttpExchange(const HttpExchange&) = delete;
  HttpExchange& operator=(const HttpExchange&) = delete;

  std::string_view method() const { return method_; }
  /** Percent-decoded path without the query. */
  const std::string& path() const { return path_; }
  /** Raw query string (without '?'). */
  const std::string& query() const { return query_; }
  std::optional<std::string> queryParam(const std::string& name) const;
  std::optional<std::string> header(const char* name) const;
  const std::string& body() const { return body_; }
  const FaultDecision& decision() const { return decision_; }

  /** True until the answer is handed to the connection or the client disconnects. */
  bool open() const;
  void reply(HttpResponse response);

private:
  friend class HttpServer;
  enum class State { Waiting, Hung, Streaming, Sent, Gone };

  static void onLatencyTimer(int fd, short what, void* arg);
  static void onSlowBodyTimer(int fd, short what, void* arg);
  static void onPartWritten(evhttp_connection* evcon, void* arg);
  static void onResetNow(int fd, short what, void* arg);
  static void onComplete(evhttp_request* req, void* arg);
  static void onHungSocket(int fd, short what, void* arg);

  void start();    // latency, then error or handler
  void proceed();  // after the injected latency
  void sendSlowBodyPart();
  void resetConnection();
  void connectionClosed();  // the server saw the connection close
  void cancelTimer();

  HttpServer& server_;
  evhttp_request* req_;
  evhttp_connection* evcon_;
  FaultDecision decision_;
  State state_ = State::Waiting;
  std::string method_;
  std::string path_;
  std::string query_;
  std::string body_;
  event* timer_ = nullptr;
  // Hung requests only: libevent does not read from a connection whose request awaits an
  // answer, so it would never notice the client leaving; this watches the socket instead.
  event* close_watch_ = nullptr;
  std::string pending_body_;  // slow body: the bytes not yet sent
  size_t pending_offset_ = 0;
};

struct HttpServerOptions {
  /** 127.0.0.1 port; 0 = any free port. */
  int port = 0;
  /** --replica-id value; empty = resolveReplicaId() after binding. */
  std::string replica_id;
  /** On SIGTERM, how long in-flight requests may take before the process exits anyway. */
  std::chrono::milliseconds drain_timeout{5000};
  /** Seed of the fault dice; 0 = nondeterministic. */
  uint64_t seed = 0;
  /** Largest accepted request body. */
  size_t max_body_bytes = 1 << 20;
};

/**
 * HTTP/1.1 server scaffold of the example backends on libevent's evhttp (keep-alive included):
 * binds 127.0.0.1, applies the FaultInjector to every request (crash, hang, latency as a timer,
 * error with Retry-After, then the handler; reset and slow body on the answer), stamps
 * x-replica-id and drains on request: stop accepting, drop hung requests, let in-flight ones
 * finish (answers carry Connection: close), then call back.
 * Thread: owning loop thread (the event_base's).
 */
class HttpServer {
public:
  using Handler = std::function<void(const std::shared_ptr<HttpExchange>&)>;

  static Result<std::unique_ptr<HttpServer>> create(event_base* base, FaultInjector& faults,
                                                    HttpServerOptions options, Handler handler);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  int port() const { return port_; }
  const std::string& replicaId() const { return replica_id_; }
  event_base* base() const { return base_; }
  bool draining() const { return draining_; }
  /** Requests received and not yet fully answered, hung ones excluded. */
  size_t inflight() const;
  /** Requests received and not yet fully answered, hung ones included. */
  size_t liveRequests() const { return live_.size(); }

  /**
   * Stops accepting, closes hung requests and idle connections at the end, and calls `done` once
   * every in-flight request is answered or the drain timeout passed.
   */
  void drain(std::function<void()> done);

private:
  friend class HttpExchange;
  HttpServer(event_base* base, FaultInjector& faults, HttpServerOptions options, Handler handler);
  static void onRequest(evhttp_request* req, void* arg);
  static void onConnectionClose(evhttp_connection* evcon, void* arg);
  static void onDrainDeadline(int fd, short what, void* arg);
  void handleRequest(evhttp_request* req);
  void forget(HttpExchange* exchange);  // the exchange is finished or gone
  void maybeFinishDrain();

  event_base* base_;
  FaultInjector& faults_;
  HttpServerOptions options_;
  Handler handler_;
  evhttp* http_ = nullptr;
  evhttp_bound_socket* listener_ = nullptr;
  int port_ = 0;
  std::string replica_id_;
  policies::SeededRandom random_;
  // The request being worked on per connection (evhttp answers HTTP/1.1 requests in order).
  std::unordered_map<evhttp_connection*, std::shared_ptr<HttpExchange>> live_;
  bool draining_ = false;
  std::function<void()> drain_done_;
  event* drain_timer_ = nullptr;
};

/**
 * Runs `base` until SIGTERM or SIGINT, then drains `server` and returns 0 (the process exit code).
 * `on_signal` (optional) runs first, e.g. to mark the health check as failing.
 */
int runUntilSignal(event_base* base, HttpServer& server, std::function<void()> on_signal = {});

}  // namespace bulwark::examples
