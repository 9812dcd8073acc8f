#include "proxy/server/connection_manager.h"

#include <algorithm>
#include <cstring>

#include <fmt/format.h>

#include "common/assert.h"
#include "proxy/http/grpc.h"
#include "proxy/http/http1_server_codec.h"
#include "proxy/http/http2_server_codec.h"
#include "proxy/server/active_stream.h"

namespace bulwark::server {
namespace {

constexpr std::string_view kHttp2Preface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

}  // namespace

ConnectionManager::ConnectionManager(WorkerContext& ctx, network::ConnectionPtr&& connection,
                                     std::string listener_name, CloseCallback on_close)
    : ctx_(ctx),
      connection_(std::move(connection)),
      listener_name_(std::move(listener_name)),
      on_close_(std::move(on_close)),
      snapshot_(ctx.snapshot) {
  if (auto it = snapshot_->listeners.find(listener_name_); it != snapshot_->listeners.end()) {
    listener_ = &it->second;
  }
  connection_->setCallbacks(this);
  if (const auto* listener = listenerConfig(); listener != nullptr) {
    connection_->setWriteTimeout(
        std::chrono::duration_cast<std::chrono::milliseconds>(listener->spec.limits.write_timeout));
    if (listener->tls) {
      connection_->enableTls(listener->tls, "");
    }
  }
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

bool ConnectionManager::createCodec(evbuffer* input) {
  const auto* listener = listenerConfig();
  if (listener == nullptr) {
    return false;
  }
  const auto& limits_spec = listener->spec.limits;
  http::ServerCodecLimits limits;
  limits.max_request_headers_bytes = limits_spec.max_request_headers_bytes;
  limits.max_headers_count = limits_spec.max_headers_count;
  limits.max_request_body_bytes = limits_spec.max_request_body_bytes;
  limits.max_concurrent_streams = limits_spec.max_concurrent_streams;
  limits.stream_error_burst = limits_spec.stream_error_burst;
  limits.stream_errors_per_second = limits_spec.stream_errors_per_second;
  const std::string_view alpn =
      connection_->tls() != nullptr ? connection_->tls()->alpn() : std::string_view();
  // A connection keeps the protocol of its first request: after an HTTP/1 codec was freed
  // between requests, the next one is HTTP/1 again, never sniffed anew.
  const config::ListenerProtocol protocol =
      served_ ? config::ListenerProtocol::Http1
              : (alpn.empty() ? listener->spec.protocol
                              : (alpn == "h2" ? config::ListenerProtocol::H2c
                                              : config::ListenerProtocol::Http1));
  switch (protocol) {
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
    codec_ = std::make_unique<http::Http2ServerConnection>(*connection_, *this, limits);
  } else {
    codec_ = std::make_unique<http::Http1ServerConnection>(*connection_, *this, limits);
  }
  if (draining_) {
    codec_->shutdownNotice();
  }
  return true;
}

void ConnectionManager::onData(evbuffer* input) {
  BULWARK_ASSERT(ctx_.dispatcher.isThisThread());
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
      if (timer_mode_ == TimerMode::HeaderRead) {
        startTimer(TimerMode::Idle);
      }
    }
  }
  if (streams_.empty() && !is_http2_ && timer_mode_ != TimerMode::HeaderRead) {
    // Bytes of a new request started arriving: the whole header block must follow in time.
    startTimer(TimerMode::HeaderRead);
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
  } else if (streams_.empty()) {
    releaseIdleCodec();  // a response answered while parsing (a local reply) is done too
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
  stopTimer();
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

http::RequestDecoder& ConnectionManager::newStream(http::ResponseEncoder& encoder) {
  BULWARK_ASSERT(ctx_.dispatcher.isThisThread());
  stopTimer();
  served_ = true;
  streams_.push_back(std::make_unique<ActiveStream>(*this, encoder));
  ActiveStream& stream = *streams_.back();
  if (!draining_ && ctx_.overload &&
      ctx_.overload->isActive(policies::OverloadAction::DisableKeepalive)) {
    // This request is served; the connection then ends (Connection: close, or GOAWAY for
    // HTTP/2), so clients reconnect and spread over replicas while memory is short.
    ctx_.overload->countTriggered(policies::OverloadAction::DisableKeepalive);
    shutdownNotice();
  }
  return stream;
}

void ConnectionManager::collectStreamBytes(std::vector<StreamBytes>& out) const {
  for (const auto& stream : streams_) {
    if (const uint64_t bytes = stream->bufferedBytes(); bytes > 0) {
      out.push_back({stream.get(), bytes});
    }
  }
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
      event::DeferredDeletablePtr stream_done = std::move(*it);
      streams_.erase(it);
      ctx_.dispatcher.deferredDelete(std::move(stream_done));
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
    releaseIdleCodec();
    armTimers();
  }
}

void ConnectionManager::releaseIdleCodec() {
  // An idle keep-alive connection then holds no codec (nor, in its Connection, any buffer):
  // the next request's first byte makes a new one. The codec may be on the stack (a response
  // it just finished), so it goes later.
  if (codec_ && !is_http2_ && codec_->betweenRequests() && connection_->inputLength() == 0 &&
      connection_->readEnabled()) {
    ctx_.dispatcher.deferredDelete(std::move(codec_));
  }
}

void ConnectionManager::onWriteTimeout() {
  ctx_.stats.protocolError(listener_name_, "write_timeout").Increment();
}

void ConnectionManager::armTimers() {
  if (listener_ == nullptr) {
    return;
  }
  const auto& limits = listener_->spec.limits;
  if (!is_http2_ && !served_ && limits.header_read_timeout.count() > 0 &&
      (limits.idle_timeout.count() <= 0 || limits.header_read_timeout <= limits.idle_timeout)) {
    // A new connection must send its first request headers in time (slowloris). Of the two
    // deadlines the shorter would close it first, so only that one is armed.
    startTimer(TimerMode::HeaderRead);
  } else {
    startTimer(TimerMode::Idle);
  }
}

void ConnectionManager::startTimer(TimerMode mode) {
  const auto& limits = listener_->spec.limits;
  const auto timeout =
      mode == TimerMode::HeaderRead ? limits.header_read_timeout : limits.idle_timeout;
  if (timeout.count() <= 0) {
    stopTimer();
    return;
  }
  timer_mode_ = mode;
  ctx_.deadlines.forDuration(timeout).arm(*this);
}

void ConnectionManager::stopTimer() {
  if (timer_mode_ != TimerMode::Off) {
    timer_mode_ = TimerMode::Off;
    disarm();
  }
}

void ConnectionManager::onDeadline() {
  const TimerMode fired = timer_mode_;
  timer_mode_ = TimerMode::Off;
  switch (fired) {
    case TimerMode::HeaderRead:
      ctx_.stats.protocolError(listener_name_, "header_read_timeout").Increment();
      closeConnection(network::Connection::CloseType::NoFlush);
      break;
    case TimerMode::Idle: onIdleTimeout(); break;
    case TimerMode::Off: break;
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
  if (!codec_ && !served_) {
    // Not a byte read yet: a client that has just connected is about to send its request.
    // Closing now would lose it; it is served once (Connection: close, or GOAWAY on HTTP/2,
    // when the codec is made) and the header-read timer closes a connection that stays silent.
    return;
  }
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

}  // namespace bulwark::server
