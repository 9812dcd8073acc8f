#pragma once

#include <functional>
#include <memory>
#include <thread>

#include "common/result.h"
#include "examples/common/fault_injector.h"

struct event_base;
struct evhttp;
struct evhttp_request;
struct event;

namespace CLI {
class App;
}

namespace bulwark::examples {

/**
 * The run-time fault control endpoint of an example backend, on its own thread and event loop so
 * that it answers even while the serving loop is hung or saturated. Bound to 127.0.0.1 only, and
 * requests from non-loopback peers get 403 anyway.
 *   GET  /_fault          -> 200 the current FaultSpec as JSON
 *   POST /_fault          -> body is a FaultSpec JSON that replaces the current one ({} clears);
 *                            200 with the new spec, 400 {"error": ...} when invalid
 *   POST /_fault/health   -> body {"serving": bool}; calls the health callback (404 without one)
 * Thread: start()/stop() from one owning thread; the callbacks run on the control thread.
 */
class FaultControlServer {
public:
  /** Called with the requested health state; runs on the control thread. */
  using HealthCallback = std::function<void(bool serving)>;

  /** Binds 127.0.0.1:`port` (0 = any free port) and starts the control thread. */
  static Result<std::unique_ptr<FaultControlServer>> start(FaultInjector& injector, int port,
                                                           HealthCallback health = {});

  ~FaultControlServer();
  FaultControlServer(const FaultControlServer&) = delete;
  FaultControlServer& operator=(const FaultControlServer&) = delete;

  int port() const { return port_; }

  /** Stops the loop, joins the thread and closes the port; idempotent. */
  void stop();

private:
  FaultControlServer(FaultInjector& injector, HealthCallback health);
  static void onRequest(evhttp_request* req, void* arg);
  void handle(evhttp_request* req);

  FaultInjector& injector_;
  HealthCallback health_;
  event_base* base_ = nullptr;
  evhttp* http_ = nullptr;
  // Activated by stop(): its callback breaks the loop from inside. A bare event_base_loopbreak()
  // from another thread is lost when the thread has not entered its loop yet (the loop clears the
  // flag on entry), and then join() waits forever; an activation waits in the queue instead.
  ::event* stop_event_ = nullptr;
  int port_ = 0;
  std::thread thread_;
};

/** Adds --control-port (0 = any free port, -1 = no control endpoint). */
void addControlPortFlag(CLI::App& app, int& port);

/** Makes libevent thread-safe (evthread_use_pthreads) once per process. */
void enableLibeventThreads();

}  // namespace bulwark::examples
