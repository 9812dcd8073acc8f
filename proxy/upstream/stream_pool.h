#pragma once

#include <string_view>

#include "proxy/http/codec.h"
#include "proxy/upstream/host.h"

namespace bulwark::upstream {

enum class PoolFailureReason {
  ConnectFailure,
  ConnectTimeout,
  Overflow,
  ConnectionClosed,
  TlsFailure,  // the TLS handshake with the host failed (verification, protocol, timeout)
};

/**
 * Told when a stream can start on a pooled connection, or that it cannot.
 * Thread: the pool's worker.
 */
class ConnPoolCallbacks {
public:
  virtual ~ConnPoolCallbacks() = default;
  virtual void onPoolReady(http::RequestEncoder& encoder, const Host& host) = 0;
  virtual void onPoolFailure(PoolFailureReason reason, std::string_view detail) = 0;
};

/**
 * A request waiting for a connection; cancel() drops it without callbacks.
 * Thread: the pool's worker.
 */
class Cancellable {
public:
  virtual ~Cancellable() = default;
  virtual void cancel() = 0;
};

/**
 * Where an attempt gets its upstream stream to one host: what the router uses of a connection
 * pool. ConnPool implements it; router tests give a fake that hands out scripted streams.
 * Thread: owning worker.
 */
class StreamPool {
public:
  virtual ~StreamPool() = default;

  /**
   * Starts a stream. Calls back synchronously when a connection is ready now, else queues.
   * @return a handle to cancel a queued request, or nullptr when the callback already ran.
   */
  virtual Cancellable* newStream(http::ResponseDecoder& decoder, ConnPoolCallbacks& callbacks) = 0;
};

}  // namespace bulwark::upstream
