#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include <event2/listener.h>

#include "proxy/event/dispatcher.h"
#include "proxy/server/connection_manager.h"
#include "proxy/server/overload_manager.h"
#include "proxy/server/worker_context.h"

namespace bulwark::server {

/**
 * One thread, one event_base: its own SO_REUSEPORT listener sockets, the downstream
 * connections the kernel hands it, and per-worker upstream pools. Thread: its own, except the
 * public methods, which any thread may call (they post to the worker).
 */
class Worker {
public:
  Worker(uint32_t index, stats::Stats& stats,
         std::shared_ptr<std::atomic<uint64_t>> global_active_streams,
         OverloadSignalsSharedPtr overload, uint32_t max_connections);
  ~Worker();

  void start();
  /** Takes ownership of a listening socket for the named listener. */
  void addListener(const std::string& listener_name, int fd);
  void setSnapshot(ConfigSnapshotConstSharedPtr snapshot);
  /** Stops accepting and asks every connection to drain (GOAWAY / Connection: close). */
  void drain();
  /**
   * Overload: resets this worker's streams holding the most buffered bytes until about
   * `bytes` are given back (only streams holding at least 1 MiB, as Envoy).
   */
  void resetHighMemoryStreams(uint64_t bytes);
  /** Exits the loop and joins the thread. */
  void stop();
  /** Last heartbeat of the loop (liveness). */
  std::chrono::steady_clock::time_point lastHeartbeat() const {
    return std::chrono::steady_clock::time_point(
        std::chrono::steady_clock::duration(heartbeat_.load()));
  }
  uint64_t connectionCount() const { return connection_count_.load(); }

private:
  static void onAccept(evconnlistener* listener, evutil_socket_t fd, sockaddr* addr, int len,
                       void* arg);
  struct ListenerHandle {
    Worker* worker;
    std::string name;
    evconnlistener* listener;
  };
  /** Bounds acceptQueued: a listen backlog is at most this long (net.core.somaxconn). */
  static constexpr int kMaxAcceptedAtDrain = 65536;
  /** Accepts every connection waiting in `handle`'s queue, before the drain closes it. */
  void acceptQueued(ListenerHandle& handle);

  uint32_t index_;
  event::Dispatcher dispatcher_;
  WorkerContext ctx_;
  uint32_t max_connections_;
  std::thread thread_;
  std::vector<std::unique_ptr<ListenerHandle>> listeners_;
  std::map<ConnectionManager*, std::unique_ptr<ConnectionManager>> connections_;
  std::atomic<uint64_t> connection_count_{0};
  std::atomic<int64_t> heartbeat_{0};
  event::TimerPtr heartbeat_timer_;
  bool stopped_ = false;
};

}  // namespace bulwark::server
