#include "proxy/router/upstream_request.h"

#include <string>

#include <event2/buffer.h>

#include "proxy/network/buffer.h"

namespace bulwark::router {
namespace {

policies::LocalFailure toLocalFailure(http::StreamResetReason reason) {
  switch (reason) {
    case http::StreamResetReason::ConnectionFailure:
    case http::StreamResetReason::TlsFailure: return policies::LocalFailure::ConnectFailure;
    case http::StreamResetReason::ConnectTimeout: return policies::LocalFailure::ConnectTimeout;
    case http::StreamResetReason::RefusedStream: return policies::LocalFailure::RefusedStream;
    case http::StreamResetReason::GoAwayBeforeProcessing: return policies::LocalFailure::GoAway;
    case http::StreamResetReason::ProtocolError: return policies::LocalFailure::ProtocolError;
    default: return policies::LocalFailure::Reset;
  }
}

bool hasPushback(const http::HeaderMap& headers) {
  return headers.get("retry-after").has_value() ||
         headers.get("grpc-retry-pushback-ms").has_value();
}

}  // namespace

UpstreamRequest::UpstreamRequest(UpstreamRequestCallbacks& callbacks, event::Dispatcher& dispatcher,
                                 const RouteEntry& route, AttemptKind kind, uint32_t number,
                                 upstream::HostSharedPtr host, upstream::AttemptPermitPtr permit)
    : callbacks_(callbacks),
      dispatcher_(dispatcher),
      route_(route),
      kind_(kind),
      number_(number),
      host_(std::move(host)),
      permit_(std::move(permit)),
      start_(std::chrono::steady_clock::now()) {
  permit_->countOn(host_, start_);
}

UpstreamRequest::~UpstreamRequest() { cancel(); }

size_t UpstreamRequest::bufferedBytes() const { return pending_.length(); }

void UpstreamRequest::start(upstream::StreamPool& pool, std::chrono::nanoseconds per_try) {
  if (per_try.count() > 0) {
    per_try_timer_ = dispatcher_.createTimer([this] { onPerTryTimeout(); });
    per_try_timer_->enableTimer(std::chrono::duration_cast<std::chrono::microseconds>(per_try));
  }
  // onPoolReady/onPoolFailure may run before newStream returns.
  pool_handle_ = pool.newStream(*this, *this);
}

void UpstreamRequest::sendBody(evbuffer* data, bool end_stream, bool copy) {
  if (finished_) {
    return;
  }
  if (encoder_ != nullptr) {
    if (copy) {
      evbuffer* tmp = evbuffer_new();
      network::copyBuffer(data, tmp);
      encoder_->encodeData(tmp, end_stream);
      evbuffer_free(tmp);
    } else {
      encoder_->encodeData(data, end_stream);
    }
    return;
  }
  if (evbuffer_get_length(data) == 0) {
    // nothing to keep (an end of stream)
  } else if (copy) {
    network::copyBuffer(data, pending_.get());
  } else {
    evbuffer_add_buffer(pending_.get(), data);
  }
  pending_end_ = pending_end_ || end_stream;
}

void UpstreamRequest::sendTrailers(const http::HeaderMap& trailers) {
  if (finished_) {
    return;
  }
  if (encoder_ != nullptr) {
    encoder_->encodeTrailers(trailers);
  } else {
    pending_trailers_ = trailers;
    pending_end_ = true;
  }
}

void UpstreamRequest::cancel() {
  if (per_try_timer_) {
    per_try_timer_->disableTimer();
  }
  if (pool_handle_ != nullptr) {
    pool_handle_->cancel();
    pool_handle_ = nullptr;
  }
  if (encoder_ != nullptr) {
    auto* encoder = encoder_;
    encoder_ = nullptr;
    encoder->stream().setCallbacks(nullptr);
    if (!complete_) {
      encoder->stream().resetStream(http::StreamResetReason::LocalReset);
    }
  }
  finished_ = true;
}

void UpstreamRequest::readDisable(bool disable) {
  if (encoder_ != nullptr && !complete_) {
    encoder_->stream().readDisable(disable);
  }
}

policies::AttemptResult UpstreamRequest::responseResult() const {
  policies::AttemptResult r = result(response_status_, nullptr);
  r.grpc_status = response_grpc_status_;
  r.pushback = response_pushback_;
  return r;
}

policies::AttemptResult UpstreamRequest::result(uint32_t status,
                                                const http::ResponseHeaders* headers) const {
  policies::AttemptResult r;
  r.http_status = status;
  r.request_sent = request_sent_;
  r.grpc = callbacks_.isGrpc();
  if (headers != nullptr) {
    if (auto gs = headers->headers.get("grpc-status")) {
      r.grpc_status = bulwark::parseGrpcStatus(*gs);
    }
    r.pushback = hasPushback(headers->headers);
  }
  return r;
}

void UpstreamRequest::reportCancelled() {
  if (permit_) {
    const auto now = std::chrono::steady_clock::now();
    route_.upstream->onAttemptCancelled(*host_, now - start_, std::move(permit_), now);
  }
}

void UpstreamRequest::report(const policies::AttemptResult& result) {
  if (!permit_) {
    return;
  }
  auto now = std::chrono::steady_clock::now();
  auto latency = now - start_;
  route_.stats->attempt_duration->observe(std::chrono::duration<double>(latency).count());
  route_.upstream->onAttemptComplete(*host_, result, latency, std::move(permit_), now);
}

void UpstreamRequest::onPoolReady(http::RequestEncoder& encoder, const upstream::Host&) {
  pool_handle_ = nullptr;
  encoder_ = &encoder;
  encoder_->stream().setCallbacks(this);
  const http::RequestHeaders& headers = callbacks_.headersForAttempt(number_);
  const bool has_body = pending_.length() > 0 || pending_trailers_.has_value();
  const bool end_now = pending_end_ && !has_body;
  request_sent_ = true;
  encoder_->encodeHeaders(headers, end_now);
  if (encoder_ == nullptr || end_now) {
    return;  // reset inline, or nothing more to send
  }
  if (pending_.length() > 0 || (pending_end_ && !pending_trailers_)) {
    encoder_->encodeData(pending_.getOrEmpty(), pending_end_ && !pending_trailers_);
  }
  if (encoder_ != nullptr && pending_trailers_) {
    encoder_->encodeTrailers(*pending_trailers_);
    pending_trailers_.reset();
  }
}

void UpstreamRequest::onPoolFailure(upstream::PoolFailureReason reason, std::string_view) {
  pool_handle_ = nullptr;
  finished_ = true;
  if (per_try_timer_) {
    per_try_timer_->disableTimer();
  }
  policies::AttemptResult r = result(0, nullptr);
  switch (reason) {
    case upstream::PoolFailureReason::Overflow:
      r.local_failure = policies::LocalFailure::ConnectFailure;
      callbacks_.onAttemptFailed(*this, r, http::LocalReplyKind::UpstreamOverflow);
      return;
    case upstream::PoolFailureReason::ConnectTimeout:
      r.local_failure = policies::LocalFailure::ConnectTimeout;
      callbacks_.onAttemptFailed(*this, r, http::LocalReplyKind::UpstreamConnectTimeout);
      return;
    case upstream::PoolFailureReason::TlsFailure:
      r.local_failure = policies::LocalFailure::ConnectFailure;
      callbacks_.onAttemptFailed(*this, r, http::LocalReplyKind::UpstreamTlsError);
      return;
    default:
      r.local_failure = policies::LocalFailure::ConnectFailure;
      callbacks_.onAttemptFailed(*this, r, http::LocalReplyKind::UpstreamConnectFailure);
      return;
  }
}

void UpstreamRequest::decode1xxHeaders(http::ResponseHeadersPtr&&) {
  // 100 Continue is not forwarded: the downstream codec answered the client's Expect itself.
}

void UpstreamRequest::decodeHeaders(http::ResponseHeadersPtr&& headers, bool end_stream) {
  headers_received_ = true;
  if (end_stream) {
    streamEnded();
  }
  response_status_ = headers->status;
  if (auto gs = headers->headers.get("grpc-status")) {
    response_grpc_status_ = bulwark::parseGrpcStatus(*gs);
  }
  response_pushback_ = hasPushback(headers->headers);
  if (per_try_timer_) {
    per_try_timer_->disableTimer();
  }
  callbacks_.onAttemptHeaders(*this, std::move(headers), end_stream);
}

void UpstreamRequest::decodeData(evbuffer* data, bool end_stream) {
  if (end_stream) {
    streamEnded();
  }
  callbacks_.onAttemptData(*this, data, end_stream);
}

void UpstreamRequest::decodeTrailers(http::HeaderMap&& trailers) {
  streamEnded();
  callbacks_.onAttemptTrailers(*this, std::move(trailers));
}

void UpstreamRequest::onResetStream(http::StreamResetReason reason, std::string_view) {
  encoder_ = nullptr;
  finished_ = true;
  if (per_try_timer_) {
    per_try_timer_->disableTimer();
  }
  policies::AttemptResult r = result(0, nullptr);
  r.local_failure = toLocalFailure(reason);
  if (reason == http::StreamResetReason::ConnectionFailure && !request_sent_) {
    r.local_failure = policies::LocalFailure::ConnectFailure;
  }
  auto kind = http::LocalReplyKind::UpstreamReset;
  switch (r.local_failure) {
    case policies::LocalFailure::ConnectFailure:
      kind = http::LocalReplyKind::UpstreamConnectFailure;
      break;
    case policies::LocalFailure::ConnectTimeout:
      kind = http::LocalReplyKind::UpstreamConnectTimeout;
      break;
    case policies::LocalFailure::RefusedStream:
    case policies::LocalFailure::GoAway: kind = http::LocalReplyKind::UpstreamRefusedStream; break;
    case policies::LocalFailure::ProtocolError:
      kind = http::LocalReplyKind::UpstreamProtocolError;
      break;
    default: break;
  }
  if (reason == http::StreamResetReason::TlsFailure) {
    kind = http::LocalReplyKind::UpstreamTlsError;
  }
  callbacks_.onAttemptFailed(*this, r, kind);
}

void UpstreamRequest::streamEnded() {
  complete_ = true;
  finished_ = true;
  if (per_try_timer_) {
    per_try_timer_->disableTimer();
  }
  if (encoder_ != nullptr) {
    encoder_->stream().setCallbacks(nullptr);
    encoder_ = nullptr;
  }
}

void UpstreamRequest::onPerTryTimeout() {
  if (headers_received_ || finished_) {
    return;
  }
  auto r = result(0, nullptr);
  r.local_failure = policies::LocalFailure::PerTryTimeout;
  cancel();
  callbacks_.onAttemptFailed(*this, r, http::LocalReplyKind::UpstreamPerTryTimeout);
}

}  // namespace bulwark::router
