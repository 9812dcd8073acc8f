#include "proxy/http/http2_client_codec.h"

#include <algorithm>
#include <charconv>

#include "common/assert.h"

namespace bulwark::http {

/** One request/response exchange on the upstream connection. Thread: owning worker. */
class Http2ClientConnection::ClientStream : public Http2StreamBase, public RequestEncoder {
public:
  ClientStream(Http2ClientConnection& parent, ResponseDecoder& decoder)
      : Http2StreamBase(parent), client_(parent), decoder_(&decoder) {}

  // RequestEncoder
  void encodeHeaders(const RequestHeaders& headers, bool end_stream) override {
    if (local_reset_ || closed_ || headers_submitted_) {
      return;
    }
    Http2HeaderBlock block;
    LoweredNames lowered;
    std::string_view authority = headers.authority;
    if (authority.empty()) {
      if (auto host = headers.headers.get("host")) {
        authority = *host;
      }
    }
    block.add(":method", headers.method);
    if (headers.method == "CONNECT") {
      block.add(":authority", authority);
    } else {
      block.add(":scheme", headers.scheme.empty() ? std::string_view("http") : headers.scheme);
      if (!authority.empty()) {
        block.add(":authority", authority);
      }
      block.add(":path", headers.path.empty() ? std::string_view("/") : headers.path);
    }
    appendRegularHeaders(headers.headers, true, block, lowered);
    // gRPC servers require "te: trailers" to know the client understands trailers.
    if (headers.isGrpc() &&
        headers.headers.get("te") != std::optional<std::string_view>("trailers")) {
      block.add("te", "trailers");
    }
    submitHeaders(block, end_stream);
  }

  void encodeData(evbuffer* data, bool end_stream) override { encodeDataImpl(data, end_stream); }
  void encodeTrailers(const HeaderMap& trailers) override { encodeTrailersImpl(trailers); }

  Stream& stream() override { return *this; }

private:
  // Http2StreamBase
  int onHeaderField(std::string_view name, std::string_view value) override {
    if (silenced_) {
      return 0;
    }
    if (name == ":status") {
      uint32_t status = 0;
      auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), status);
      if (ec == std::errc() && ptr == value.data() + value.size()) {
        status_ = status;
      }
      return 0;
    }
    if (!name.empty() && name[0] == ':') {
      return 0;
    }
    block_.add(std::string(name), std::string(value));
    return 0;
  }

  void onHeaderBlock(const nghttp2_frame* frame) override {
    bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (silenced_) {
      return;
    }
    if (final_headers_received_) {
      decoder_->decodeTrailers(std::move(block_));
      block_ = HeaderMap();
      return;
    }
    auto response = std::make_unique<ResponseHeaders>();
    response->status = status_;
    response->headers = std::move(block_);
    block_ = HeaderMap();
    status_ = 0;
    if (response->status >= 100 && response->status < 200) {
      decoder_->decode1xxHeaders(std::move(response));
      return;
    }
    final_headers_received_ = true;
    decoder_->decodeHeaders(std::move(response), end_stream);
  }

  void decodeBody(evbuffer* data, bool end_stream) override {
    if (silenced_) {
      evbuffer_drain(data, evbuffer_get_length(data));
      return;
    }
    decoder_->decodeData(data, end_stream);
  }

  void onClosed(uint32_t error_code) override {
    if (silenced_) {
      return;
    }
    // A complete response is a success even if the server cancels the rest of our body.
    if (error_code == NGHTTP2_NO_ERROR && remote_end_) {
      silenced_ = true;
      return;
    }
    StreamResetReason reason = StreamResetReason::RemoteReset;
    std::string detail = "http2.remote_reset";
    if (client_.goaway_received_ && id_ > client_.goaway_received_last_id_) {
      reason = StreamResetReason::GoAwayBeforeProcessing;
      detail = "http2.goaway_before_processing";
    } else if (remote_reset_ && remote_reset_code_ == NGHTTP2_REFUSED_STREAM) {
      reason = StreamResetReason::RefusedStream;
      detail = "http2.refused_stream";
    } else if (protocol_error_) {
      reason = StreamResetReason::ProtocolError;
      detail = "http2.protocol_error";
    }
    detail.append(".").append(nghttp2_http2_strerror(error_code));
    notifyReset(reason, detail);
  }

  uint32_t resetCode(StreamResetReason reason) const override {
    switch (reason) {
      case StreamResetReason::RefusedStream: return NGHTTP2_REFUSED_STREAM;
      case StreamResetReason::ProtocolError: return NGHTTP2_PROTOCOL_ERROR;
      default: return NGHTTP2_CANCEL;
    }
  }

  Http2ClientConnection& client_;
  ResponseDecoder* decoder_;
  HeaderMap block_;
  uint32_t status_ = 0;
  bool final_headers_received_ = false;
};

