#include "proxy/upstream/health_checker.h"

#include <algorithm>
#include <functional>

#include <spdlog/spdlog.h>

#include "proxy/http/codec.h"
#include "proxy/http/http1_client_codec.h"
#include "proxy/http/http2_client_codec.h"
#include "proxy/network/connection.h"

namespace bulwark::upstream {

std::string_view healthCheckResultLabel(HealthCheckResult result) {
  switch (result) {
    case HealthCheckResult::Success: return "success";
    case HealthCheckResult::Failure: return "failure";
    case HealthCheckResult::Timeout: return "timeout";
  }
  return "failure";
}

/**
 * One check in flight: its connection, codec and request stream. Reports once through `done`,
 * then is destroyed deferred (its callbacks may be on the stack).
 * Thread: main.
 */
class HealthChecker::Probe : public event::DeferredDeletable,
                             public network::ConnectionCallbacks,
                             public http::ClientConnectionCallbacks,
                             public http::ResponseDecoder,
                             public http::StreamCallbacks {
public:
  using Done = std::function<void(HealthCheckResult, std::string_view detail)>;

  Probe(event::Dispatcher& dispatcher, const std::string& address,
        const config::HealthCheckSpec& spec, config::UpstreamProtocol protocol, Done done)
      : spec_(spec), protocol_(protocol), done_(std::move(done)) {
    connection_ = network::Connection::connect(dispatcher, address, spec.timeout);
    connection_->setCallbacks(this);
    authority_ = address;
  }
  ~Probe() override {
    codec_.reset();
    if (connection_) {
      connection_->setCallbacks(nullptr);
    }
  }

  /** Stops reporting and closes the connection. */
  void abandon() {
    finished_ = true;
    if (connection_) {
      connection_->setCallbacks(nullptr);
      connection_->close(network::Connection::CloseType::NoFlush);
    }
  }

  // network::ConnectionCallbacks
  void onData(evbuffer* input) override {
    if (finished_ || !codec_) {
      return;
    }
    auto status = codec_->dispatch(input);
    if (!status.isOk()) {
      finish(HealthCheckResult::Failure, status.message());
    }
  }
  void onEvent(network::ConnectionEvent event) override {
    if (finished_) {
      return;
    }
    switch (event) {
      case network::ConnectionEvent::Connected: onConnected(); return;
      case network::ConnectionEvent::ConnectTimeout:
        finish(HealthCheckResult::Timeout, "connect timeout");
        return;
      case network::ConnectionEvent::ConnectFailure:
        finish(HealthCheckResult::Failure, "connect failure");
        return;
      case network::ConnectionEvent::TlsFailure:
        finish(HealthCheckResult::Failure, "TLS handshake failure");
        return;
      case network::ConnectionEvent::RemoteClose:
      case network::ConnectionEvent::LocalClose:
        finish(HealthCheckResult::Failure, "connection closed");
        return;
    }
  }

  // http::ClientConnectionCallbacks
  void onGoAway() override {}
  void onStreamClosed() override {}

  // http::ResponseDecoder
  void decode1xxHeaders(http::ResponseHeadersPtr&&) override {}
  void decodeHeaders(http::ResponseHeadersPtr&& headers, bool end_stream) override {
    if (finished_) {
      return;
    }
    if (spec_.kind == config::HealthCheckSpec::Kind::Http) {
      bool expected = std::find(spec_.expected_statuses.begin(), spec_.expected_statuses.end(),
                                headers->status) != spec_.expected_statuses.end();
      finish(expected ? HealthCheckResult::Success : HealthCheckResult::Failure,
             expected ? "" : "status " + std::to_string(headers->status));
      return;
    }
    if (headers->status != 200) {
      finish(HealthCheckResult::Failure, "status " + std::to_string(headers->status));
      return;
    }
    if (auto grpc_status = headers->headers.get("grpc-status")) {
      onGrpcStatus(*grpc_status);  // trailers-only answer
      return;
    }
    if (end_stream) {
      finish(HealthCheckResult::Failure, "no grpc-status");
    }
  }
  void decodeData(evbuffer* data, bool end_stream) override {
    size_t len = evbuffer_get_length(data);
    if (!finished_ && body_.size() + len <= kMaxBody) {
      body_.resize(body_.size() + len);
      evbuffer_copyout(data, body_.data() + body_.size() - len, len);
    }
    evbuffer_drain(data, len);
    if (end_stream && !finished_) {
      finish(HealthCheckResult::Failure, "no grpc-status");
    }
  }
  void decodeTrailers(http::HeaderMap&& trailers) override {
    if (finished_) {
      return;
    }
    auto grpc_status = trailers.get("grpc-status");
    if (!grpc_status) {
      finish(HealthCheckResult::Failure, "no grpc-status");
      return;
    }
    onGrpcStatus(*grpc_status);
  }

  // http::StreamCallbacks
  void onResetStream(http::StreamResetReason reason, std::string_view detail) override {
    if (finished_) {
      return;
    }
    finish(HealthCheckResult::Failure,
           std::string(http::toString(reason)) + " " + std::string(detail));
  }

private:
  static constexpr size_t kMaxBody = 4096;

  void onConnected() {
    if (spec_.kind == config::HealthCheckSpec::Kind::Tcp) {
      finish(HealthCheckResult::Success, "");
      return;
    }
    const bool grpc = spec_.kind == config::HealthCheckSpec::Kind::Grpc;
    if (grpc || protocol_ != config::UpstreamProtocol::Http1) {
      http::Http2ClientSettings settings;
      settings.max_concurrent_streams = 1;
      codec_ = std::make_unique<http::Http2ClientConnection>(*connection_, *this, settings);
    } else {
      codec_ = std::make_unique<http::Http1ClientConnection>(*connection_, *this);
    }
    auto& encoder = codec_->newStream(*this);
    encoder.stream().setCallbacks(this);
    http::RequestHeaders request;
    request.scheme = "http";
    request.authority = authority_;
    if (grpc) {
      request.method = "POST";
      request.path = "/grpc.health.v1.Health/Check";
      request.headers.add("content-type", "application/grpc");
      request.headers.add("te", "trailers");
      request.headers.add("user-agent", "bulwark-health-check");
      encoder.encodeHeaders(request, false);
      if (finished_) {
        return;
      }
      std::string body = grpc_health::encodeCheckRequest(spec_.grpc_service);
      evbuffer* buf = evbuffer_new();
      evbuffer_add(buf, body.data(), body.size());
      encoder.encodeData(buf, true);
      evbuffer_free(buf);
    } else {
      request.method = "GET";
      request.path = spec_.http_path;
      request.headers.add("user-agent", "bulwark-health-check");
      encoder.encodeHeaders(request, true);
    }
  }

  void onGrpcStatus(std::string_view grpc_status) {
    if (parseGrpcStatus(grpc_status) != GrpcStatus::Ok) {
      finish(HealthCheckResult::Failure, "grpc-status " + std::string(grpc_status));
      return;
    }
    auto status = grpc_health::decodeCheckResponse(body_);
    if (!status) {
      finish(HealthCheckResult::Failure, "malformed HealthCheckResponse");
    } else if (*status != grpc_health::kServing) {
      finish(HealthCheckResult::Failure, "serving status " + std::to_string(*status));
    } else {
      finish(HealthCheckResult::Success, "");
    }
  }

  void finish(HealthCheckResult result, std::string_view detail) {
    if (finished_) {
      return;
    }
    finished_ = true;
    done_(result, detail);  // may destroy the session's reference to this probe (deferred)
  }

  const config::HealthCheckSpec& spec_;
  config::UpstreamProtocol protocol_;
  Done done_;
  std::string authority_;
  network::ConnectionPtr connection_;
  http::ClientConnectionPtr codec_;
  std::string body_;
  bool finished_ = false;
};

/**
 * The checks of one host: an interval timer, a timeout timer and at most one probe.
 * Thread: main.
 */
class HealthChecker::Session {
public:
  Session(HealthChecker& parent, HostSharedPtr host) : parent_(parent), host_(std::move(host)) {
    interval_timer_ = parent_.dispatcher_.createTimer([this] { startCheck(); });
    timeout_timer_ = parent_.dispatcher_.createTimer(
        [this] { onResult(HealthCheckResult::Timeout, "timeout"); });
    // The first check soon, spread over a tenth of the interval.
    auto first =
        std::chrono::milliseconds(parent_.rng_() % static_cast<uint64_t>(std::max<int64_t>(
                                                       1, parent_.spec_.interval.count() / 10)));
    interval_timer_->enableTimer(first);
  }
  ~Session() { dropProbe(); }

private:
  void startCheck() {
    dropProbe();
    probe_ = std::make_unique<Probe>(
        parent_.dispatcher_, host_->address, parent_.spec_, parent_.upstream_->spec().protocol,
        [this](HealthCheckResult r, std::string_view d) { onResult(r, d); });
    timeout_timer_->enableTimer(parent_.spec_.timeout);
  }

