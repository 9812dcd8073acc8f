#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string_view>

#include "policies/outcome.h"
#include "proxy/event/dispatcher.h"
#include "proxy/http/codec.h"
#include "proxy/http/local_reply.h"
#include "proxy/network/buffer.h"
#include "proxy/router/route_entry.h"
#include "proxy/upstream/stream_pool.h"
#include "proxy/upstream/upstream.h"

struct evbuffer;

namespace bulwark::router {

/** Why an attempt was started. */
enum class AttemptKind { Initial, Retry, Hedge };

class UpstreamRequest;

/**
 * What an attempt needs from, and reports to, the request it belongs to (the Router).
 * Thread: owning worker.
 */
class UpstreamRequestCallbacks {
public:
  virtual ~UpstreamRequestCallbacks() = default;
  /**
   * The request headers to send for attempt `number` (attempt count, the deadline left), valid
   * until the next call. The codec copies them as it encodes.
   */
  virtual const http::RequestHeaders& headersForAttempt(uint32_t number) = 0;
  virtual bool isGrpc() const = 0;
  virtual void onAttemptHeaders(UpstreamRequest& attempt, http::ResponseHeadersPtr&& headers,
                                bool end_stream) = 0;
  virtual void onAttemptData(UpstreamRequest& attempt, evbuffer* data, bool end_stream) = 0;
  virtual void onAttemptTrailers(UpstreamRequest& attempt, http::HeaderMap&& trailers) = 0;
  /**
   * The attempt failed before its response started (connect, reset, per-try timeout); `kind` is
   * the local reply it becomes when nothing retries it.
   */
  virtual void onAttemptFailed(UpstreamRequest& attempt, policies::AttemptResult result,
                               http::LocalReplyKind kind) = 0;
  /** The upstream stream's send buffer crossed its high (false) or low (true) watermark. */
  virtual void onAttemptWritable(UpstreamRequest& attempt, bool writable) = 0;
};

/**
 * One attempt: a stream on a pooled connection to one host, its per-try timer, and the request
 * bytes it still has to send. Its permit (from Upstream::admitAttempt) counts it in flight on
 * the upstream and the host until it reports or goes away. Thread: owning worker. Owned by the
 * Router.
 */
class UpstreamRequest : public http::ResponseDecoder,
                        public http::StreamCallbacks,
                        public upstream::ConnPoolCallbacks {
public:
  UpstreamRequest(UpstreamRequestCallbacks& callbacks, event::Dispatcher& dispatcher,
                  const RouteEntry& route, AttemptKind kind, uint32_t number,
                  upstream::HostSharedPtr host, upstream::AttemptPermitPtr permit);
  ~UpstreamRequest() override;

  /** Asks the pool for a stream; `per_try` > 0 arms the per-try timeout. */
  void start(upstream::StreamPool& pool, std::chrono::nanoseconds per_try);
  /** Queues or sends request body. data is copied when `copy`, else moved. */
  void sendBody(evbuffer* data, bool end_stream, bool copy);
  void sendTrailers(const http::HeaderMap& trailers);
  /** Abandons the attempt: drops a queued pool request or resets the stream. No callbacks. */
  void cancel();
  void readDisable(bool disable);

  /** The attempt's result from its response so far (status and grpc-status seen in headers). */
  policies::AttemptResult responseResult() const;
  policies::AttemptResult result(uint32_t status, const http::ResponseHeaders* headers) const;
  /** Abandoned without a result (lost hedge, client gone): frees the permit, teaches nothing. */
  void reportCancelled();
  /** Hands the result and the permit to the upstream (breaker, outlier detection, counters). */
  void report(const policies::AttemptResult& result);

  /** Request body queued here until the pool hands out a stream. */
  size_t bufferedBytes() const;
  bool headersReceived() const { return headers_received_; }
  bool complete() const { return complete_; }
  const upstream::Host& host() const { return *host_; }
  AttemptKind kind() const { return kind_; }
  uint32_t number() const { return number_; }
  std::chrono::steady_clock::time_point startTime() const { return start_; }

  // upstream::ConnPoolCallbacks
  void onPoolReady(http::RequestEncoder& encoder, const upstream::Host& host) override;
  void onPoolFailure(upstream::PoolFailureReason reason, std::string_view detail) override;
  // http::ResponseDecoder
  void decode1xxHeaders(http::ResponseHeadersPtr&& headers) override;
  void decodeHeaders(http::ResponseHeadersPtr&& headers, bool end_stream) override;
  void decodeData(evbuffer* data, bool end_stream) override;
  void decodeTrailers(http::HeaderMap&& trailers) override;
  // http::StreamCallbacks
  void onResetStream(http::StreamResetReason reason, std::string_view detail) override;
  void onAboveWriteBufferHighWatermark() override { callbacks_.onAttemptWritable(*this, false); }
  void onBelowWriteBufferLowWatermark() override { callbacks_.onAttemptWritable(*this, true); }

private:
  // The response is complete: the codec ends the stream itself and may free it (with its
  // connection) at any time after this, so the attempt lets go of the encoder now.
  void streamEnded();
  void onPerTryTimeout();

  UpstreamRequestCallbacks& callbacks_;
  event::Dispatcher& dispatcher_;
  const RouteEntry& route_;
  const AttemptKind kind_;
  const uint32_t number_;
  const upstream::HostSharedPtr host_;
  upstream::AttemptPermitPtr permit_;  // null once reported
  const std::chrono::steady_clock::time_point start_;
  upstream::Cancellable* pool_handle_ = nullptr;
  http::RequestEncoder* encoder_ = nullptr;
  network::LazyBuffer pending_;
  bool pending_end_ = false;
  std::optional<http::HeaderMap> pending_trailers_;
  bool request_sent_ = false;
  uint32_t response_status_ = 0;
  std::optional<bulwark::GrpcStatus> response_grpc_status_;
  bool response_pushback_ = false;
  bool headers_received_ = false;
  bool complete_ = false;
  bool finished_ = false;
  event::TimerPtr per_try_timer_;
};

}  // namespace bulwark::router