Http2ClientConnection::Http2ClientConnection(network::CodecConnection& connection,
                                             ClientConnectionCallbacks& callbacks,
                                             const Http2ClientSettings& settings)
    : Http2ConnectionBase(connection, false), callbacks_(callbacks), settings_(settings) {
  nghttp2_option* option = nullptr;
  BULWARK_RELEASE_ASSERT(nghttp2_option_new(&option) == 0, "nghttp2 out of memory");
  nghttp2_option_set_no_auto_window_update(option, 1);
  nghttp2_option_set_no_closed_streams(option, 1);
  // Until the server's SETTINGS arrive, assume no more than we would use anyway.
  nghttp2_option_set_peer_max_concurrent_streams(
      option, std::min<uint32_t>(settings.max_concurrent_streams, 100));
  std::vector<nghttp2_settings_entry> entries = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, settings.initial_window},
  };
  initSession(option, entries);
  nghttp2_option_del(option);
  sendPendingFrames();
}

Http2ClientConnection::~Http2ClientConnection() = default;

RequestEncoder& Http2ClientConnection::newStream(ResponseDecoder& decoder) {
  auto stream = std::make_unique<ClientStream>(*this, decoder);
  ClientStream& ref = *stream;
  registerStream(std::move(stream));
  if (torn_down_ || dead_) {
    // Precondition broken (canCreateStream() was false): fail it the normal way, later.
    deferReset(ref, StreamResetReason::ConnectionFailure, "http2.connection_unusable");
  }
  return ref;
}

bool Http2ClientConnection::canCreateStream() const {
  if (dead_ || torn_down_ || goaway_received_ || local_goaway_ || session_ == nullptr) {
    return false;
  }
  if (nghttp2_session_check_request_allowed(session_) == 0) {
    return false;
  }
  uint32_t peer_max =
      nghttp2_session_get_remote_settings(session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS);
  size_t limit = std::min(peer_max, settings_.max_concurrent_streams);
  return streamCount() < limit;
}

Status Http2ClientConnection::dispatch(evbuffer* input) {
  Status status = dispatchImpl(input);
  if (!status.isOk() && !torn_down_) {
    resetAllStreams(StreamResetReason::ProtocolError, status.message());
  }
  return status;
}

void Http2ClientConnection::onConnectionClosed(bool connect_failed) {
  if (torn_down_) {
    return;
  }
  StreamResetReason reason = connect_failed || !received_any_
                                 ? StreamResetReason::ConnectionFailure
                                 : StreamResetReason::ConnectionTermination;
  resetAllStreams(reason, "http2.connection_closed");
}

void Http2ClientConnection::onTlsFailure() {
  if (!torn_down_) {
    resetAllStreams(StreamResetReason::TlsFailure, "upstream TLS failure");
  }
}

void Http2ClientConnection::goAway() {
  if (local_goaway_ || torn_down_) {
    return;
  }
  local_goaway_ = true;
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
  scheduleFlush();
}

void Http2ClientConnection::afterFlush() {
  if (dead_ && !torn_down_) {
    resetAllStreams(StreamResetReason::ProtocolError, dead_detail_);
    if (!connection_.closing()) {
      connection_.close(network::CodecConnection::CloseType::FlushWrite);
    }
  }
}

int Http2ClientConnection::onBeginHeaders(const nghttp2_frame*) { return 0; }

void Http2ClientConnection::onConnectionFrame(const nghttp2_frame* frame) {
  if (frame->hd.type == NGHTTP2_GOAWAY && !goaway_notified_) {
    goaway_notified_ = true;
    callbacks_.onGoAway();
  }
}

void Http2ClientConnection::onStreamRemoved() { callbacks_.onStreamClosed(); }

}  // namespace bulwark::http
