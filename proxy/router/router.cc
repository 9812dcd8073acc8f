#include "proxy/router/router.h"

#include <fmt/format.h>

#include "proxy/http/grpc.h"

namespace bulwark::router {
namespace {
constexpr size_t kPendingBodyHighWatermark = 1024 * 1024;
}  // namespace

Router::Router(server::WorkerContext& ctx, RouterCallbacks& callbacks, const server::RouteEntry& route,
               std::string downstream_address)
    : ctx_(ctx), callbacks_(callbacks), route_(route), downstream_address_(std::move(downstream_address)) {
  pending_body_ = evbuffer_new();
}

Router::~Router() {
  cleanupAttempt(true);
  evbuffer_free(pending_body_);
}

void Router::onRequestHeaders(http::RequestHeadersPtr&& headers, bool end_stream) {
  request_ = std::move(headers);
  request_complete_ = end_stream;
  grpc_ = request_->isGrpc();

  // Deadline: the route's request timeout, tightened by the client's grpc-timeout when honored.
  auto timeouts = route_.route->timeouts();
  std::chrono::microseconds deadline = std::chrono::duration_cast<std::chrono::microseconds>(timeouts.request);
  if (grpc_ && timeouts.grpc.honor_deadline) {
    if (auto value = request_->headers.get("grpc-timeout")) {
      if (auto client = http::grpc::parseTimeout(*value)) {
        auto effective = *client;
        if (timeouts.grpc.max_deadline.count() > 0) {
          effective = std::min(effective, std::chrono::duration_cast<std::chrono::microseconds>(timeouts.grpc.max_deadline));
        }
        effective -= std::chrono::duration_cast<std::chrono::microseconds>(timeouts.grpc.deadline_offset);
        if (effective.count() < 0) effective = std::chrono::microseconds(0);
        if (deadline.count() == 0 || effective < deadline) deadline = effective;
      }
    }
  }
  if (grpc_ && deadline.count() > 0) {
    // The upstream sees the deadline it actually has left.
    request_->headers.set("grpc-timeout", http::grpc::encodeTimeout(deadline));
  }
  if (deadline.count() > 0) {
    request_timer_ = ctx_.dispatcher.createTimer([this] { onRequestTimeout(); });
    request_timer_->enableTimer(deadline);
  }
  startAttempt();
}

void Router::startAttempt() {
  ++attempts_;
  auto& tlu = ctx_.upstreamFor(route_.upstream);
  host_ = tlu.pickHost(ctx_.rng, upstream::LbContext{});
  if (!host_) {
    failUpstream(503, "no_healthy_upstream", "UNAVAILABLE");
    return;
  }
  host_address_ = host_->address;
  host_->active_requests.fetch_add(1, std::memory_order_relaxed);
  host_->requests_total.fetch_add(1, std::memory_order_relaxed);
  route_.upstream->requests_active.fetch_add(1, std::memory_order_relaxed);
  route_.upstream->requests_total.fetch_add(1, std::memory_order_relaxed);
  attempt_start_ = std::chrono::steady_clock::now();
  route_.stats->attempts_initial->Increment();
  pool_ = &tlu.poolFor(host_);
  // onPoolReady/onPoolFailure may run before newStream returns.
  pool_handle_ = pool_->newStream(*this, *this);
}

void Router::onPoolReady(http::RequestEncoder& encoder, const upstream::Host&) {
  pool_handle_ = nullptr;
  encoder_ = &encoder;
  encoder_->stream().setCallbacks(this);
  encoder_->encodeHeaders(*request_, request_complete_ && evbuffer_get_length(pending_body_) == 0 &&
                                         !pending_trailers_);
  if (encoder_ == nullptr) return;  // Reset inline.
  if (evbuffer_get_length(pending_body_) > 0 || (pending_end_stream_ && !pending_trailers_)) {
    bool end = pending_end_stream_ && !pending_trailers_;
    encoder_->encodeData(pending_body_, end);
  }
  if (encoder_ != nullptr && pending_trailers_) {
    encoder_->encodeTrailers(*pending_trailers_);
    pending_trailers_.reset();
  }
  if (downstream_read_disabled_) {
    downstream_read_disabled_ = false;
    callbacks_.readDisableDownstream(false);
  }
}

void Router::onPoolFailure(upstream::PoolFailureReason reason, std::string_view detail) {
  pool_handle_ = nullptr;
  finishAttempt(true);
  switch (reason) {
    case upstream::PoolFailureReason::Overflow:
      failUpstream(503, "upstream_overflow", "UNAVAILABLE");
      return;
    case upstream::PoolFailureReason::ConnectTimeout:
      failUpstream(503, "upstream_connect_timeout", "UNAVAILABLE");
      return;
    default:
      (void)detail;
      failUpstream(503, "upstream_connect_failure", "UNAVAILABLE");
      return;
  }
}

void Router::onRequestData(evbuffer* data, bool end_stream) {
  if (end_stream) request_complete_ = true;
  if (done_) {
    evbuffer_drain(data, evbuffer_get_length(data));
    return;
  }
  if (encoder_ != nullptr) {
    encoder_->encodeData(data, end_stream);
    return;
  }
  // No connection yet: hold the body, and stop reading once a bounded amount is held.
  evbuffer_add_buffer(pending_body_, data);
  pending_end_stream_ = end_stream;
  if (!downstream_read_disabled_ && evbuffer_get_length(pending_body_) > kPendingBodyHighWatermark) {
    downstream_read_disabled_ = true;
    callbacks_.readDisableDownstream(true);
  }
}

void Router::onRequestTrailers(http::HeaderMap&& trailers) {
  request_complete_ = true;
  if (done_) return;
  if (encoder_ != nullptr) {
    encoder_->encodeTrailers(trailers);
  } else {
    pending_trailers_ = std::move(trailers);
    pending_end_stream_ = true;
  }
}

void Router::decode1xxHeaders(http::ResponseHeadersPtr&&) {
  // 100 Continue from the upstream is not forwarded: the downstream codec already answered the
  // client's Expect itself (as Envoy does by default).
}

void Router::decodeHeaders(http::ResponseHeadersPtr&& headers, bool end_stream) {
  response_headers_received_ = true;
  if (end_stream) {
    response_complete_ = true;
  }
  uint32_t status = headers->status;
  if (status >= 500 && callbacks_.fallbackReplaces("upstream5xx")) {
    // The route serves a degraded answer instead of the upstream's error.
    response_headers_received_ = false;
    cleanupAttempt(true);
    failUpstream(status, "upstream_5xx", "UNAVAILABLE");
    return;
  }
  if (end_stream) finishAttempt(status >= 500);
  callbacks_.encodeHeaders(std::move(headers), end_stream);
  if (end_stream) {
    done_ = true;
    if (request_timer_) request_timer_->disableTimer();
  }
}

void Router::decodeData(evbuffer* data, bool end_stream) {
  if (end_stream) {
    response_complete_ = true;
    finishAttempt(false);
    done_ = true;
    if (request_timer_) request_timer_->disableTimer();
  }
  callbacks_.encodeData(data, end_stream);
}

void Router::decodeTrailers(http::HeaderMap&& trailers) {
  response_complete_ = true;
  finishAttempt(false);
  done_ = true;
  if (request_timer_) request_timer_->disableTimer();
  callbacks_.encodeTrailers(std::move(trailers));
}

void Router::finishAttempt(bool error) {
  if (!host_) return;
  if (error) host_->errors_total.fetch_add(1, std::memory_order_relaxed);
  host_->active_requests.fetch_sub(1, std::memory_order_relaxed);
  route_.upstream->requests_active.fetch_sub(1, std::memory_order_relaxed);
  auto elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - attempt_start_).count();
  route_.stats->attempt_duration->Observe(elapsed);
  host_.reset();
  if (response_complete_) {
    encoder_ = nullptr;  // The codec ends the stream itself.
  }
}

