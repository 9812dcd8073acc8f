#include "proxy/http/http2_server_codec.h"

#include <charconv>
#include <cstring>

#include "common/ascii.h"
#include "common/assert.h"

namespace bulwark::http {
namespace {

// Opaque data of the drain PING, so its ACK is told apart from the peer's own PINGs.
constexpr uint8_t kDrainPingData[8] = {'b', 'w', 'd', 'r', 'a', 'i', 'n', '1'};

}  // namespace

/** One request/response exchange. Thread: owning worker. */
class Http2ServerConnection::ServerStream : public Http2StreamBase, public ResponseEncoder {
public:
  ServerStream(Http2ServerConnection& parent, int32_t id)
      : Http2StreamBase(parent), server_(parent), request_(std::make_unique<RequestHeaders>()) {
    id_ = id;
  }

  // ResponseEncoder
  void encode100Continue() override {
    if (local_reset_ || closed_ || response_started_ || continue_sent_) {
      return;
    }
    continue_sent_ = true;
    Http2HeaderBlock block;
    block.add(":status", "100");
    nghttp2_submit_headers(server_.session_, NGHTTP2_FLAG_NONE, id_, nullptr, block.data(),
                           block.size(), nullptr);
    server_.scheduleFlush();
  }

  void encodeHeaders(const ResponseHeaders& headers, bool end_stream) override {
    if (local_reset_ || closed_ || response_started_) {
      return;
    }
    response_started_ = true;
    std::string status = std::to_string(headers.status);
    Http2HeaderBlock block;
    LoweredNames lowered;
    block.add(":status", status);
    appendRegularHeaders(headers.headers, false, block, lowered);
    submitHeaders(block, end_stream);
  }

  void encodeData(evbuffer* data, bool end_stream) override { encodeDataImpl(data, end_stream); }
  void encodeTrailers(const HeaderMap& trailers) override { encodeTrailersImpl(trailers); }

  Stream& stream() override { return *this; }
  std::string_view protocol() const override { return "HTTP/2"; }

private:
  // Http2StreamBase
  int onHeaderField(std::string_view name, std::string_view value) override {
    if (reject_status_ != 0 || silenced_) {
      return 0;
    }
    const ServerCodecLimits& limits = server_.limits_;
    header_bytes_ += name.size() + value.size();
    if (header_bytes_ > limits.max_request_headers_bytes) {
      reject_status_ = 431;
      reject_details_ = "http2.headers_too_large";
      return 0;
    }
    if (!name.empty() && name[0] == ':') {
      if (headers_done_) {
        return 0;  // nghttp2 rejects pseudo-headers in trailers already
      }
      if (name == ":method") {
        request_->method = value;
      } else if (name == ":path") {
        request_->path = value;
      } else if (name == ":scheme") {
        request_->scheme = value;
      } else if (name == ":authority") {
        request_->authority = value;
      }
      return 0;
    }
    if (++header_count_ > limits.max_headers_count) {
      reject_status_ = 431;
      reject_details_ = "http2.too_many_headers";
      return 0;
    }
    if (!headers_done_) {
      if (name == "cookie") {
        // HTTP/2 may split cookies into crumbs; HTTP/1 and applications want one header.
        if (!cookie_.empty()) {
          cookie_.append("; ");
        }
        cookie_.append(value);
        has_cookie_ = true;
      } else {
        request_->headers.add(std::string(name), std::string(value));
      }
    } else {
      trailers_.add(std::string(name), std::string(value));
    }
    return 0;
  }

  void onHeaderBlock(const nghttp2_frame* frame) override {
    bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
    if (!headers_done_) {
      headers_done_ = true;
      header_count_ = 0;
      header_bytes_ = 0;
      onRequestHeaders(end_stream);
      return;
    }
    if (silenced_) {
      return;
    }
    if (reject_status_ != 0) {
      reject(reject_status_, reject_details_);
      return;
    }
    if (decoder_ != nullptr) {
      decoder_->decodeTrailers(std::move(trailers_));
    }
  }

