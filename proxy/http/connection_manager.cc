#include "proxy/http/connection_manager.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "proxy/http/grpc.h"
#include "proxy/http/http1_server_codec.h"
#if __has_include("proxy/http/http2_server_codec.h")
#include "proxy/http/http2_server_codec.h"
#define BULWARK_HAVE_HTTP2 1
#endif

namespace bulwark::http {
namespace {

constexpr std::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

std::string uuid4(std::mt19937_64& rng) {
  uint64_t a = rng();
  uint64_t b = rng();
  a = (a & 0xffffffffffff0fffULL) | 0x0000000000004000ULL;  // version 4
  b = (b & 0x3fffffffffffffffULL) | 0x8000000000000000ULL;  // variant 10
  return fmt::format("{:08x}-{:04x}-{:04x}-{:04x}-{:012x}", a >> 32, (a >> 16) & 0xffff, a & 0xffff,
                     b >> 48, b & 0xffffffffffffULL);
}

std::string peerIp(const std::string& peer) {
  if (!peer.empty() && peer[0] == '[') {
    return peer.substr(1, peer.find(']') - 1);
  }
  auto colon = peer.rfind(':');
  return colon == std::string::npos ? peer : peer.substr(0, colon);
}

}  // namespace

/**
 * One request/response exchange on a downstream connection: matches the route, owns the
 * Router (attempts), and relays the response to the codec. Thread: owning worker.
 */
class ConnectionManager::ActiveStream : public RequestDecoder,
                                        public StreamCallbacks,
                                        public router::RouterCallbacks,
                                        public FilterCallbacks {
public:
  ActiveStream(ConnectionManager& parent, ResponseEncoder& encoder)
      : parent_(parent),
        encoder_(&encoder),
        snapshot_(parent.ctx_.snapshot),
        start_(std::chrono::steady_clock::now()),
        start_wall_(std::chrono::system_clock::now()) {
    encoder.stream().setCallbacks(this);
    ++parent_.ctx_.active_streams;
    if (parent_.ctx_.global_active_streams) {
      parent_.ctx_.global_active_streams->fetch_add(1);
    }
  }
  ~ActiveStream() override {
    router_.reset();
    filters_.clear();
    if (pending_body_) {
      evbuffer_free(pending_body_);
    }
    --parent_.ctx_.active_streams;
    if (parent_.ctx_.global_active_streams) {
      parent_.ctx_.global_active_streams->fetch_sub(1);
    }
  }

  // RequestDecoder
  void decodeHeaders(RequestHeadersPtr&& headers, bool end_stream) override {
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
        headers->headers.set("x-request-id", uuid4(parent_.ctx_.rng));
      }
    }
    if (auto id = headers->headers.get("x-request-id")) {
      request_id_ = std::string(*id);
    }
    // X-Forwarded-For / -Proto (config-and-operations.md §5.4): append the peer we saw.
    std::string ip = peerIp(parent_.connection_->peerAddress());
    if (auto xff = headers->headers.getJoined("x-forwarded-for")) {
      headers->headers.set("x-forwarded-for", *xff + ", " + ip);
    } else {
      headers->headers.add("x-forwarded-for", ip);
    }
    headers->headers.set("x-forwarded-proto", headers->scheme.empty() ? "http" : headers->scheme);
    xff_ = std::string(*headers->headers.get("x-forwarded-for"));