void Router::onResetStream(http::StreamResetReason reason, std::string_view detail) {
  encoder_ = nullptr;
  finishAttempt(true);
  if (done_) return;
  detail_ = std::string(detail);
  switch (reason) {
    case http::StreamResetReason::ConnectionFailure:
    case http::StreamResetReason::ConnectTimeout:
      failUpstream(503, "upstream_connect_failure", "UNAVAILABLE");
      return;
    case http::StreamResetReason::RefusedStream:
    case http::StreamResetReason::GoAwayBeforeProcessing:
      failUpstream(503, "upstream_refused_stream", "UNAVAILABLE");
      return;
    case http::StreamResetReason::ProtocolError:
      failUpstream(502, "upstream_protocol_error", "UNAVAILABLE");
      return;
    default:
      failUpstream(502, "upstream_reset", "UNAVAILABLE");
      return;
  }
}

void Router::failUpstream(uint32_t status, std::string_view reason, std::string_view grpc_status) {
  done_ = true;
  if (request_timer_) request_timer_->disableTimer();
  if (detail_.empty()) detail_ = std::string(reason);
  std::string_view trigger = reason == "request_timeout" ? "timeout" : "upstream5xx";
  callbacks_.sendLocalReply(status, reason, grpc_status, trigger);
}

void Router::onRequestTimeout() {
  if (done_) return;
  cleanupAttempt(true);
  failUpstream(504, "request_timeout", "DEADLINE_EXCEEDED");
}

void Router::cleanupAttempt(bool reset_upstream) {
  if (pool_handle_ != nullptr) {
    pool_handle_->cancel();
    pool_handle_ = nullptr;
  }
  if (encoder_ != nullptr && reset_upstream) {
    auto* encoder = encoder_;
    encoder_ = nullptr;
    encoder->stream().setCallbacks(nullptr);
    encoder->stream().resetStream(http::StreamResetReason::LocalReset);
  }
  if (host_) finishAttempt(true);
}

void Router::onDownstreamReset() {
  done_ = true;
  if (request_timer_) request_timer_->disableTimer();
  cleanupAttempt(true);
}

void Router::onAboveWriteBufferHighWatermark() {
  // The upstream cannot take request body as fast as the client sends it.
  if (!downstream_read_disabled_) {
    downstream_read_disabled_ = true;
    callbacks_.readDisableDownstream(true);
  }
}

void Router::onBelowWriteBufferLowWatermark() {
  if (downstream_read_disabled_) {
    downstream_read_disabled_ = false;
    callbacks_.readDisableDownstream(false);
  }
}

void Router::onDownstreamAboveWriteBufferHighWatermark() {
  if (encoder_ != nullptr && !upstream_read_disabled_) {
    upstream_read_disabled_ = true;
    encoder_->stream().readDisable(true);
  }
}

void Router::onDownstreamBelowWriteBufferLowWatermark() {
  if (encoder_ != nullptr && upstream_read_disabled_) {
    upstream_read_disabled_ = false;
    encoder_->stream().readDisable(false);
  }
}

}  // namespace bulwark::router