  void dropProbe() {
    if (!probe_) {
      return;
    }
    probe_->abandon();
    parent_.dispatcher_.deferredDelete(std::move(probe_));
  }

  void onResult(HealthCheckResult result, std::string_view detail) {
    timeout_timer_->disableTimer();
    dropProbe();
    const auto& spec = parent_.spec_;
    auto& stats = parent_.upstream_->stats();
    if (stats) {
      stats->healthCheck(healthCheckResultLabel(result));
    }
    auto& state = *host_->lb_state;
    if (result == HealthCheckResult::Success) {
      host_->health_check_failures_in_row.store(0, std::memory_order_relaxed);
      uint32_t ok =
          host_->health_check_successes_in_row.fetch_add(1, std::memory_order_relaxed) + 1;
      if (!state.healthy.load(std::memory_order_relaxed) &&
          ok >= std::max<uint32_t>(1, spec.healthy_threshold)) {
        state.healthy.store(true, std::memory_order_relaxed);
        spdlog::info("upstream {}: host {} healthy again", parent_.upstream_->name(),
                     host_->address);
      }
      // Envoy's successful_active_health_check_uneject_host (default true): a host that passes
      // its health checks is not kept out by an outlier ejection.
      if (state.healthy.load(std::memory_order_relaxed)) {
        parent_.upstream_->onActiveHealthCheckSuccess(*host_, std::chrono::steady_clock::now());
      }
    } else {
      host_->health_check_successes_in_row.store(0, std::memory_order_relaxed);
      uint32_t bad =
          host_->health_check_failures_in_row.fetch_add(1, std::memory_order_relaxed) + 1;
      if (state.healthy.load(std::memory_order_relaxed) &&
          bad >= std::max<uint32_t>(1, spec.unhealthy_threshold)) {
        state.healthy.store(false, std::memory_order_relaxed);
        spdlog::warn("upstream {}: host {} unhealthy ({})", parent_.upstream_->name(),
                     host_->address, detail);
      }
    }
    interval_timer_->enableTimer(parent_.jittered(spec.interval));
  }