    auto listener_it = snapshot_->listeners.find(parent_.listener_name_);
    const server::RouteEntry* entry =
        listener_it == snapshot_->listeners.end() ? nullptr : listener_it->second.match(*headers);
    if (entry == nullptr) {
      LocalReply reply;
      reply.status = 404;
      reply.reason = "route_not_found";
      reply.grpc_status = "UNIMPLEMENTED";
      localReply(std::move(reply));
      return;
    }
    route_ = entry;
    route_->stats->active->Increment();
    active_gauge_ = true;
    // timeouts.idle (Envoy's stream_idle_timeout): re-armed by every byte either way.
    idle_timeout_ = route_->route->timeouts().idle;
    if (idle_timeout_.count() > 0) {
      stream_idle_timer_ = parent_.ctx_.dispatcher.createTimer([this] { onStreamIdleTimeout(); });
      stream_idle_timer_->enableTimer(idle_timeout_);
    }
    request_headers_ = std::move(headers);
    request_end_stream_ = end_stream;
    for (const auto& make : route_->filters) {
      filters_.push_back(make());
      filters_.back()->setCallbacks(*this);
    }
    runFilters();
  }

  // Runs the request-headers stage from next_filter_; starts the router when all continue.
  void runFilters() {
    while (next_filter_ < filters_.size()) {
      auto& filter = filters_[next_filter_++];
      const FilterStatus status = filter->onRequestHeaders(*request_headers_, request_end_stream_);
      if (status == FilterStatus::StopIterationAndBuffer && !done_) {
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
      if (status != FilterStatus::Continue) {
        if (!done_ && !paused_read_) {
          // Hold the body while a filter waits (bulkhead queue); bounded by reading no further.
          paused_read_ = true;
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
    router_ = std::make_unique<router::Router>(parent_.ctx_, *this, *route_,
                                               parent_.connection_->peerAddress());
    router_->onRequestHeaders(std::move(request_headers_), request_end_stream_ && !pending_body_);
    if (pending_body_ != nullptr && !done_ && router_) {
      router_->onRequestData(pending_body_, pending_end_stream_ && !pending_trailers_);
    }
    if (pending_trailers_ && !done_ && router_) {
      router_->onRequestTrailers(std::move(*pending_trailers_));
      pending_trailers_.reset();
    }
  }

  // Gives the filter holding the request (StopIterationAndBuffer) the body buffered so far and
  // resumes the chain when it continues. At the end of the body a filter that still asks to
  // buffer has nothing more to wait for: that is taken as Continue.
  void deliverBuffered() {
    const bool end = request_end_stream_ || pending_end_stream_;
    evbuffer* empty = pending_body_ == nullptr ? evbuffer_new() : nullptr;
    const FilterStatus status = filters_[next_filter_ - 1]->onRequestData(
        pending_body_ != nullptr ? pending_body_ : empty, end);
    if (empty != nullptr) {
      evbuffer_free(empty);
    }
    if (done_ || (status == FilterStatus::StopIterationAndBuffer && !end)) {
      return;
    }
    buffering_ = false;
    if (status == FilterStatus::StopIteration) {
      return;  // answered, or continueRequest() later
    }
    runFilters();
  }

  // FilterCallbacks
  void continueRequest() override {
    if (done_ || router_ || next_filter_ == 0) {
      return;
    }
    // Never re-enter a filter from inside its own call: resume on the next loop turn.
    std::weak_ptr<bool> alive = alive_;
    parent_.ctx_.dispatcher.post([this, alive] {
      if (!alive.expired() && !done_ && !router_) {
        runFilters();
      }
    });
  }
  void sendLocalReply(LocalReply reply) override { localReply(std::move(reply)); }
  event::Dispatcher& dispatcher() override { return parent_.ctx_.dispatcher; }
  const RequestHeaders& requestHeaders() const override { return *request_headers_; }
  const std::string& downstreamAddress() const override {
    return parent_.connection_->peerAddress();
  }
  bool isGrpc() const override { return grpc_; }
  void decodeData(evbuffer* data, bool end_stream) override {
    bytes_received_ += evbuffer_get_length(data);
    touch();
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
  void decodeTrailers(HeaderMap&& trailers) override {
    touch();
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

  // StreamCallbacks (downstream)
  void onResetStream(StreamResetReason reason, std::string_view detail) override {
    encoder_ = nullptr;
    if (done_) {
      return;
    }
    if (detail_.empty()) {
      detail_ = fmt::format("downstream_reset:{}", toString(reason));
    }
    (void)detail;
    if (router_) {
      router_->onDownstreamReset();
    }
    finish();
  }
  void onAboveWriteBufferHighWatermark() override {
    touch();
    if (router_) {
      router_->onDownstreamAboveWriteBufferHighWatermark();
    }
  }
  void onBelowWriteBufferLowWatermark() override {
    touch();  // the downstream read what we buffered: the stream is not idle
    if (router_) {
      router_->onDownstreamBelowWriteBufferLowWatermark();
    }
  }

  // router::RouterCallbacks
  void encodeHeaders(ResponseHeadersPtr&& headers, bool end_stream) override {
    if (encoder_ == nullptr || done_) {
      return;
    }
    touch();
    response_started_ = true;
    status_ = headers->status;
    if (grpc_ && end_stream) {
      if (auto gs = headers->headers.get("grpc-status")) {
        grpc_status_ = http::grpc::parseStatus(*gs);
      }
    }
    if (snapshot_->spec.observability.request_id.return_in_response && !request_id_.empty()) {
      headers->headers.set("x-request-id", request_id_);
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
  void encodeData(evbuffer* data, bool end_stream) override {
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
  void encodeTrailers(HeaderMap&& trailers) override {
    if (encoder_ == nullptr || done_) {
      return;
    }
    touch();
    if (grpc_) {
      if (auto gs = trailers.get("grpc-status")) {
        grpc_status_ = http::grpc::parseStatus(*gs);
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
  void sendLocalReply(uint32_t status, std::string_view reason, std::string_view grpc_status,
                      std::string_view fallback_trigger, const HeaderMap& extra_headers) override {
    LocalReply reply;
    reply.status = status;
    reply.reason = std::string(reason);
    reply.grpc_status = std::string(grpc_status);
    reply.fallback_trigger = std::string(fallback_trigger);
    reply.headers = extra_headers;
    localReply(std::move(reply));
  }
  bool fallbackReplaces(std::string_view trigger) const override {
    if (route_ == nullptr || !route_->route->spec().policies.fallback) {
      return false;
    }
    const auto& on = route_->route->spec().policies.fallback->on;
    return std::find(on.begin(), on.end(), trigger) != on.end();
  }

  void localReply(LocalReply reply) {
    if (done_) {
      return;
    }
    if (detail_.empty()) {
      detail_ = reply.reason;
    }
    local_reply_ = true;
    parent_.ctx_.stats.localReply(route_ ? route_->route->name() : "", reply.reason).Increment();
    if (encoder_ == nullptr) {
      finish();
      return;
    }
    if (response_started_) {
      // Headers already went out: the only honest signal left is a reset.
      auto* encoder = encoder_;
      encoder_ = nullptr;
      encoder->stream().setCallbacks(nullptr);
      encoder->stream().resetStream(StreamResetReason::LocalReset);
      finish();
      return;
    }
    if (!reply.fallback_trigger.empty() && fallbackReplaces(reply.fallback_trigger)) {
      sendFallback(reply);
      return;
    }
    auto headers = std::make_unique<ResponseHeaders>();
    if (reply.verbatim) {
      headers->status = reply.status;
      for (auto& [name, value] : reply.headers.entries()) {
        headers->headers.add(name, value);
      }
      headers->headers.set("content-length", std::to_string(reply.body.size()));
      sendWithBody(std::move(headers), reply.body);
      return;
    }
    if (grpc_) {
      // gRPC errors are trailers-only responses: HTTP 200 with grpc-status in the headers.
      int code = http::grpc::statusFromName(reply.grpc_status)
                     .value_or(static_cast<int>(http::grpc::Status::Unknown));
      headers->status = 200;
      headers->headers.add("content-type", "application/grpc");
      headers->headers.add("grpc-status", std::to_string(code));
      headers->headers.add("grpc-message", reply.reason);
      headers->headers.add("x-bulwark-reason", reply.reason);
      for (auto& [name, value] : reply.headers.entries()) {
        headers->headers.add(name, value);
      }
      encodeHeaders(std::move(headers), true);
      return;
    }
    headers->status = reply.status;
    std::string body = reply.body.empty() ? fmt::format("{}\n", reply.reason) : reply.body;
    headers->headers.add("content-type", "text/plain");
    headers->headers.add("content-length", std::to_string(body.size()));
    headers->headers.add("x-bulwark-reason", reply.reason);
    for (auto& [name, value] : reply.headers.entries()) {
      headers->headers.add(name, value);
    }
    sendWithBody(std::move(headers), body);
  }

  // Re-arms timeouts.idle: bytes moved in either direction.
  void touch() {
    if (stream_idle_timer_ && !done_) {
      stream_idle_timer_->enableTimer(idle_timeout_);
    }
  }

  // timeouts.idle expired: nothing moved either way for that long (Envoy's stream_idle_timeout).
  // Before the response started the client gets 504 (gRPC: DEADLINE_EXCEEDED); after, the only
  // honest signal left is a reset (localReply() does that). The attempts are cancelled first,
  // without blaming the host (it may be a slow client or a long backoff).
  void onStreamIdleTimeout() {
    if (done_) {
      return;
    }
    route_->stats->streamIdleTimeout(response_started_);
    if (router_) {
      router_->onDownstreamReset();
    }
    LocalReply reply;
    reply.status = 504;
    reply.reason = "stream_idle_timeout";
    reply.grpc_status = "DEADLINE_EXCEEDED";
    reply.fallback_trigger = "timeout";
    localReply(std::move(reply));
  }

  // The route's configured degraded answer, marked so clients and dashboards can tell.
  void sendFallback(const LocalReply& reply) {
    const auto& fb = *route_->route->spec().policies.fallback;
    parent_.ctx_.stats.fallback(route_->route->name(), reply.fallback_trigger).Increment();
    detail_ = "fallback:" + reply.fallback_trigger;
    auto headers = std::make_unique<ResponseHeaders>();
    if (grpc_) {
      int code = http::grpc::statusFromName(fb.grpc_status.empty() ? "UNAVAILABLE" : fb.grpc_status)
                     .value_or(static_cast<int>(http::grpc::Status::Unavailable));
      headers->status = 200;
      headers->headers.add("content-type", "application/grpc");
      headers->headers.add("grpc-status", std::to_string(code));
      headers->headers.add("grpc-message",
                           fb.grpc_message.empty() ? reply.reason : fb.grpc_message);
      headers->headers.add("x-bulwark-degraded", "true");
      encodeHeaders(std::move(headers), true);
      return;
    }
    headers->status = fb.status;
    for (const auto& [name, value] : fb.headers) {
      std::string lower = name;
      toLowerInPlace(lower);
      if (lower != "content-length") {
        headers->headers.add(lower, value);
      }
    }
    headers->headers.set("x-bulwark-degraded", "true");
    headers->headers.set("content-length", std::to_string(fb.body.size()));
    sendWithBody(std::move(headers), fb.body);
  }

  void sendWithBody(ResponseHeadersPtr headers, const std::string& body) {
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
  void readDisableDownstream(bool disable) override {
    if (encoder_ != nullptr) {
      encoder_->stream().readDisable(disable);
    }
  }
  bool downstreamResponseStarted() const override { return response_started_; }

private:
  // Metrics and the access log are recorded before the final encode call, because an HTTP/1
  // codec may close the connection (and with it this stream) inside that call.
  void finishBeforeEncode() { recordStats(); }

  void recordStats() {
    if (stats_recorded_) {
      return;
    }
    stats_recorded_ = true;
    auto elapsed = std::chrono::steady_clock::now() - start_;
    double seconds = std::chrono::duration<double>(elapsed).count();
    if (route_) {
      size_t cls = stats::codeClassIndex(status_);
      if (grpc_ && grpc_status_) {
        route_->stats->grpcStatus(std::string(http::grpc::statusName(*grpc_status_))).Increment();
      } else {
        route_->stats->requests[cls]->Increment();
      }
      route_->stats->duration[cls]->Observe(seconds);
      if (active_gauge_) {
        route_->stats->active->Decrement();
        active_gauge_ = false;
      }
    }
    auto& log = parent_.ctx_.access_log;
    if (log && log->sampled(parent_.ctx_.rng())) {
      nlohmann::json entry;
      auto wall =
          std::chrono::duration_cast<std::chrono::milliseconds>(start_wall_.time_since_epoch())
              .count();
      entry["start_time"] = wall;
      entry["method"] = request_method_;
      entry["path"] = request_path_;
      entry["protocol"] = encoder_ ? std::string(encoder_->protocol()) : std::string();
      entry["response_code"] = status_;
      entry["response_code_details"] = detail_.empty() ? "via_upstream" : detail_;
      entry["bytes_received"] = bytes_received_;
      entry["bytes_sent"] = bytes_sent_;
      entry["duration"] = std::chrono::duration_cast<std::chrono::milliseconds>(elapsed).count();
      entry["upstream_host"] = router_ ? router_->upstreamHost() : "";
      entry["upstream_cluster"] = route_ ? route_->upstream->name() : "";
      entry["route_name"] = route_ ? route_->route->name() : "";
      entry["request_id"] = request_id_;
      entry["authority"] = authority_;
      entry["user_agent"] = user_agent_;
      entry["x_forwarded_for"] = xff_;
      entry["downstream_remote_address"] = parent_.connection_->peerAddress();
      entry["attempts"] = router_ ? router_->attempts() : 0;
      if (grpc_status_) {
        entry["grpc_status"] = std::string(http::grpc::statusName(*grpc_status_));
      }
      log->write(entry);
    }
  }

  void finish() {
    if (done_) {
      return;
    }
    done_ = true;
    if (stream_idle_timer_) {
      stream_idle_timer_->disableTimer();
    }
    recordStats();
    if (!filters_.empty()) {
      StreamInfo info;
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

  ConnectionManager& parent_;
  ResponseEncoder* encoder_;
  server::ConfigSnapshotConstSharedPtr snapshot_;  // RCU: this request finishes on its config
  const server::RouteEntry* route_ = nullptr;
  std::unique_ptr<router::Router> router_;
  std::chrono::steady_clock::time_point start_;
  std::chrono::system_clock::time_point start_wall_;
  std::string request_method_, request_path_, authority_, user_agent_, request_id_, xff_, detail_;
  bool grpc_ = false;
  std::optional<int> grpc_status_;
  uint32_t status_ = 0;
  uint64_t bytes_received_ = 0;
  uint64_t bytes_sent_ = 0;
  bool response_started_ = false;
  bool done_ = false;
  bool stats_recorded_ = false;
  bool active_gauge_ = false;
  bool local_reply_ = false;
  event::TimerPtr stream_idle_timer_;  // timeouts.idle; none when 0
  std::chrono::milliseconds idle_timeout_{0};
  // Filter chain state.
  std::vector<HttpFilterPtr> filters_;
  size_t next_filter_ = 0;
  RequestHeadersPtr request_headers_;  // held until the router starts
  bool request_end_stream_ = false;
  evbuffer* pending_body_ = nullptr;  // body received while a filter held the request
  bool pending_end_stream_ = false;
  std::optional<HeaderMap> pending_trailers_;
  bool paused_read_ = false;
  bool buffering_ = false;  // filters_[next_filter_ - 1] holds the request and reads its body
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

ConnectionManager::ConnectionManager(server::WorkerContext& ctx,
                                     network::ConnectionPtr&& connection, std::string listener_name,
                                     CloseCallback on_close)
    : ctx_(ctx),
      connection_(std::move(connection)),
      listener_name_(std::move(listener_name)),
      on_close_(std::move(on_close)),
      snapshot_(ctx.snapshot) {
  connection_->setCallbacks(this);
  idle_timer_ = ctx_.dispatcher.createTimer([this] { onIdleTimeout(); });
  header_timer_ = ctx_.dispatcher.createTimer([this] {
    ctx_.stats.protocolError(listener_name_, "header_read_timeout").Increment();
    closeConnection(network::Connection::CloseType::NoFlush);
  });
  cx_active_ = &ctx_.stats.downstreamConnectionsActive(listener_name_);
  cx_active_->Increment();
  ctx_.stats.downstreamConnectionsTotal(listener_name_).Increment();
  armTimers();
}

ConnectionManager::~ConnectionManager() {
  // Streams first: their routers reference this connection's worker state.
  streams_.clear();
  codec_.reset();
  cx_active_->Decrement();
}

const server::ListenerConfig* ConnectionManager::listenerConfig() const {
  auto it = snapshot_->listeners.find(listener_name_);
  return it == snapshot_->listeners.end() ? nullptr : &it->second;
}

bool ConnectionManager::createCodec(evbuffer* input) {
  const auto* listener = listenerConfig();
  if (listener == nullptr) {
    return false;
  }
  const auto& limits_spec = listener->spec.limits;
  ServerCodecLimits limits;
  limits.max_request_headers_bytes = limits_spec.max_request_headers_bytes;
  limits.max_headers_count = limits_spec.max_headers_count;
  limits.max_request_body_bytes = limits_spec.max_request_body_bytes;
  limits.max_concurrent_streams = limits_spec.max_concurrent_streams;
  switch (listener->spec.protocol) {
    case config::ListenerProtocol::Http1: is_http2_ = false; break;
    case config::ListenerProtocol::H2c: is_http2_ = true; break;
    case config::ListenerProtocol::Auto: {
      // Sniff the HTTP/2 connection preface; wait until enough bytes decide it.
      size_t len = evbuffer_get_length(input);
      size_t check = std::min(len, kHttp2Preface.size());
      std::string head(check, '\0');
      evbuffer_copyout(input, head.data(), check);
      if (head != kHttp2Preface.substr(0, check)) {
        is_http2_ = false;
      } else if (check < kHttp2Preface.size()) {
        return false;  // Need more bytes.
      } else {
        is_http2_ = true;
      }
      break;
    }
  }
  if (is_http2_) {
#ifdef BULWARK_HAVE_HTTP2
    codec_ = std::make_unique<Http2ServerConnection>(*connection_, *this, limits);
#else
    return false;
#endif
  } else {
    codec_ = std::make_unique<Http1ServerConnection>(*connection_, *this, limits);
  }
  if (draining_) {
    codec_->shutdownNotice();
  }
  return true;
}

void ConnectionManager::onData(evbuffer* input) {
  if (closed_) {
    return;
  }
  if (!codec_) {
    if (!createCodec(input)) {
      if (listenerConfig() == nullptr) {
        closeConnection(network::Connection::CloseType::NoFlush);
      }
      return;
    }
    if (is_http2_) {
      // The preface arrived: an HTTP/2 connection without a stream is idle, not slow (gRPC
      // channels connect ahead of their first call); idleTimeout governs it from now on.
      header_timer_->disableTimer();
    }
  }
  if (streams_.empty() && !is_http2_ && !header_timer_->enabled()) {
    // Bytes of a new request started arriving: the whole header block must follow in time.
    idle_timer_->disableTimer();
    header_timer_->enableTimer(listenerConfig()->spec.limits.header_read_timeout);
  }
  auto status = codec_->dispatch(input);
  if (!status.isOk()) {
    // The codec already answered (400/413/431) or sent GOAWAY; it closes after flushing.
    if (!connection_->closing()) {
      closeConnection(network::Connection::CloseType::FlushWrite);
    }
    return;
  }
  if (codec_->wantsClose()) {
    closeConnection(network::Connection::CloseType::FlushWrite);
  }
}

void ConnectionManager::onEvent(network::ConnectionEvent event) {
  if (event == network::ConnectionEvent::Connected) {
    return;
  }
  if (closed_) {
    return;
  }
  closed_ = true;
  idle_timer_->disableTimer();
  header_timer_->disableTimer();
  if (codec_) {
    codec_->onConnectionClosed();
  }
  // Streams the codec did not reset (none should remain) go with the connection.
  auto on_close = on_close_;
  on_close(*this);
}

void ConnectionManager::onAboveWriteBufferHighWatermark() {
  if (codec_) {
    codec_->onUnderlyingConnectionAboveWriteBufferHighWatermark();
  }
}

void ConnectionManager::onBelowWriteBufferLowWatermark() {
  if (codec_) {
    codec_->onUnderlyingConnectionBelowWriteBufferLowWatermark();
  }
}

RequestDecoder& ConnectionManager::newStream(ResponseEncoder& encoder) {
  idle_timer_->disableTimer();
  header_timer_->disableTimer();
  streams_.push_back(std::make_unique<ActiveStream>(*this, encoder));
  return *streams_.back();
}

void ConnectionManager::onProtocolError(std::string_view details) {
  ctx_.stats.protocolError(listener_name_, std::string(details)).Increment();
}

void ConnectionManager::onStreamDone(ActiveStream& stream) {
  // Once closed, on_close_ has queued this manager for deferred deletion: a stream queued after
  // it would be destroyed after it, and ~ActiveStream reaches parent_ (a stream reset after its
  // response started closes an HTTP/1 connection before it finishes). It stays in streams_, which
  // ~ConnectionManager destroys first.
  if (closed_) {
    return;
  }
  for (auto it = streams_.begin(); it != streams_.end(); ++it) {
    if (it->get() == &stream) {
      struct Holder : event::DeferredDeletable {
        std::unique_ptr<ActiveStream> stream;
      };
      auto holder = std::make_unique<Holder>();
      holder->stream = std::move(*it);
      streams_.erase(it);
      ctx_.dispatcher.deferredDelete(std::move(holder));
      break;
    }
  }
  if (streams_.empty()) {
    if (draining_ && !is_http2_) {
      closeConnection(network::Connection::CloseType::FlushWrite);
      return;
    }
    if (codec_ && codec_->wantsClose()) {
      closeConnection(network::Connection::CloseType::FlushWrite);
      return;
    }
    armTimers();
  }
}

void ConnectionManager::armTimers() {
  const auto* listener = listenerConfig();
  if (listener == nullptr) {
    return;
  }
  if (listener->spec.limits.idle_timeout.count() > 0) {
    idle_timer_->enableTimer(listener->spec.limits.idle_timeout);
  }
  if (!is_http2_ && !codec_) {
    // A new connection must send its first request headers in time (slowloris).
    header_timer_->enableTimer(listener->spec.limits.header_read_timeout);
  }
}

void ConnectionManager::onIdleTimeout() {
  if (!streams_.empty()) {
    return;
  }
  if (codec_ && is_http2_) {
    codec_->shutdownNotice();
  }
  closeConnection(network::Connection::CloseType::FlushWrite);
}

void ConnectionManager::shutdownNotice() {
  if (draining_) {
    return;
  }
  draining_ = true;
  if (codec_) {
    codec_->shutdownNotice();
  }
  if (streams_.empty()) {
    closeConnection(network::Connection::CloseType::FlushWrite);
  }
}

void ConnectionManager::closeConnection(network::Connection::CloseType type) {
  if (closed_) {
    return;
  }
  connection_->close(type);
}

}  // namespace bulwark::http