  void onRequestHeaders(bool end_stream) {
    if (reject_status_ != 0) {
      reject(reject_status_, reject_details_);
      return;
    }
    RequestHeaders& req = *request_;
    if (req.path.empty() || (req.path[0] != '/' && req.path != "*")) {
      // CONNECT (no :path; nghttp2 checks the rest): a tunnel to an authority is not proxied,
      // as over HTTP/1, and an empty path must not reach routing or an upstream request line.
      reject(400, "http2.unsupported_request_target");
      return;
    }
    req.http_major = 2;
    req.http_minor = 0;
    if (has_cookie_) {
      req.headers.add("cookie", std::move(cookie_));
    }
    if (req.authority.empty()) {
      if (req.headers.count("host") > 1) {
        reject(400, "http2.invalid_host");
        return;
      }
      if (auto host = req.headers.get("host")) {
        req.authority = std::string(*host);
      }
    } else {
      // RFC 9113 §8.3.1: with :authority present, host is ignored. Dropping it means an HTTP/1
      // upstream gets Host from the :authority we routed on, never a second, different one.
      req.headers.remove("host");
    }
    if (req.scheme.empty()) {
      req.scheme = "http";
    }
    const uint64_t max_body = server_.limits_.max_request_body_bytes;
    if (max_body > 0) {
      if (auto cl = req.headers.get("content-length")) {
        uint64_t length = 0;
        auto [ptr, ec] = std::from_chars(cl->data(), cl->data() + cl->size(), length);
        if (ec == std::errc() && ptr == cl->data() + cl->size() && length > max_body) {
          reject(413, "http2.request_body_too_large");
          return;
        }
      }
    }
    bool expect_continue = false;
    if (auto expect = req.headers.get("expect")) {
      if (equalsIgnoreCase(*expect, "100-continue")) {
        expect_continue = !end_stream;
        req.headers.remove("expect");
      }
    }
    decoder_ = &server_.callbacks_.newStream(*this);
    if (silenced_ || local_reset_) {
      return;
    }
    decoder_->decodeHeaders(std::move(request_), end_stream);
    if (expect_continue && !response_started_ && !silenced_) {
      encode100Continue();
    }
  }

  void onBodyBytes(size_t) override {
    const uint64_t max_body = server_.limits_.max_request_body_bytes;
    if (max_body > 0 && received_body_bytes_ > max_body) {
      reject(413, "http2.request_body_too_large");
    }
  }

  void decodeBody(evbuffer* data, bool end_stream) override {
    if (decoder_ == nullptr) {
      evbuffer_drain(data, evbuffer_get_length(data));
      return;
    }
    decoder_->decodeData(data, end_stream);
  }

  void onClosed(uint32_t error_code) override {
    if (silenced_) {
      return;
    }
    bool complete = error_code == NGHTTP2_NO_ERROR && remote_end_ && local_end_sent_;
    if (complete) {
      silenced_ = true;
      return;
    }
    StreamResetReason reason = StreamResetReason::RemoteReset;
    std::string detail = "http2.remote_reset";
    if (protocol_error_) {
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
      default: return NGHTTP2_INTERNAL_ERROR;
    }
  }

  /**
   * Answers the request here (431/413) when no response started, else resets the stream. The
   * owner, if there is one, learns through onResetStream(ProtocolError) first.
   */
  void reject(uint32_t status, const std::string& details) {
    if (silenced_ || local_reset_) {
      return;
    }
    server_.callbacks_.onProtocolError(details);
    server_.chargeStreamError();
    notifyReset(StreamResetReason::ProtocolError, details);
    decoder_ = nullptr;
    recv_buf_.clear();
    if (response_started_) {
      local_reset_ = true;
      send_buf_.clear();
      nghttp2_submit_rst_stream(server_.session_, NGHTTP2_FLAG_NONE, id_, NGHTTP2_INTERNAL_ERROR);
      server_.scheduleFlush();
      return;
    }
    response_started_ = true;
    std::string body = details + "\n";
    std::string status_text = std::to_string(status);
    std::string length = std::to_string(body.size());
    Http2HeaderBlock block;
    block.add(":status", status_text);
    block.add("content-type", "text/plain");
    block.add("content-length", length);
    evbuffer_add(send_buf_.get(), body.data(), body.size());
    local_end_requested_ = true;
    reset_after_local_end_ = true;
    submitHeaders(block, false);
  }

  Http2ServerConnection& server_;
  RequestHeadersPtr request_;
  HeaderMap trailers_;
  std::string cookie_;
  bool has_cookie_ = false;
  RequestDecoder* decoder_ = nullptr;
  size_t header_bytes_ = 0;
  uint32_t header_count_ = 0;
  uint32_t reject_status_ = 0;
  std::string reject_details_;
  bool headers_done_ = false;
  bool response_started_ = false;
  bool continue_sent_ = false;
};

Http2ServerConnection::Http2ServerConnection(network::CodecConnection& connection,
                                             ServerConnectionCallbacks& callbacks,
                                             const ServerCodecLimits& limits,
                                             uint32_t initial_window)
    : Http2ConnectionBase(connection, true), callbacks_(callbacks), limits_(limits) {
  nghttp2_option* option = nullptr;
  BULWARK_RELEASE_ASSERT(nghttp2_option_new(&option) == 0, "nghttp2 out of memory");
  nghttp2_option_set_no_auto_window_update(option, 1);
  // Closed streams are kept only for RFC 7540 priorities, which nobody uses; save the memory.
  nghttp2_option_set_no_closed_streams(option, 1);
  // Flood limits (SETTINGS/PING ACK queue, RST rate, CONTINUATION count) stay at nghttp2's
  // defaults, which already fit a proxy.
  std::vector<nghttp2_settings_entry> settings = {
      {NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS, limits.max_concurrent_streams},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, initial_window},
      {NGHTTP2_SETTINGS_MAX_HEADER_LIST_SIZE, limits.max_request_headers_bytes},
  };
  initSession(option, settings);
  nghttp2_option_del(option);
  sendPendingFrames();
}