  HealthChecker& parent_;
  HostSharedPtr host_;
  event::TimerPtr interval_timer_;
  event::TimerPtr timeout_timer_;
  std::unique_ptr<Probe> probe_;
};

HealthChecker::HealthChecker(event::Dispatcher& dispatcher, UpstreamSharedPtr upstream)
    : dispatcher_(dispatcher),
      upstream_(std::move(upstream)),
      spec_(*upstream_->spec().health_check),
      rng_(std::random_device{}()) {}

HealthChecker::~HealthChecker() = default;

std::chrono::milliseconds HealthChecker::jittered(std::chrono::milliseconds base) {
  // ± 10 % (Envoy interval_jitter_percent), never below 1 ms.
  int64_t span = base.count() / 5;
  int64_t offset =
      span > 0 ? static_cast<int64_t>(rng_() % static_cast<uint64_t>(span + 1)) - span / 2 : 0;
  return std::chrono::milliseconds(std::max<int64_t>(1, base.count() + offset));
}

void HealthChecker::syncHosts() {
  auto set = upstream_->hosts();
  std::map<const Host*, std::unique_ptr<Session>> next;
  if (set) {
    for (const auto& h : set->hosts) {
      auto it = sessions_.find(h.get());
      if (it != sessions_.end()) {
        next.emplace(h.get(), std::move(it->second));
      } else {
        next.emplace(h.get(), std::make_unique<Session>(*this, h));
      }
    }
  }
  sessions_ = std::move(next);  // sessions of removed hosts stop here
}

}  // namespace bulwark::upstream
