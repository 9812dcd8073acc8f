#pragma once

#include <chrono>
#include <list>
#include <memory>
#include <string>
#include <vector>

#include "proxy/event/dispatcher.h"
#include "proxy/http/codec.h"
#include "proxy/http/filter.h"
#include "proxy/network/connection.h"
#include "proxy/router/route_entry.h"
#include "proxy/server/config_snapshot.h"
#include "proxy/server/worker_context.h"

namespace bulwark::server {

class ActiveStream;

/**
 * One downstream connection: picks the codec (HTTP/1.1, h2c, or sniffs the HTTP/2 preface),
 * creates an ActiveStream per request, enforces idle and header-read timeouts, and drains.
 * Owns its network::Connection. Thread: owning worker.
 */
class ConnectionManager : public network::ConnectionCallbacks,
                          public http::ServerConnectionCallbacks,
                          public event::DeferredDeletable,
                          private event::DeadlineEntry {
public:
  /** Called when the connection is gone so the owner can forget and defer-delete it. */
  using CloseCallback = std::function<void(ConnectionManager&)>;

  ConnectionManager(WorkerContext& ctx, network::ConnectionPtr&& connection,
                    std::string listener_name, CloseCallback on_close);
  ~ConnectionManager() override;

  /** Graceful drain: GOAWAY / Connection: close; close now when idle. */
  void shutdownNotice();
  size_t activeStreams() const { return streams_.size(); }

  // network::ConnectionCallbacks
  void onData(evbuffer* input) override;
  void onEvent(network::ConnectionEvent event) override;
  void onAboveWriteBufferHighWatermark() override;
  void onBelowWriteBufferLowWatermark() override;
  void onWriteTimeout() override;
  // http::ServerConnectionCallbacks
  http::RequestDecoder& newStream(http::ResponseEncoder& encoder) override;
  void onProtocolError(std::string_view details) override;

  void onStreamDone(ActiveStream& stream);

  /** A stream and the request bytes it holds, for the overload manager's choice of resets. */
  struct StreamBytes {
    ActiveStream* stream;
    uint64_t bytes;
  };
  void collectStreamBytes(std::vector<StreamBytes>& out) const;
  WorkerContext& context() { return ctx_; }
  /** The listener's config in this connection's snapshot; null if it has none. */
  const router::ListenerConfig* listenerConfig() const { return listener_; }
  const std::string& listenerName() const { return listener_name_; }
  network::Connection& connection() { return *connection_; }
  /** Whether a codec is held; an HTTP/1 connection between requests holds none. */
  bool holdsCodec() const { return codec_ != nullptr; }

private:
  bool createCodec(evbuffer* input);
  void releaseIdleCodec();
  // One deadline per connection serves both timeouts: reading a request's headers
  // (headerReadTimeout) or idling between requests (idleTimeout). It waits in the worker's
  // queue for that duration (no libevent event of its own). Off while a stream is open:
  // streams have their own timeouts.
  enum class TimerMode : uint8_t { Off, HeaderRead, Idle };
  void armTimers();
  void startTimer(TimerMode mode);
  void stopTimer();
  void onDeadline() override;
  void onIdleTimeout();
  void closeConnection(network::Connection::CloseType type);

  WorkerContext& ctx_;
  network::ConnectionPtr connection_;
  std::string listener_name_;
  CloseCallback on_close_;
  ConfigSnapshotConstSharedPtr snapshot_;             // the config this connection started with
  const router::ListenerConfig* listener_ = nullptr;  // in snapshot_
  http::ServerConnectionPtr codec_;
  bool is_http2_ = false;
  bool served_ = false;  // a request reached newStream: the protocol is settled
  std::list<std::unique_ptr<ActiveStream>> streams_;
  TimerMode timer_mode_ = TimerMode::Off;
  bool closed_ = false;
  bool draining_ = false;
  prometheus::Gauge* cx_active_ = nullptr;
};

}  // namespace bulwark::server
