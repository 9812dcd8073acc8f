#pragma once

#include <chrono>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "policies/bulkhead/concurrency_limit.h"
#include "policies/outcome.h"
#include "policies/random.h"
#include "proxy/event/dispatcher.h"
#include "proxy/http/codec.h"
#include "proxy/network/buffer.h"
#include "proxy/router/route_entry.h"
#include "proxy/router/router_context.h"
#include "proxy/router/upstream_request.h"
#include "proxy/tracing/tracer.h"

namespace bulwark::router {

/** What the router needs from the downstream stream that owns it. Thread: owning worker. */
class RouterCallbacks {
public:
  virtual ~RouterCallbacks() = default;
  virtual void encodeHeaders(http::ResponseHeadersPtr&& headers, bool end_stream) = 0;
  virtual void encodeData(evbuffer* data, bool end_stream) = 0;
  virtual void encodeTrailers(http::HeaderMap&& trailers) = 0;
  /**
   * Generates a response locally (or resets the stream when headers already went out); the
   * route's fallback answers instead when its `on` list has the reply kind's trigger.
   */
  virtual void sendLocalReply(http::LocalReply reply) = 0;
  /** True when the route answers `trigger` with its fallback. */
  virtual bool fallbackReplaces(config::FallbackTrigger trigger) const = 0;
  /** Stops/resumes reading the downstream request body (backpressure). */
  virtual void readDisableDownstream(bool disable) = 0;
  virtual bool downstreamResponseStarted() const = 0;
  /** A policy in `mode: dryRun` would have refused this request; it goes on. */
  virtual void recordDryRun(std::string_view decision) { (void)decision; }
  /** The request's decision record; null when nobody reads it. */
  virtual http::DecisionRecord* decisions() { return nullptr; }
  /** The request's trace when it is sampled; null otherwise. */
  virtual tracing::RequestTrace* trace() { return nullptr; }
};

/**
 * The terminal stage: owns the deadline and the attempts (UpstreamRequest) of one downstream
 * request — retries with backoff, budget and pushback, per-try timeouts and hedging — and relays
 * the request body to the attempt and the winning response back.
 * Retries are never started inline: always from a timer (Envoy's RetryState rule). An Upgrade
 * request has one attempt; after its 101 the request and response bodies are the tunnel.
 * Thread: owning worker.
 */
class Router : public UpstreamRequestCallbacks {
public:
  Router(RouterContext& ctx, RouterCallbacks& callbacks, const RouteEntry& route,
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

  const std::string& upstreamHost() const { return last_host_; }
  /** Request body bytes this request holds: the replay copy and what attempts have queued. */
  size_t bufferedBytes() const;
  uint32_t attempts() const { return attempts_started_; }

private:
  // UpstreamRequestCallbacks
  const http::RequestHeaders& headersForAttempt(uint32_t number) override;
  bool isGrpc() const override { return grpc_; }
  void onAttemptHeaders(UpstreamRequest& attempt, http::ResponseHeadersPtr&& headers,
                        bool end_stream) override;
  void onAttemptData(UpstreamRequest& attempt, evbuffer* data, bool end_stream) override;
  void onAttemptTrailers(UpstreamRequest& attempt, http::HeaderMap&& trailers) override;
  void onAttemptFailed(UpstreamRequest& attempt, policies::AttemptResult result,
                       http::LocalReplyKind kind) override;
  void onAttemptWritable(UpstreamRequest& attempt, bool writable) override;

  void startAttempt(AttemptKind kind);
  void scheduleRetry(std::chrono::nanoseconds delay);
  /** What the hedge policy judges: this request as it stands. */
  policies::HedgePolicy::Request hedgeRequest() const;
  void armHedgeTimer();
  void onHedgeTimer();
  void onRequestTimeout();
  /** Ends one attempt: report to the upstream, drop it (deferred). */
  void retireAttempt(UpstreamRequest& attempt, const policies::AttemptResult& result);
  /** The decision record's end of `attempt` (no-op without a record or when already ended). */
  void recordAttemptEnd(const UpstreamRequest& attempt, const policies::AttemptResult& result,
                        std::string_view outcome = {}, bool final = true);
  void resetOtherAttempts(UpstreamRequest* keep);
  bool maybeRetry(const policies::AttemptResult& result, const http::ResponseHeaders* headers);
  void failRequest(http::LocalReply reply);
  /** The winning attempt's response ended: the request is done, its result reported. */
  void completeWith(UpstreamRequest& attempt, const policies::AttemptResult& result);
  void stopTimers();
  void stopRequestTimeout();
  std::chrono::nanoseconds remaining() const;
  bool canReplayBody() const { return !body_overflowed_; }
  /** The route may send this request more than once (retries or hedging). */
  bool mayReplay() const {
    return !upgrade_ && (route_.route->retryPolicy().options().attempts > 1 ||
                         route_.route->hedgePolicy() != nullptr);
  }

  RouterContext& ctx_;
  RouterCallbacks& callbacks_;
  const RouteEntry& route_;
  std::string downstream_address_;
  std::unique_ptr<policies::Random> random_;

  http::RequestHeadersPtr request_;  // kept for replay on retries
  bool grpc_ = false;
  // An Upgrade request: sent once (a tunnel cannot be replayed), never hedged; once the upstream
  // answers 101 only the stream idle timeout bounds it.
  bool upgrade_ = false;
  bool request_complete_ = false;
  bool has_idempotency_key_ = false;
  // The request body as sent so far, kept while it fits retryBufferLimit.
  network::LazyBuffer replay_body_;
  bool body_overflowed_ = false;
  std::optional<http::HeaderMap> request_trailers_;
  bool downstream_read_disabled_ = false;

  std::list<std::unique_ptr<UpstreamRequest>> attempts_;
  UpstreamRequest* winner_ = nullptr;  // the attempt whose response goes downstream
  std::vector<const upstream::Host*> attempted_hosts_;
  uint32_t attempts_started_ = 0;
  uint32_t retries_started_ = 0;
  std::optional<std::chrono::steady_clock::time_point> deadline_;
  std::string last_retry_reason_;  // why the next retry starts, for the decision record
  // Sampled requests: the span of attempt n at [n - 1], and whether it was exported.
  std::vector<tracing::SpanId> attempt_spans_;
  std::vector<bool> attempt_span_done_;
  std::vector<std::string> attempt_reasons_;
  // The request deadline. At the route's own timeout it waits in the worker's queue for that
  // duration (no event or allocation per request); a budget cut by grpc-timeout, whose length
  // varies per request, uses request_timer_.
  class RequestDeadline : public event::DeadlineEntry {
  public:
    explicit RequestDeadline(Router& router) : router_(router) {}
    void onDeadline() override { router_.onRequestTimeout(); }

  private:
    Router& router_;
  };
  RequestDeadline request_deadline_{*this};
  event::TimerPtr request_timer_;
  event::TimerPtr retry_timer_;
  event::TimerPtr hedge_timer_;
  bool retry_pending_ = false;
  // Held while a retry of this request is pending or in flight (minRetryConcurrency).
  std::optional<policies::ConcurrencyLimit::Permit> retry_permit_;
  std::vector<upstream::RetryPermitPtr>
      upstream_retry_permits_;  // maxRetries slots, held to the end
  bool done_ = false;
  std::string last_host_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace bulwark::router