Http2ServerConnection::~Http2ServerConnection() { drain_timer_.reset(); }

Status Http2ServerConnection::dispatch(evbuffer* input) {
  Status status = dispatchImpl(input);
  if (!status.isOk() && !torn_down_) {
    onSessionError(status.message());
    resetAllStreams(StreamResetReason::ProtocolError, status.message());
  }
  return status;
}

void Http2ServerConnection::shutdownNotice() {
  if (drain_started_ || dead_) {
    return;
  }
  drain_started_ = true;
  nghttp2_submit_shutdown_notice(session_);
  nghttp2_submit_ping(session_, NGHTTP2_FLAG_NONE, kDrainPingData);
  // Made only for a drain: an idle connection holds no timer event for it.
  drain_timer_ = connection_.dispatcher().createTimer([this] {
    sendFinalGoAway();
    sendPendingFrames();
    afterFlush();
  });
  drain_timer_->enableTimer(kDrainFinalGoAwayDelay);
  scheduleFlush();
}

void Http2ServerConnection::sendFinalGoAway() {
  if (final_goaway_submitted_ || torn_down_) {
    return;
  }
  final_goaway_submitted_ = true;
  if (drain_timer_) {
    drain_timer_->disableTimer();
  }
  nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE,
                        nghttp2_session_get_last_proc_stream_id(session_), NGHTTP2_NO_ERROR,
                        nullptr, 0);
  scheduleFlush();
}

void Http2ServerConnection::onConnectionClosed() {
  if (drain_timer_) {
    drain_timer_->disableTimer();
  }
  if (torn_down_) {
    return;
  }
  resetAllStreams(StreamResetReason::ConnectionTermination, "http2.connection_closed");
}

bool Http2ServerConnection::wantsClose() const {
  // Not while nghttp2 is mid-receive or mid-send, nor while serialized frames wait in output_:
  // a stream closing inside nghttp2_session_send (streams above a GOAWAY's last-stream-id) makes
  // the connection manager ask from within that call, and closing then would drop the GOAWAY
  // before it reaches the socket (and skip the protocol-error count). The end of dispatch()
  // and afterFlush() ask again once the frames are written.
  if (dispatching_ || sending_ || output_.length() > 0) {
    return false;
  }
  if (dead_) {
    return true;
  }
  if (final_goaway_sent_ && streamCount() == 0) {
    return true;
  }
  return session_ != nullptr && nghttp2_session_want_read(session_) == 0 &&
         nghttp2_session_want_write(session_) == 0;
}

void Http2ServerConnection::afterFlush() {
  if (dead_ && !torn_down_) {
    onSessionError(dead_detail_);
    resetAllStreams(StreamResetReason::ProtocolError, dead_detail_);
  }
  if (wantsClose() && !connection_.closing()) {
    connection_.close(network::CodecConnection::CloseType::FlushWrite);
  }
}

void Http2ServerConnection::onSessionError(std::string_view details) {
  if (session_error_reported_) {
    return;
  }
  session_error_reported_ = true;
  callbacks_.onProtocolError(details);
}

int Http2ServerConnection::onBeginHeaders(const nghttp2_frame* frame) {
  if (frame->hd.type != NGHTTP2_HEADERS || frame->headers.cat != NGHTTP2_HCAT_REQUEST) {
    return 0;
  }
  registerStream(std::make_unique<ServerStream>(*this, frame->hd.stream_id));
  return 0;
}

void Http2ServerConnection::onConnectionFrame(const nghttp2_frame* frame) {
  if (frame->hd.type == NGHTTP2_PING && (frame->hd.flags & NGHTTP2_FLAG_ACK) != 0 &&
      drain_started_ &&
      std::memcmp(frame->ping.opaque_data, kDrainPingData, sizeof(kDrainPingData)) == 0) {
    sendFinalGoAway();
  }
}

void Http2ServerConnection::chargeStreamError() {
  if (dead_ || limits_.stream_errors_per_second == 0) {
    return;
  }
  const auto now = connection_.dispatcher().now();
  if (!stream_errors_) {
    stream_errors_.emplace(static_cast<double>(limits_.stream_errors_per_second),
                           limits_.stream_error_burst, now);
  }
  if (stream_errors_->tryConsume(now).allowed) {
    return;
  }
  markDead("http2.stream_error_budget");
  nghttp2_session_terminate_session(session_, NGHTTP2_ENHANCE_YOUR_CALM);
  scheduleFlush();
}

void Http2ServerConnection::onInvalidFrame(const nghttp2_frame* frame, int lib_error_code) {
  Http2ConnectionBase::onInvalidFrame(frame, lib_error_code);
  callbacks_.onProtocolError(std::string("http2.invalid_frame.") +
                             nghttp2_strerror(lib_error_code));
}

}  // namespace bulwark::http
