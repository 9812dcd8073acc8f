#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/grpc_status.h"
#include "proxy/event/dispatcher.h"
#include "proxy/http/codec.h"
#include "proxy/http/filter.h"
#include "proxy/router/route_entry.h"
#include "proxy/router/router.h"
#include "proxy/server/config_snapshot.h"
#include "proxy/server/worker_context.h"

struct evbuffer;

namespace bulwark::server {

class ConnectionManager;

/**
 * One request/response exchange on a downstream connection: matches the route, owns the
 * Router (attempts), and relays the response to the codec. Thread: owning worker.
 */
class ActiveStream : public http::RequestDecoder,
                     public http::StreamCallbacks,
                     public router::RouterCallbacks,
                     public http::FilterCallbacks,
                     public event::DeferredDeletable {
public:
  ActiveStream(ConnectionManager& parent, http::ResponseEncoder& encoder);
  ~ActiveStream() override;

  // RequestDecoder
  void decodeHeaders(http::RequestHeadersPtr&& headers, bool end_stream) override;

  // Runs the request-headers stage from next_filter_; starts the router when all continue.
  void runFilters();

  // Gives the filter holding the request (StopIterationAndBuffer) the body buffered so far and
  // resumes the chain when it continues. At the end of the body a filter that still asks to
  // buffer has nothing more to wait for: that is taken as Continue.
  void deliverBuffered();

  // FilterCallbacks
  void continueRequest() override;
  void sendLocalReply(http::LocalReply reply) override { localReply(std::move(reply)); }
  event::Dispatcher& dispatcher() override { return ctx_.dispatcher; }
  const http::RequestHeaders& requestHeaders() const override { return *request_headers_; }
  const std::string& downstreamAddress() const override;
  bool isGrpc() const override { return grpc_; }
  std::shared_ptr<redis::RedisClient> redis() override { return ctx_.redis; }
  void recordDryRun(std::string_view decision) override { dry_run_.emplace_back(decision); }
  http::DecisionRecord* decisions() override { return decisions_.get(); }
  tracing::RequestTrace* trace() override { return trace_.get(); }
  void decodeData(evbuffer* data, bool end_stream) override;
  void decodeTrailers(http::HeaderMap&& trailers) override;

  // StreamCallbacks (downstream)
  void onResetStream(http::StreamResetReason reason, std::string_view detail) override;
  void onAboveWriteBufferHighWatermark() override;
  void onBelowWriteBufferLowWatermark() override;

  // router::RouterCallbacks
  void encodeHeaders(http::ResponseHeadersPtr&& headers, bool end_stream) override;
  void encodeData(evbuffer* data, bool end_stream) override;
  void encodeTrailers(http::HeaderMap&& trailers) override;
  bool fallbackReplaces(config::FallbackTrigger trigger) const override;

  void localReply(http::LocalReply reply);

  // Re-arms timeouts.idle: bytes moved in either direction.
  void touch();

  // timeouts.idle expired: nothing moved either way for that long (Envoy's stream_idle_timeout).
  // Before the response started the client gets 504 (gRPC: DEADLINE_EXCEEDED); after, the only
  // honest signal left is a reset (localReply() does that). The attempts are cancelled first,
  // without blaming the host (it may be a slow client or a long backoff).
  void onStreamIdleTimeout();

  // The route's configured degraded answer, marked so clients and dashboards can tell.
  void sendFallback(const http::LocalReply& reply);

  void sendWithBody(http::ResponseHeadersPtr headers, const std::string& body);
  void readDisableDownstream(bool disable) override;

  /** Request body bytes this stream holds (a filter's hold, the replay copy, queued sends). */
  uint64_t bufferedBytes() const;
  /** The overload manager takes this stream's memory back: 503 overload_reset, or a reset. */
  void resetForOverload();
  bool downstreamResponseStarted() const override { return response_started_; }

private:
  // Metrics and the access log are recorded before the final encode call, because an HTTP/1
  // codec may close the connection (and with it this stream) inside that call.
  void finishBeforeEncode() { recordStats(); }

  void recordStats();

  void finish();

  ConnectionManager& parent_;
  WorkerContext& ctx_;
  std::vector<std::string> dry_run_;  // refusals of dryRun policies, for the access log
  // Kept when the access log or an allowed x-bulwark-explain will read it.
  std::unique_ptr<http::DecisionRecord> decisions_;
  bool explain_ = false;                          // answer with x-bulwark-explain
  std::unique_ptr<tracing::RequestTrace> trace_;  // set when the request is sampled
  std::string trace_id_;  // hex, for the access log: the request's trace, sampled or not
  void exportServerSpan();
  http::ResponseEncoder* encoder_;
  ConfigSnapshotConstSharedPtr snapshot_;  // RCU: this request finishes on its config
  const router::RouteEntry* route_ = nullptr;
  std::unique_ptr<router::Router> router_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::system_clock::time_point start_wall_;
  std::string request_method_, request_path_, authority_, user_agent_, request_id_, xff_, detail_;
  bool grpc_ = false;
  std::optional<GrpcStatus> grpc_status_;
  uint32_t status_ = 0;
  uint64_t bytes_received_ = 0;
  uint64_t bytes_sent_ = 0;
  bool response_started_ = false;
  bool done_ = false;
  bool stats_recorded_ = false;
  bool active_gauge_ = false;
  bool tunnel_gauge_ = false;  // counted in bulwark_tunnels_active
  bool local_reply_ = false;
  event::TimerPtr stream_idle_timer_;  // timeouts.idle; none when 0
  std::chrono::milliseconds idle_timeout_{0};
  // limits.minRequestBodyRate: every window the body must have grown by rate x window, unless
  // bulwark itself stopped reading it (backpressure, a filter holding the request).
  void onBodyRateCheck();
  event::TimerPtr body_rate_timer_;
  std::chrono::milliseconds body_rate_window_{0};
  uint64_t min_body_bytes_per_window_ = 0;
  uint64_t body_window_start_bytes_ = 0;
  bool request_body_done_ = false;
  bool downstream_read_disabled_ = false;  // by the router (upstream backpressure)
  bool read_paused_in_window_ = false;
  // Filter chain state.
  std::vector<http::HttpFilterPtr> filters_;
  size_t next_filter_ = 0;
  http::RequestHeadersPtr request_headers_;  // held until the router starts
  bool request_end_stream_ = false;
  evbuffer* pending_body_ = nullptr;  // body received while a filter held the request
  bool pending_end_stream_ = false;
  std::optional<http::HeaderMap> pending_trailers_;
  bool paused_read_ = false;
  bool buffering_ = false;  // filters_[next_filter_ - 1] holds the request and reads its body
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace bulwark::server
