#include "proxy/server/active_stream.h"

#include <algorithm>
#include <array>
#include <cstring>

#include <event2/buffer.h>
#include <fmt/format.h>

#include "proxy/http/grpc.h"
#include "proxy/http/log_entry.h"
#include "proxy/network/address.h"
#include "proxy/network/buffer.h"
#include "proxy/server/connection_manager.h"

namespace bulwark::server {
namespace {

// A tunnel on a route without timeouts.idle: Envoy's default stream idle timeout.
constexpr std::chrono::milliseconds kDefaultTunnelIdleTimeout = std::chrono::minutes(5);

std::string uuid4(std::mt19937_64& rng) {
  uint64_t a = rng();
  uint64_t b = rng();
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 10
  // 8-4-4-4-12 hex digits of a then b, a byte (two digits) per table lookup: one id per
  // request, and fmt's parsing of a five-field format string cost more than the rest of it.
  static constexpr auto kHexPairs = [] {
    constexpr char kHex[] = "0123456789abcdef";
    std::array<char, 512> pairs{};
    for (size_t i = 0; i < 256; ++i) {
      pairs[2 * i] = kHex[i >> 4];
      pairs[2 * i + 1] = kHex[i & 0xF];
    }
    return pairs;
  }();
  char digits[32];
  for (size_t k = 0; k < 8; ++k) {
    const size_t shift = 56 - 8 * k;
    std::memcpy(digits + 2 * k, &kHexPairs[2 * ((a >> shift) & 0xFF)], 2);
    std::memcpy(digits + 16 + 2 * k, &kHexPairs[2 * ((b >> shift) & 0xFF)], 2);
  }
  std::string id(36, '-');
  std::memcpy(id.data(), digits, 8);
  std::memcpy(id.data() + 9, digits + 8, 4);
  std::memcpy(id.data() + 14, digits + 12, 4);
  std::memcpy(id.data() + 19, digits + 16, 4);
  std::memcpy(id.data() + 24, digits + 20, 12);
  return id;
}

}  // namespace

ActiveStream::ActiveStream(ConnectionManager& parent, http::ResponseEncoder& encoder)
    : parent_(parent),
      ctx_(parent.context()),
      encoder_(&encoder),
      snapshot_(ctx_.snapshot),
      start_(std::chrono::steady_clock::now()),
      start_wall_(std::chrono::system_clock::now()) {
  encoder.stream().setCallbacks(this);
  ++ctx_.active_streams;
  if (ctx_.global_active_streams) {
    ctx_.global_active_streams->fetch_add(1);
  }
}

ActiveStream::~ActiveStream() {
  router_.reset();
  filters_.clear();
  if (pending_body_) {
    evbuffer_free(pending_body_);
  }
  --ctx_.active_streams;
  if (ctx_.global_active_streams) {
    ctx_.global_active_streams->fetch_sub(1);
  }
}

void ActiveStream::decodeHeaders(http::RequestHeadersPtr&& headers, bool end_stream) {
  request_method_ = headers->method;
  request_path_ = headers->path;
  authority_ = headers->authority;
  grpc_ = headers->isGrpc();
  if (auto ua = headers->headers.get("user-agent")) {
    user_agent_ = std::string(*ua);
  }
  const auto& obs = snapshot_->spec.observability;
  auto existing_id = headers->headers.get("x-request-id");
  if (!existing_id || !obs.request_id.preserve_external) {
    if (obs.request_id.generate) {
      headers->headers.set("x-request-id", uuid4(ctx_.rng));
    }
  }
  if (auto id = headers->headers.get("x-request-id")) {
    request_id_ = std::string(*id);
  }
  // X-Forwarded-For / -Proto: append the peer we saw.
  const std::string ip(network::addressIp(parent_.connection().peerAddress()));
  if (auto xff = headers->headers.getJoined("x-forwarded-for")) {
    headers->headers.set("x-forwarded-for", *xff + ", " + ip);
  } else {
    headers->headers.add("x-forwarded-for", ip);
  }
  // Client certificate details are only ever bulwark's own statement, never a client's.
  headers->headers.remove("x-forwarded-client-cert");
  if (auto* tls = parent_.connection().tls()) {
    headers->scheme = "https";  // what the client spoke to us, whatever it claimed
    headers->sni = tls->sni();
    if (tls->context().forwardsClientCert()) {
      if (const std::string& xfcc = tls->clientCertDetails(); !xfcc.empty()) {
        headers->headers.add("x-forwarded-client-cert", xfcc);
      }
    }
  }
  headers->headers.set("x-forwarded-proto", headers->scheme.empty() ? "http" : headers->scheme);
  if (const auto& tracer = snapshot_->tracer) {
    auto incoming = tracer->extract(headers->headers);
    if (tracer->sample(incoming, ctx_.rng)) {
      trace_ = std::make_unique<tracing::RequestTrace>();
      trace_->tracer = tracer.get();  // the snapshot outlives the stream
      tracing::Span& span = trace_->server;
      span.trace_id = incoming ? incoming->trace_id : tracing::randomTraceId(ctx_.rng);
      span.span_id = tracing::randomSpanId(ctx_.rng);
      if (incoming) {
        span.parent = incoming->span_id;
      }
      span.kind = tracing::Span::Kind::Server;
      span.start_unix_nanos = static_cast<uint64_t>(
          std::chrono::duration_cast<std::chrono::nanoseconds>(start_wall_.time_since_epoch())
              .count());
    }
    if (trace_) {
      trace_id_ = tracing::toHex(trace_->server.trace_id);
    } else if (incoming) {
      trace_id_ = tracing::toHex(incoming->trace_id);
    }
  }
  // Asked for by a client the config trusts, or not at all; never forwarded.
  if (auto explain = headers->headers.get("x-bulwark-explain")) {
    explain_ = *explain == "1" && std::any_of(snapshot_->explain_allow_from.begin(),
                                              snapshot_->explain_allow_from.end(),
                                              [&](const Cidr& c) { return c.contains(ip); });
    headers->headers.remove("x-bulwark-explain");
  }
  if (explain_ || snapshot_->access_log) {
    decisions_ = std::make_unique<http::DecisionRecord>();
  }
  xff_ = std::string(*headers->headers.get("x-forwarded-for"));

  auto listener_it = snapshot_->listeners.find(parent_.listenerName());
  if (listener_it != snapshot_->listeners.end()) {
    // The path routed is the path forwarded: normalised once, here.
    http::PathResult path = http::normalizePath(headers->path, listener_it->second.path);
    if (path.action == http::PathResult::Action::Reject) {
      localReply(http::LocalReply(http::LocalReplyKind::InvalidPath));
      return;
    }
    if (path.action == http::PathResult::Action::Redirect) {
      http::LocalReply redirect(http::LocalReplyKind::PathRedirect);
      redirect.headers.add("location", path.path);
      localReply(std::move(redirect));
      return;
    }
    if (!path.unchanged) {
      headers->path = std::move(path.path);
    }
  }
  const router::RouteEntry* entry =
      listener_it == snapshot_->listeners.end() ? nullptr : listener_it->second.match(*headers);
  if (entry == nullptr) {
    localReply(http::LocalReply(http::LocalReplyKind::RouteNotFound));
    return;
  }
  if (decisions_) {
    decisions_->setRoute(entry->route->name());
  }
  if (!headers->upgrade.empty() && !entry->route->allowsUpgrade(headers->upgrade)) {
    localReply(http::LocalReply(http::LocalReplyKind::UpgradeNotAllowed));
    return;
  }
  route_ = entry;
  route_->stats->active->Increment();
  active_gauge_ = true;
  // timeouts.idle (Envoy's stream_idle_timeout): re-armed by every byte either way. A tunnel
  // always has one, so a peer that vanished without a FIN cannot hold it open for ever.
  idle_timeout_ = route_->route->timeouts().idle;
  if (!headers->upgrade.empty() && idle_timeout_.count() == 0) {
    idle_timeout_ = kDefaultTunnelIdleTimeout;
  }
  if (idle_timeout_.count() > 0) {
    stream_idle_timer_ = ctx_.dispatcher.createTimer([this] { onStreamIdleTimeout(); });
    stream_idle_timer_->enableTimer(idle_timeout_);
  }
  request_body_done_ = end_stream;
  const config::ListenerLimitsSpec& limits = listener_it->second.spec.limits;
  if (!end_stream && limits.min_request_body_rate > 0 && headers->upgrade.empty()) {
    body_rate_window_ =
        std::chrono::duration_cast<std::chrono::milliseconds>(limits.request_body_rate_window);
    min_body_bytes_per_window_ =
        limits.min_request_body_rate * static_cast<uint64_t>(body_rate_window_.count()) / 1000;
    body_window_start_bytes_ = bytes_received_;
    body_rate_timer_ = ctx_.dispatcher.createTimer([this] { onBodyRateCheck(); });
    body_rate_timer_->enableTimer(body_rate_window_);
  }
  request_headers_ = std::move(headers);
  request_end_stream_ = end_stream;
  filters_.reserve(route_->filters.size());
  for (const auto& make : route_->filters) {
    filters_.push_back(make());
    filters_.back()->setCallbacks(*this);
  }
  runFilters();
}

void ActiveStream::runFilters() {
  while (next_filter_ < filters_.size()) {
    auto& filter = filters_[next_filter_++];
    const http::FilterStatus status =
        filter->onRequestHeaders(*request_headers_, request_end_stream_);
    if (status == http::FilterStatus::StopIterationAndBuffer && !done_) {
      // The filter needs the body before deciding (idempotency fingerprint): keep reading it.
      buffering_ = true;
      if (paused_read_) {
        paused_read_ = false;
        if (encoder_ != nullptr) {
          encoder_->stream().readDisable(false);
        }
      }
      if (request_end_stream_ || pending_end_stream_) {
        deliverBuffered();
      }
      return;
    }
    if (status != http::FilterStatus::Continue) {
      if (!done_ && !paused_read_) {
        // Hold the body while a filter waits (bulkhead queue); bounded by reading no further.
        paused_read_ = true;
        read_paused_in_window_ = true;
        if (encoder_ != nullptr) {
          encoder_->stream().readDisable(true);
        }
      }
      return;
    }
    if (done_) {
      return;
    }
  }
  if (paused_read_) {
    paused_read_ = false;
    if (encoder_ != nullptr) {
      encoder_->stream().readDisable(false);
    }
  }
  router_ =
      std::make_unique<router::Router>(ctx_, *this, *route_, parent_.connection().peerAddress());
  router_->onRequestHeaders(std::move(request_headers_), request_end_stream_ && !pending_body_);
  if (pending_body_ != nullptr && !done_ && router_) {
    router_->onRequestData(pending_body_, pending_end_stream_ && !pending_trailers_);
  }
  if (pending_trailers_ && !done_ && router_) {
    router_->onRequestTrailers(std::move(*pending_trailers_));
    pending_trailers_.reset();
  }
}

void ActiveStream::deliverBuffered() {
  const bool end = request_end_stream_ || pending_end_stream_;
  const http::FilterStatus status = filters_[next_filter_ - 1]->onRequestData(
      pending_body_ != nullptr ? pending_body_ : network::emptyBuffer(), end);
  if (done_ || (status == http::FilterStatus::StopIterationAndBuffer && !end)) {
    return;
  }
  buffering_ = false;
  if (status == http::FilterStatus::StopIteration) {
    return;  // answered, or continueRequest() later
  }
  runFilters();
}

void ActiveStream::continueRequest() {
  if (done_ || router_ || next_filter_ == 0) {
    return;
  }
  // Never re-enter a filter from inside its own call: resume on the next loop turn.
  std::weak_ptr<bool> alive = alive_;
  ctx_.dispatcher.post([this, alive] {
    if (!alive.expired() && !done_ && !router_) {
      runFilters();
    }
  });
}

const std::string& ActiveStream::downstreamAddress() const {
  return parent_.connection().peerAddress();
}

void ActiveStream::decodeData(evbuffer* data, bool end_stream) {
  bytes_received_ += evbuffer_get_length(data);
  touch();
  if (end_stream) {
    request_body_done_ = true;
  }
  if (router_ && !done_) {
    router_->onRequestData(data, end_stream);
  } else if (!done_ && route_ != nullptr) {
    // A filter holds the request: keep the body for the router.
    if (pending_body_ == nullptr) {
      pending_body_ = evbuffer_new();
    }
    evbuffer_add_buffer(pending_body_, data);
    pending_end_stream_ = end_stream;
    if (buffering_) {
      deliverBuffered();
    }
  } else {
    evbuffer_drain(data, evbuffer_get_length(data));
  }
}

void ActiveStream::decodeTrailers(http::HeaderMap&& trailers) {
  touch();
  request_body_done_ = true;
  if (router_ && !done_) {
    router_->onRequestTrailers(std::move(trailers));
  } else if (!done_ && route_ != nullptr) {
    pending_trailers_ = std::move(trailers);
    pending_end_stream_ = true;
    if (buffering_) {
      deliverBuffered();
    }
  }
}

void ActiveStream::onResetStream(http::StreamResetReason reason, std::string_view detail) {
  encoder_ = nullptr;
  if (done_) {
    return;
  }
  if (detail_.empty()) {
    detail_ = fmt::format("downstream_reset:{}", http::toString(reason));
  }
  (void)detail;
  if (router_) {
    router_->onDownstreamReset();
  }
  finish();
}

void ActiveStream::onAboveWriteBufferHighWatermark() {
  touch();
  if (router_) {
    router_->onDownstreamAboveWriteBufferHighWatermark();
  }
}

void ActiveStream::onBelowWriteBufferLowWatermark() {
  touch();  // the downstream read what we buffered: the stream is not idle
  if (router_) {
    router_->onDownstreamBelowWriteBufferLowWatermark();
  }
}

void ActiveStream::encodeHeaders(http::ResponseHeadersPtr&& headers, bool end_stream) {
  if (encoder_ == nullptr || done_) {
    return;
  }
  touch();
  response_started_ = true;
  status_ = headers->status;
  if (status_ == 101 && route_ != nullptr) {
    route_->stats->tunnelsActive().Increment();
    tunnel_gauge_ = true;
  }
  if (grpc_ && end_stream) {
    if (auto gs = headers->headers.get("grpc-status")) {
      grpc_status_ = parseGrpcStatus(*gs).value_or(GrpcStatus::Unknown);
    }
  }
  if (snapshot_->spec.observability.request_id.return_in_response && !request_id_.empty()) {
    headers->headers.set("x-request-id", request_id_);
  }
  if (explain_ && decisions_) {
    headers->headers.set("x-bulwark-explain", decisions_->compact());
  }
  if (!local_reply_) {
    for (auto it = filters_.rbegin(); it != filters_.rend(); ++it) {
      (*it)->onResponseHeaders(*headers, end_stream);
    }
  }
  auto* encoder = encoder_;
  if (end_stream) {
    finishBeforeEncode();
  }
  encoder->encodeHeaders(*headers, end_stream);
  if (end_stream) {
    finish();
  }
}

void ActiveStream::encodeData(evbuffer* data, bool end_stream) {
  if (encoder_ == nullptr || done_) {
    evbuffer_drain(data, evbuffer_get_length(data));
    return;
  }
  bytes_sent_ += evbuffer_get_length(data);
  touch();
  if (!local_reply_) {
    for (auto it = filters_.rbegin(); it != filters_.rend(); ++it) {
      (*it)->onResponseData(data, end_stream);
    }
  }
  auto* encoder = encoder_;
  if (end_stream) {
    finishBeforeEncode();
  }
  encoder->encodeData(data, end_stream);
  if (end_stream) {
    finish();
  }
}

void ActiveStream::encodeTrailers(http::HeaderMap&& trailers) {
  if (encoder_ == nullptr || done_) {
    return;
  }
  touch();
  if (grpc_) {
    if (auto gs = trailers.get("grpc-status")) {
      grpc_status_ = parseGrpcStatus(*gs).value_or(GrpcStatus::Unknown);
    }
  }
  if (!local_reply_) {
    for (auto it = filters_.rbegin(); it != filters_.rend(); ++it) {
      (*it)->onResponseTrailers(trailers);
    }
  }
  auto* encoder = encoder_;
  finishBeforeEncode();
  encoder->encodeTrailers(trailers);
  finish();
}

bool ActiveStream::fallbackReplaces(config::FallbackTrigger trigger) const {
  return route_ != nullptr && route_->route->fallback() != nullptr &&
         route_->route->fallback()->answers(trigger);
}

void ActiveStream::localReply(http::LocalReply reply) {
  if (done_) {
    return;
  }
  const http::LocalReplyInfo& info = reply.info();
  if (detail_.empty()) {
    detail_ = std::string(info.reason);
  }
  local_reply_ = true;
  ctx_.stats.localReply(route_ ? route_->route->name() : "", std::string(info.reason)).Increment();
  if (encoder_ == nullptr) {
    finish();
    return;
  }
  if (response_started_) {
    // Headers already went out: the only honest signal left is a reset.
    auto* encoder = encoder_;
    encoder_ = nullptr;
    encoder->stream().setCallbacks(nullptr);
    encoder->stream().resetStream(http::StreamResetReason::LocalReset);
    finish();
    return;
  }
  if (info.fallback_trigger != config::FallbackTrigger::None &&
      fallbackReplaces(info.fallback_trigger)) {
    sendFallback(reply);
    return;
  }
  auto headers = std::make_unique<http::ResponseHeaders>();
  if (reply.verbatim) {
    headers->status = reply.httpStatus();
    for (auto& [name, value] : reply.headers.entries()) {
      headers->headers.add(name, value);
    }
    headers->headers.set("content-length", std::to_string(reply.body.size()));
    sendWithBody(std::move(headers), reply.body);
    return;
  }
  if (grpc_) {
    // gRPC errors are trailers-only responses: HTTP 200 with grpc-status in the headers.
    headers->status = 200;
    headers->headers.add("content-type", "application/grpc");
    headers->headers.add("grpc-status", std::to_string(static_cast<int>(reply.grpcStatus())));
    headers->headers.add("grpc-message", std::string(info.reason));
    headers->headers.add("x-bulwark-reason", std::string(info.reason));
    for (auto& [name, value] : reply.headers.entries()) {
      headers->headers.add(name, value);
    }
    encodeHeaders(std::move(headers), true);
    return;
  }
  headers->status = reply.httpStatus();
  std::string body = reply.body.empty() ? fmt::format("{}\n", info.reason) : reply.body;
  headers->headers.add("content-type", "text/plain");
  headers->headers.add("content-length", std::to_string(body.size()));
  headers->headers.add("x-bulwark-reason", std::string(info.reason));
  for (auto& [name, value] : reply.headers.entries()) {
    headers->headers.add(name, value);
  }
  sendWithBody(std::move(headers), body);
}

void ActiveStream::touch() {
  if (stream_idle_timer_ && !done_) {
    stream_idle_timer_->enableTimer(idle_timeout_);
  }
}

void ActiveStream::onBodyRateCheck() {
  if (done_ || request_body_done_) {
    return;
  }
  const bool excused = paused_read_ || downstream_read_disabled_ || read_paused_in_window_;
  read_paused_in_window_ = false;
  const uint64_t received = bytes_received_ - body_window_start_bytes_;
  body_window_start_bytes_ = bytes_received_;
  if (!excused && received < min_body_bytes_per_window_) {
    ctx_.stats.protocolError(parent_.listenerName(), "request_body_too_slow").Increment();
    if (router_) {
      router_->onDownstreamReset();
    }
    localReply(http::LocalReply(http::LocalReplyKind::RequestBodyTooSlow));
    return;
  }
  body_rate_timer_->enableTimer(body_rate_window_);
}

uint64_t ActiveStream::bufferedBytes() const {
  uint64_t bytes = pending_body_ != nullptr ? evbuffer_get_length(pending_body_) : 0;
  return bytes + (router_ ? router_->bufferedBytes() : 0);
}

void ActiveStream::resetForOverload() {
  if (done_) {
    return;
  }
  if (router_) {
    router_->onDownstreamReset();
  }
  localReply(http::LocalReply(http::LocalReplyKind::OverloadReset));
}

void ActiveStream::onStreamIdleTimeout() {
  if (done_) {
    return;
  }
  route_->stats->streamIdleTimeout(response_started_);
  if (router_) {
    router_->onDownstreamReset();
  }
  localReply(http::LocalReply(http::LocalReplyKind::StreamIdleTimeout));
}

void ActiveStream::sendFallback(const http::LocalReply& reply) {
  const router::Fallback& fb = *route_->route->fallback();
  const std::string trigger(config::fallbackTriggerName(reply.info().fallback_trigger));
  ctx_.stats.fallback(route_->route->name(), trigger).Increment();
  detail_ = "fallback:" + trigger;
  if (decisions_) {
    decisions_->add("fallback",
                    {{"trigger", trigger}, {"instead_of", std::string(reply.reason())}});
  }
  auto headers = std::make_unique<http::ResponseHeaders>();
  if (grpc_) {
    headers->status = 200;
    headers->headers.add("content-type", "application/grpc");
    headers->headers.add("grpc-status", std::to_string(static_cast<int>(fb.grpc_status)));
    headers->headers.add("grpc-message",
                         fb.grpc_message.empty() ? std::string(reply.reason()) : fb.grpc_message);
    headers->headers.add("x-bulwark-degraded", "true");
    encodeHeaders(std::move(headers), true);
    return;
  }
  headers->status = fb.status;
  for (const auto& [name, value] : fb.headers.entries()) {
    headers->headers.add(name, value);
  }
  headers->headers.set("x-bulwark-degraded", "true");
  headers->headers.set("content-length", std::to_string(fb.body.size()));
  sendWithBody(std::move(headers), fb.body);
}

void ActiveStream::sendWithBody(http::ResponseHeadersPtr headers, const std::string& body) {
  bool head = request_method_ == "HEAD";
  bool no_body = head || body.empty();
  encodeHeaders(std::move(headers), no_body);
  if (!no_body) {
    evbuffer* buf = evbuffer_new();
    evbuffer_add(buf, body.data(), body.size());
    encodeData(buf, true);
    evbuffer_free(buf);
  }
}

void ActiveStream::readDisableDownstream(bool disable) {
  downstream_read_disabled_ = disable;
  read_paused_in_window_ = read_paused_in_window_ || disable;
  if (encoder_ != nullptr) {
    encoder_->stream().readDisable(disable);
  }
}

void ActiveStream::recordStats() {
  if (stats_recorded_) {
    return;
  }
  stats_recorded_ = true;
  auto elapsed = std::chrono::steady_clock::now() - start_;
  double seconds = std::chrono::duration<double>(elapsed).count();
  if (route_) {
    size_t cls = stats::codeClassIndex(status_);
    if (grpc_ && grpc_status_) {
      route_->stats->grpcStatus(std::string(grpcStatusName(*grpc_status_))).Increment();
    } else {
      route_->stats->requests[cls]->Increment();
    }
    route_->stats->duration[cls]->observe(seconds);
    if (active_gauge_) {
      route_->stats->active->Decrement();
      active_gauge_ = false;
    }
    if (tunnel_gauge_) {
      route_->stats->tunnelsActive().Decrement();
      tunnel_gauge_ = false;
    }
  }
  const auto& log = snapshot_->access_log;
  if (log && log->sampled(ctx_.rng())) {
    http::LogEntry entry;
    entry.add("start_time",
              std::chrono::duration_cast<std::chrono::milliseconds>(start_wall_.time_since_epoch())
                  .count());
    entry.add("method", request_method_);
    entry.add("path", request_path_);
    entry.add("protocol", encoder_ ? encoder_->protocol() : std::string_view());
    entry.add("response_code", status_);
    entry.add("response_code_details",
              detail_.empty() ? std::string_view("via_upstream") : std::string_view(detail_));
    entry.add("bytes_received", bytes_received_);
    entry.add("bytes_sent", bytes_sent_);
    entry.add("duration", std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count());
    entry.add("upstream_host", router_ ? std::string_view(router_->upstreamHost()) : "");
    entry.add("upstream_cluster", route_ ? std::string_view(route_->upstream->name()) : "");
    entry.add("route_name", route_ ? std::string_view(route_->route->name()) : "");
    entry.add("request_id", request_id_);
    entry.add("authority", authority_);
    entry.add("user_agent", user_agent_);
    entry.add("x_forwarded_for", xff_);
    entry.add("downstream_remote_address", parent_.connection().peerAddress());
    entry.add("attempts", router_ ? router_->attempts() : 0U);
    // Which worker served it: shows SO_REUSEPORT spreading connections over the workers.
    entry.add("worker", ctx_.worker_index);
    if (const auto* tls = parent_.connection().tls()) {
      entry.add("downstream_tls_version", tls->version());
      entry.add("requested_server_name", tls->sni());
      entry.add("downstream_peer_uri_san", tls->peerUriSan());
    }
    if (grpc_status_) {
      entry.add("grpc_status", grpcStatusName(*grpc_status_));
    }
    if (!dry_run_.empty()) {
      entry.add("dry_run", dry_run_);
    }
    if (decisions_) {
      entry.addJson("decisions", *decisions_);
    }
    if (!trace_id_.empty()) {
      entry.add("trace_id", trace_id_);
    }
    if (trace_) {
      entry.addOwned("span_id", tracing::toHex(trace_->server.span_id));
    }
    log->write(entry);
  }
}

void ActiveStream::exportServerSpan() {
  if (!trace_) {
    return;
  }
  tracing::Span span = std::move(trace_->server);
  const tracing::Tracer* tracer = trace_->tracer;
  trace_.reset();
  const std::string route = route_ ? route_->route->name() : "";
  span.name = route.empty() ? request_method_ : request_method_ + " " + route;
  span.end_unix_nanos = tracing::unixNanos(std::chrono::steady_clock::now());
  span.set("http.request.method", request_method_);
  span.set("url.path", request_path_);
  span.set("server.address", authority_);
  span.set("network.peer.address",
           std::string(network::addressIp(parent_.connection().peerAddress())));
  if (!route.empty()) {
    span.set("http.route", route);
  }
  if (status_ != 0) {
    span.set("http.response.status_code", static_cast<int64_t>(status_));
  }
  if (grpc_status_) {
    span.set("rpc.grpc.status_code", static_cast<int64_t>(*grpc_status_));
  }
  span.set("bulwark.response_code_details", detail_.empty() ? "via_upstream" : detail_);
  const bool failed =
      status_ == 0 || status_ >= 500 || (grpc_status_ && *grpc_status_ != GrpcStatus::Ok);
  span.status = failed ? tracing::Span::Status::Error : tracing::Span::Status::Unset;
  tracer->submit(std::move(span));
}

void ActiveStream::finish() {
  if (done_) {
    return;
  }
  done_ = true;
  if (stream_idle_timer_) {
    stream_idle_timer_->disableTimer();
  }
  if (body_rate_timer_) {
    body_rate_timer_->disableTimer();
  }
  recordStats();
  exportServerSpan();
  if (!filters_.empty()) {
    http::StreamInfo info;
    info.route = route_ ? route_->route->name() : "";
    info.upstream = route_ ? route_->upstream->name() : "";
    info.status = status_;
    info.grpc_status = grpc_status_;
    info.local_reply = local_reply_;
    info.response_detail = detail_.empty() ? "via_upstream" : detail_;
    info.duration = std::chrono::steady_clock::now() - start_;
    info.grpc = grpc_;
    for (auto& filter : filters_) {
      filter->onStreamComplete(info);
    }
  }
  if (encoder_ != nullptr) {
    encoder_->stream().setCallbacks(nullptr);
  }
  encoder_ = nullptr;
  parent_.onStreamDone(*this);
}

}  // namespace bulwark::server
