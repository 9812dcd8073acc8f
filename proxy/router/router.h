#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "proxy/event/dispatcher.h"
#include "proxy/http/codec.h"
#include "proxy/server/config_snapshot.h"
#include "proxy/server/worker_context.h"
#include "proxy/upstream/conn_pool.h"

namespace bulwark::router {

/** What the router needs from the downstream stream that owns it. Thread: owning worker. */
class RouterCallbacks {
public:
  virtual ~RouterCallbacks() = default;
  virtual void encodeHeaders(http::ResponseHeadersPtr&& headers, bool end_stream) = 0;
  virtual void encodeData(evbuffer* data, bool end_stream) = 0;
  virtual void encodeTrailers(http::HeaderMap&& trailers) = 0;
  /**
   * Generates a response locally (or resets the stream when headers already went out).
   * fallback_trigger names the route-fallback trigger this failure corresponds to.
   */
  virtual void sendLocalReply(uint32_t status, std::string_view reason, std::string_view grpc_status,
                              std::string_view fallback_trigger) = 0;
  /** True when the route answers upstream 5xx responses with its fallback instead. */
  virtual bool fallbackReplaces(std::string_view trigger) const = 0;
  /** Stops/resumes reading the downstream request body (backpressure). */
  virtual void readDisableDownstream(bool disable) = 0;
  virtual bool downstreamResponseStarted() const = 0;
};

/**
 * The terminal stage: owns the deadline and the attempts (UpstreamRequest) of one downstream
 * request, relays the request body to the attempt and the response back (architecture §11.4).
 * Thread: owning worker.
 */
class Router : public http::ResponseDecoder, public http::StreamCallbacks, public upstream::ConnPoolCallbacks {
public:
  Router(server::WorkerContext& ctx, RouterCallbacks& callbacks, const server::RouteEntry& route,
         std::string downstream_address);
  ~Router() override;

  void onRequestHeaders(http::RequestHeadersPtr&& headers, bool end_stream);
  void onRequestData(evbuffer* data, bool end_stream);
  void onRequestTrailers(http::HeaderMap&& trailers);
  /** Downstream went away: cancel everything without replying. */
  void onDownstreamReset();
  /** Downstream buffer full/drained: pause/resume reading the upstream response. */
  void onDownstreamAboveWriteBufferHighWatermark();
  void onDownstreamBelowWriteBufferLowWatermark();

  const std::string& upstreamHost() const { return host_address_; }
  const std::string& responseDetail() const { return detail_; }
  uint32_t attempts() const { return attempts_; }

  // http::ResponseDecoder (upstream)
  void decode1xxHeaders(http::ResponseHeadersPtr&& headers) override;
  void decodeHeaders(http::ResponseHeadersPtr&& headers, bool end_stream) override;
  void decodeData(evbuffer* data, bool end_stream) override;
  void decodeTrailers(http::HeaderMap&& trailers) override;
  // http::StreamCallbacks (upstream stream)
  void onResetStream(http::StreamResetReason reason, std::string_view detail) override;
  void onAboveWriteBufferHighWatermark() override;
  void onBelowWriteBufferLowWatermark() override;
  // upstream::ConnPoolCallbacks
  void onPoolReady(http::RequestEncoder& encoder, const upstream::Host& host) override;
  void onPoolFailure(upstream::PoolFailureReason reason, std::string_view detail) override;

private:
  void startAttempt();
  void onRequestTimeout();
  void cleanupAttempt(bool reset_upstream);
  void finishAttempt(bool error);
  void failUpstream(uint32_t status, std::string_view reason, std::string_view grpc_status);

  server::WorkerContext& ctx_;
  RouterCallbacks& callbacks_;
  const server::RouteEntry& route_;
  std::string downstream_address_;
  http::RequestHeadersPtr request_;
  bool grpc_ = false;
  bool request_complete_ = false;
  evbuffer* pending_body_;          // body received before the attempt could take it
  std::optional<http::HeaderMap> pending_trailers_;
  bool pending_end_stream_ = false;
  bool downstream_read_disabled_ = false;
  bool upstream_read_disabled_ = false;

  upstream::HostSharedPtr host_;
  std::string host_address_;
  upstream::Cancellable* pool_handle_ = nullptr;
  upstream::ConnPool* pool_ = nullptr;
  http::RequestEncoder* encoder_ = nullptr;
  bool response_headers_received_ = false;
  bool response_complete_ = false;
  bool done_ = false;
  uint32_t attempts_ = 0;
  std::chrono::steady_clock::time_point attempt_start_;
  std::string detail_;
  event::TimerPtr request_timer_;
};

}  // namespace bulwark::router
