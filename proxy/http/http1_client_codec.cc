#include "proxy/http/http1_client_codec.h"

#include <fmt/format.h>

#include "common/assert.h"

namespace bulwark::http {
namespace {
constexpr size_t kBodyFlushThreshold = 64UL * 1024;
constexpr size_t kMaxResponseHeaderBytes = 96UL * 1024;
}  // namespace

Http1ClientConnection::Http1ClientConnection(network::CodecConnection& connection,
                                             ClientConnectionCallbacks& callbacks)
    : connection_(connection), callbacks_(callbacks) {
  llhttp_settings_init(&settings_);
  settings_.on_message_begin = &Http1ClientConnection::onMessageBegin;
  settings_.on_status = &Http1ClientConnection::onStatus;
  settings_.on_header_field = &Http1ClientConnection::onHeaderField;
  settings_.on_header_value = &Http1ClientConnection::onHeaderValue;
  settings_.on_headers_complete = &Http1ClientConnection::onHeadersComplete;
  settings_.on_body = &Http1ClientConnection::onBody;
  settings_.on_message_complete = &Http1ClientConnection::onMessageComplete;
  llhttp_init(&parser_, HTTP_RESPONSE, &settings_);
  parser_.data = this;
  body_buffer_ = evbuffer_new();
}

Http1ClientConnection::~Http1ClientConnection() { evbuffer_free(body_buffer_); }

RequestEncoder& Http1ClientConnection::newStream(ResponseDecoder& decoder) {
  decoder_ = &decoder;
  stream_callbacks_ = nullptr;
  stream_active_ = true;
  request_complete_ = false;
  response_headers_seen_ = false;
  any_response_bytes_ = false;
  request_chunked_ = false;
  upgrade_request_ = false;
  return *this;
}

void Http1ClientConnection::encodeHeaders(const RequestHeaders& headers, bool end_stream) {
  head_request_ = headers.method == "HEAD";
  upgrade_request_ = !headers.upgrade.empty();
  if (upgrade_request_) {
    // Whatever the answer, this connection's bytes may belong to another protocol afterwards.
    go_away_ = true;
  }
  // Request line, the headers, a host line, an upgrade or framing line, the blank line.
  const size_t bound = headers.method.size() + headers.path.size() + 12 +
                       headLength(headers.headers) + headers.authority.size() + 8 +
                       headers.upgrade.size() + 32 + 2;
  HeadWriter out(connection_.reserveOutput(bound));
  out.put(headers.method).put(" ").put(headers.path).put(" HTTP/1.1").crlf();
  bool has_host = false;
  bool has_content_length = false;
  for (const auto& [stored_name, value] : headers.headers.entries()) {
    // Compared as string_view: lengths first, no memcmp call for names of another length.
    const std::string_view name = stored_name;
    if (name == "host") {
      has_host = true;
    }
    if (name == "content-length") {
      has_content_length = true;
    }
    if (name == "transfer-encoding" || name == "connection") {
      continue;
    }
    out.field(name, value);
  }
  if (!has_host && !headers.authority.empty()) {
    out.field("host", headers.authority);
  }
  if (upgrade_request_) {
    out.field("connection", "upgrade").field("upgrade", headers.upgrade);
  } else if (!has_content_length) {
    if (end_stream) {
      if (headers.method == "POST" || headers.method == "PUT" || headers.method == "PATCH") {
        out.put("content-length: 0\r\n");
      }
    } else {
      request_chunked_ = true;
      out.put("transfer-encoding: chunked\r\n");
    }
  }
  out.crlf();
  BULWARK_ASSERT(out.size() <= bound);
  connection_.commitOutput(out.room(), out.size());
  if (end_stream) {
    request_complete_ = true;
  }
}

void Http1ClientConnection::encodeData(evbuffer* data, bool end_stream) {
  if (dead_ || !stream_active_) {
    evbuffer_drain(data, evbuffer_get_length(data));
    return;
  }
  size_t len = evbuffer_get_length(data);
  if (request_chunked_) {
    if (len > 0) {
      char header[32];
      int n = std::snprintf(header, sizeof(header), "%zx\r\n", len);
      connection_.write(header, static_cast<size_t>(n));
      connection_.write(data);
      connection_.write(std::string_view("\r\n"));
    }
    if (end_stream) {
      connection_.write(std::string_view("0\r\n\r\n"));
    }
  } else {
    connection_.write(data);
  }
  if (end_stream) {
    request_complete_ = true;
  }
}

void Http1ClientConnection::encodeTrailers(const HeaderMap& trailers) {
  if (dead_ || !stream_active_) {
    return;
  }
  if (request_chunked_) {
    std::string out = "0\r\n";
    for (const auto& [name, value] : trailers.entries()) {
      out.append(name).append(": ").append(value).append("\r\n");
    }
    out.append("\r\n");
    connection_.write(out);
  }
  request_complete_ = true;
}

Status Http1ClientConnection::dispatch(evbuffer* input) {
  if (dead_) {
    evbuffer_drain(input, evbuffer_get_length(input));
    return Status::error("connection unusable");
  }
  while (evbuffer_get_length(input) > 0 && !dead_) {
    if (tunnel_) {
      if (decoder_ != nullptr) {
        decoder_->decodeData(input, false);
      } else {
        evbuffer_drain(input, evbuffer_get_length(input));
      }
      break;
    }
    if (!stream_active_) {
      // Bytes with no request outstanding: the upstream is broken or hostile.
      dead_ = true;
      evbuffer_drain(input, evbuffer_get_length(input));
      return Status::error("unexpected data from upstream");
    }
    any_response_bytes_ = true;
    evbuffer_iovec vec;
    if (evbuffer_peek(input, -1, nullptr, &vec, 1) < 1) {
      break;
    }
    const char* data = static_cast<const char*>(vec.iov_base);
    size_t len = vec.iov_len;
    llhttp_errno_t err = llhttp_execute(&parser_, data, len);
    if (err == HPE_PAUSED) {
      // Response complete; anything after it on this connection is unexpected for HTTP/1.1
      // without pipelining, so the connection is not reused.
      auto consumed = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
      evbuffer_drain(input, consumed);
      llhttp_resume(&parser_);
      if (evbuffer_get_length(input) > 0 && !stream_active_) {
        dead_ = true;
        evbuffer_drain(input, evbuffer_get_length(input));
        return Status::error("data after response");
      }
      continue;
    }
    if (err == HPE_PAUSED_UPGRADE && tunnel_) {
      // The 101 head ends here; the rest is the switched-to protocol.
      auto consumed = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
      evbuffer_drain(input, consumed);
      continue;
    }
    if (err != HPE_OK) {
      failStream(StreamResetReason::ProtocolError,
                 fmt::format("upstream protocol error: {}", llhttp_errno_name(err)));
      dead_ = true;
      return Status::error("upstream protocol error");
    }
    evbuffer_drain(input, len);
  }
  if (!dead_ && decoder_ != nullptr && evbuffer_get_length(body_buffer_) > 0) {
    flushBody(false);
  }
  return dead_ ? Status::error("connection unusable") : Status::ok();
}

int Http1ClientConnection::onMessageBegin(llhttp_t* p) {
  auto* self = static_cast<Http1ClientConnection*>(p->data);
  self->response_ = std::make_unique<ResponseHeaders>();
  self->header_reader_.reset();
  self->in_trailers_ = false;
  self->trailers_ = HeaderMap();
  return 0;
}

int Http1ClientConnection::onStatus(llhttp_t*, const char*, size_t) { return 0; }

void Http1ClientConnection::finishHeader() {
  header_reader_.finish(in_trailers_ ? trailers_ : response_->headers);
}

int Http1ClientConnection::onHeaderField(llhttp_t* p, const char* at, size_t len) {
  auto* self = static_cast<Http1ClientConnection*>(p->data);
  if (!self->header_reader_.count(len, kMaxResponseHeaderBytes)) {
    return HPE_USER;
  }
  self->header_reader_.appendName({at, len},
                                  self->in_trailers_ ? self->trailers_ : self->response_->headers);
  return 0;
}

int Http1ClientConnection::onHeaderValue(llhttp_t* p, const char* at, size_t len) {
  auto* self = static_cast<Http1ClientConnection*>(p->data);
  if (!self->header_reader_.hasName()) {
    // ": value" (llhttp lets an empty name through): the value would be glued onto the next
    // field's, e.g. ": 1" then "Content-Length: 0" forwarded as "content-length: 10" while the
    // body was framed by 0.
    return HPE_USER;
  }
  if (!self->header_reader_.count(len, kMaxResponseHeaderBytes)) {
    return HPE_USER;
  }
  self->header_reader_.appendValue({at, len});
  return 0;
}

int Http1ClientConnection::onHeadersComplete(llhttp_t* p) {
  auto* self = static_cast<Http1ClientConnection*>(p->data);
  self->finishHeader();
  if (self->header_reader_.firstInvalid() != nullptr) {
    // What llhttp lets through but must not reach the client: a name with SP before the colon
    // ("Content-Length : 5", which llhttp does not frame by while a client might), controls.
    return HPE_USER;
  }
  if (p->status_code < 100 || p->status_code > 599) {
    // llhttp takes any three digits; RFC 9110 §15 says values outside 100-599 are invalid. Passed
    // on they would be written to the client as they came ("HTTP/1.1 0", ":status 999").
    return HPE_USER;
  }
  self->response_->status = p->status_code;
  if (p->status_code >= 100 && p->status_code < 200) {
    if (p->status_code == 101) {
      return self->switchProtocols();
    }
    if (self->decoder_) {
      self->decoder_->decode1xxHeaders(std::move(self->response_));
    }
    // No body, whatever its headers say (RFC 9112 §6.3): llhttp would otherwise read one, by
    // length or until the close, and hand it over as body of a response not yet begun.
    return 1;
  }
  if (llhttp_should_keep_alive(p) == 0) {
    self->go_away_ = true;
  }
  stripHopByHop(self->response_->headers);
  self->response_headers_seen_ = true;
  self->in_trailers_ = true;
  bool no_body =
      self->head_request_ || p->status_code == 204 || p->status_code == 304 ||
      ((p->flags & F_CONTENT_LENGTH) != 0 && p->content_length == 0 && (p->flags & F_CHUNKED) == 0);
  self->response_without_body_ = no_body;
  if (self->decoder_) {
    self->decoder_->decodeHeaders(std::move(self->response_), no_body);
  }
  // llhttp: returning 1 tells it the message has no body. Not only for HEAD: a 204 or 304 has
  // none whatever its Content-Length or Transfer-Encoding says (RFC 9112 §6.3), and llhttp
  // would otherwise wait for that many body bytes after the decoder was told the stream ended
  // (the connection hung, then the next response's bytes taken as this one's body).
  return no_body ? 1 : 0;
}

int Http1ClientConnection::switchProtocols() {
  if (!upgrade_request_ || parser_.upgrade == 0) {
    return HPE_USER;  // a 101 nobody asked for (or without Upgrade): a protocol error
  }
  auto upgrade = response_->headers.get("upgrade");
  std::string protocol = upgrade ? std::string(*upgrade) : std::string();
  stripHopByHop(response_->headers);
  if (!protocol.empty()) {
    response_->headers.add("upgrade", protocol);
  }
  tunnel_ = true;
  response_headers_seen_ = true;
  if (decoder_ != nullptr) {
    decoder_->decodeHeaders(std::move(response_), false);
  }
  return 0;
}

int Http1ClientConnection::onBody(llhttp_t* p, const char* at, size_t len) {
  auto* self = static_cast<Http1ClientConnection*>(p->data);
  if (self->decoder_ == nullptr) {
    return 0;
  }
  evbuffer_add(self->body_buffer_, at, len);
  if (evbuffer_get_length(self->body_buffer_) >= kBodyFlushThreshold) {
    self->flushBody(false);
  }
  return 0;
}

void Http1ClientConnection::flushBody(bool end_stream) {
  if (decoder_ == nullptr) {
    evbuffer_drain(body_buffer_, evbuffer_get_length(body_buffer_));
    return;
  }
  decoder_->decodeData(body_buffer_, end_stream);
}

int Http1ClientConnection::onMessageComplete(llhttp_t* p) {
  auto* self = static_cast<Http1ClientConnection*>(p->data);
  if (!self->response_headers_seen_ || self->tunnel_) {
    return 0;  // End of a 1xx message (the final response follows) or of the 101 head.
  }
  if (self->header_reader_.inValue()) {
    self->finishHeader();
  }
  if (self->header_reader_.firstInvalid() != nullptr) {
    return HPE_USER;
  }
  // llhttp counts content_length down while reading the body, so the "no body" decision made
  // at headers-complete time is the one that counts.
  if (self->decoder_ != nullptr && !self->response_without_body_) {
    if (!self->trailers_.empty()) {
      if (evbuffer_get_length(self->body_buffer_) > 0) {
        self->flushBody(false);
      }
      if (self->decoder_) {
        HeaderMap trailers = std::move(self->trailers_);
        self->trailers_ = HeaderMap();
        self->decoder_->decodeTrailers(std::move(trailers));
      }
    } else {
      self->flushBody(true);
    }
  }
  if (!self->request_complete_) {
    // The upstream answered before the request body finished; the connection cannot be reused.
    self->go_away_ = true;
  }
  self->completeStream();
  return HPE_PAUSED;
}

void Http1ClientConnection::completeStream() {
  stream_active_ = false;
  decoder_ = nullptr;
  stream_callbacks_ = nullptr;
  ++completed_streams_;
  read_disable_.clear(connection_);
  if (go_away_) {
    callbacks_.onGoAway();  // the pool closes the connection instead of keeping it idle
  }
  callbacks_.onStreamClosed();
}

void Http1ClientConnection::failStream(StreamResetReason reason, std::string_view detail) {
  if (!stream_active_) {
    return;
  }
  auto* cb = stream_callbacks_;
  stream_active_ = false;
  decoder_ = nullptr;
  stream_callbacks_ = nullptr;
  if (cb) {
    cb->onResetStream(reason, detail);
  }
  callbacks_.onStreamClosed();
}

void Http1ClientConnection::resetStream(StreamResetReason) {
  // No stream reset in HTTP/1.1: the connection must go. A tunnel's last bytes (a WebSocket
  // close frame sent just before the client hung up) still reach the upstream.
  stream_active_ = false;
  decoder_ = nullptr;
  stream_callbacks_ = nullptr;
  dead_ = true;
  connection_.close(tunnel_ ? network::CodecConnection::CloseType::FlushWrite
                            : network::CodecConnection::CloseType::NoFlush);
}

void Http1ClientConnection::readDisable(bool disable) { read_disable_.apply(connection_, disable); }

void Http1ClientConnection::onUnderlyingConnectionAboveWriteBufferHighWatermark() {
  forwardWatermark(stream_active_, stream_callbacks_, true);
}

void Http1ClientConnection::onUnderlyingConnectionBelowWriteBufferLowWatermark() {
  forwardWatermark(stream_active_, stream_callbacks_, false);
}

void Http1ClientConnection::onTlsFailure() {
  dead_ = true;
  failStream(StreamResetReason::TlsFailure, "upstream TLS failure");
}

void Http1ClientConnection::onConnectionClosed(bool connect_failed) {
  if (dead_ && !stream_active_) {
    return;
  }
  dead_ = true;
  if (!stream_active_) {
    return;
  }
  if (tunnel_) {
    // The upstream closed its side of the tunnel: the response ends here.
    flushBody(true);
    if (stream_active_) {
      completeStream();
    }
    return;
  }
  // A close-delimited body ends at EOF.
  if (response_headers_seen_ && llhttp_message_needs_eof(&parser_)) {
    if (llhttp_finish(&parser_) == HPE_OK) {
      if (stream_active_) {
        flushBody(true);
        completeStream();
      }
      return;
    }
  }
  StreamResetReason reason = connect_failed ? StreamResetReason::ConnectionFailure
                                            : StreamResetReason::ConnectionTermination;
  failStream(reason, connect_failed ? "upstream connect failed"
                                    : (any_response_bytes_ ? "upstream closed mid-response"
                                                           : "upstream closed before response"));
}

}  // namespace bulwark::http
