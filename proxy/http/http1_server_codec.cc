#include "proxy/http/http1_server_codec.h"

#include <charconv>
#include <cstring>

#include <fmt/format.h>

#include "common/ascii.h"
#include "common/assert.h"

namespace bulwark::http {
namespace {
// Rest of a Content-Length body read and dropped after an early answer, rather than closing.
constexpr uint64_t kDiscardBodyLimit = 64UL * 1024;

constexpr size_t kBodyFlushThreshold = 64UL * 1024;

// Names the smuggling shapes llhttp rejects before our own checks run, so the 400's detail (and
// the protocol-error metric label) says which rule was broken instead of an llhttp error code.
std::string llhttpErrorDetails(llhttp_errno_t err, const char* reason) {
  switch (err) {
    case HPE_UNEXPECTED_CONTENT_LENGTH:
      // "Content-Length can't be present with Transfer-Encoding" or "Duplicate Content-Length".
      return reason != nullptr && std::strstr(reason, "Transfer-Encoding") != nullptr
                 ? "http1.content_length_and_transfer_encoding"
                 : "http1.duplicate_content_length";
    case HPE_INVALID_CONTENT_LENGTH: return "http1.invalid_content_length";
    case HPE_INVALID_TRANSFER_ENCODING: return "http1.invalid_transfer_encoding";
    case HPE_INVALID_CHUNK_SIZE: return "http1.invalid_chunk_size";
    case HPE_INVALID_HEADER_TOKEN:
      // "Invalid header value char" (NUL, controls) or a bad name ("Transfer-Encoding : x").
      return reason != nullptr && std::strstr(reason, "value") != nullptr
                 ? "http1.invalid_header_value"
                 : "http1.invalid_header_name";
    default: return fmt::format("http1.codec_error.{}", llhttp_errno_name(err));
  }
}

// "HTTP/1.1 <status> <reason>\r\n", the start of every response (no format string parsed).
void putStatusLine(HeadWriter& out, uint32_t status, std::string_view reason) {
  char digits[10];
  const auto end = std::to_chars(digits, digits + sizeof(digits), status).ptr;
  out.put("HTTP/1.1 ")
      .put(std::string_view(digits, static_cast<size_t>(end - digits)))
      .put(" ")
      .put(reason)
      .crlf();
}

}  // namespace

Http1ServerConnection::Http1ServerConnection(network::CodecConnection& connection,
                                             ServerConnectionCallbacks& callbacks,
                                             const ServerCodecLimits& limits)
    : connection_(connection), callbacks_(callbacks), limits_(limits) {
  llhttp_init(&parser_, HTTP_REQUEST, &parserSettings());
  parser_.data = this;
}

Http1ServerConnection::~Http1ServerConnection() {
  if (body_buffer_ != nullptr) {
    evbuffer_free(body_buffer_);
  }
}

bool Http1ServerConnection::betweenRequests() const {
  // The last exchange is over on both sides and no byte of the next request reached llhttp
  // (request_complete_ resets the smuggling scan; scan_started_ is the next request's first byte).
  return request_complete_ && response_complete_ && !stream_active_ && !dispatching_ && !dead_ &&
         !paused_ && !tunnel_input_ && !upgrade_requested_ && !close_after_response_ &&
         !draining_ && !scan_started_ &&
         (body_buffer_ == nullptr || evbuffer_get_length(body_buffer_) == 0);
}

const llhttp_settings_t& Http1ServerConnection::parserSettings() {
  // The same callbacks for every connection (llhttp keeps a pointer): one copy per process
  // instead of one per connection.
  static const llhttp_settings_t settings = [] {
    llhttp_settings_t s;
    llhttp_settings_init(&s);
    s.on_message_begin = &Http1ServerConnection::onMessageBegin;
    s.on_url = &Http1ServerConnection::onUrl;
    s.on_header_field = &Http1ServerConnection::onHeaderField;
    s.on_header_value = &Http1ServerConnection::onHeaderValue;
    s.on_headers_complete = &Http1ServerConnection::onHeadersComplete;
    s.on_body = &Http1ServerConnection::onBody;
    s.on_chunk_header = &Http1ServerConnection::onChunkHeader;
    s.on_message_complete = &Http1ServerConnection::onMessageComplete;
    return s;
  }();
  return settings;
}

evbuffer* Http1ServerConnection::bodyBuffer() {
  // Made with the first body: an idle keep-alive connection and bodiless requests hold none.
  if (body_buffer_ == nullptr) {
    body_buffer_ = evbuffer_new();
    BULWARK_RELEASE_ASSERT(body_buffer_ != nullptr, "evbuffer_new failed");
  }
  return body_buffer_;
}

bool Http1ServerConnection::scanForSmuggling(const char* data, size_t len, std::string& details) {
  // Only the header section (and trailers) is scanned; llhttp itself validates chunk framing.
  // Every rule is about a '\n' and the byte after it, so those bytes go through the full check
  // and the run up to the next '\n' is skipped with memchr, keeping only what the rules read
  // later (the last two bytes, and whether a byte other than CR or LF has been seen).
  const auto step = [&](char c) {
    if (c == '\n' && prev_byte_ != '\r') {
      details = "http1.bare_lf";
      return false;
    }
    if ((c == ' ' || c == '\t') && prev_byte_ == '\n' && prev_prev_byte_ == '\r') {
      details = "http1.obs_fold";
      return false;
    }
    if (c != '\r' && c != '\n') {
      scan_started_ = true;
    }
    if (c == '\n' && prev_byte_ == '\r' && prev_prev_byte_ == '\n' && scan_started_) {
      // End of the header section ("\r\n\r\n"): the body is not scanned.
      scanning_headers_ = false;
    }
    prev_prev_byte_ = prev_byte_;
    prev_byte_ = c;
    return true;
  };
  size_t i = 0;
  while (i < len && scanning_headers_) {
    const char c = data[i++];
    if (!step(c)) {
      return false;
    }
    if (c == '\n' || !scanning_headers_) {
      continue;  // the byte after a '\n' gets the full check too
    }
    // data[i, stop) holds no '\n' and follows a byte that is not one: no rule can fire in it.
    const void* newline = std::memchr(data + i, '\n', len - i);
    const size_t stop =
        newline != nullptr ? static_cast<size_t>(static_cast<const char*>(newline) - data) : len;
    if (stop == i) {
      continue;
    }
    for (size_t k = i; k < stop && !scan_started_; ++k) {
      scan_started_ = data[k] != '\r';
    }
    prev_prev_byte_ = stop - i >= 2 ? data[stop - 2] : prev_byte_;
    prev_byte_ = data[stop - 1];
    i = stop;
  }
  return true;
}

Status Http1ServerConnection::dispatch(evbuffer* input) {
  if (dead_) {
    evbuffer_drain(input, evbuffer_get_length(input));
    return Status::error("connection closed");
  }
  if (dispatching_) {
    return Status::ok();
  }
  dispatching_ = true;
  Status result = Status::ok();
  while (!dead_ && !paused_ && evbuffer_get_length(input) > 0) {
    if (tunnel_input_) {
      // Bytes of the switched-to protocol: relayed while the stream lives, dropped after it.
      if (decoder_ != nullptr) {
        decoder_->decodeData(input, false);
      } else {
        evbuffer_drain(input, evbuffer_get_length(input));
      }
      break;
    }
    evbuffer_iovec vec;
    if (evbuffer_peek(input, -1, nullptr, &vec, 1) < 1) {
      break;
    }
    const char* data = static_cast<const char*>(vec.iov_base);
    size_t len = vec.iov_len;
    std::string details;
    if (scanning_headers_ && !scanForSmuggling(data, len, details)) {
      result = sendProtocolError(400, details);
      break;
    }
    llhttp_errno_t err = llhttp_execute(&parser_, data, len);
    if (dead_) {
      break;
    }
    if (err == HPE_PAUSED) {
      auto consumed = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
      evbuffer_drain(input, consumed);
      if (trailer_scan_pause_) {
        // Stopped at the last chunk: the next pass scans the trailer section, then parses it.
        trailer_scan_pause_ = false;
        llhttp_resume(&parser_);
        continue;
      }
      paused_ = true;
      if (!stream_active_) {
        // The response already finished before the request did: continue with the next one.
        paused_ = false;
        llhttp_resume(&parser_);
      }
      continue;
    }
    if (err == HPE_PAUSED_UPGRADE && upgrade_requested_) {
      // The upgrade request ends here; what follows belongs to the protocol it asked for.
      auto consumed = static_cast<size_t>(llhttp_get_error_pos(&parser_) - data);
      evbuffer_drain(input, consumed);
      tunnel_input_ = true;
      continue;
    }
    if (err != HPE_OK) {
      if (err == HPE_USER) {
        // A callback already chose the reply (413/431/...); it set dead_ or wrote the response.
        result = Status::error("request rejected");
        break;
      }
      result = sendProtocolError(400, llhttpErrorDetails(err, llhttp_get_error_reason(&parser_)));
      break;
    }
    evbuffer_drain(input, len);
  }
  if (!dead_ && decoder_ != nullptr && body_buffer_ != nullptr &&
      evbuffer_get_length(body_buffer_) > 0) {
    flushBody(false);
  }
  dispatching_ = false;
  if (!result.isOk()) {
    return result;
  }
  return dead_ ? Status::error("connection closing") : Status::ok();
}

int Http1ServerConnection::onMessageBegin(llhttp_t* p) {
  auto* self = static_cast<Http1ServerConnection*>(p->data);
  self->request_ = std::make_unique<RequestHeaders>();
  self->header_reader_.reset();
  self->in_trailers_ = false;
  self->trailers_ = HeaderMap();
  self->body_bytes_ = 0;
  self->request_complete_ = false;
  self->response_started_ = false;
  self->response_complete_ = false;
  self->response_chunked_ = false;
  self->response_no_body_ = false;
  self->expect_continue_ = false;
  self->discard_rest_ = false;
  self->upgrade_requested_ = false;
  self->stream_callbacks_ = nullptr;
  return 0;
}

int Http1ServerConnection::onUrl(llhttp_t* p, const char* at, size_t len) {
  auto* self = static_cast<Http1ServerConnection*>(p->data);
  if (!self->header_reader_.count(len, self->limits_.max_request_headers_bytes)) {
    self->sendProtocolError(431, "http1.request_line_too_large");
    return HPE_USER;
  }
  self->request_->path.append(at, len);
  return 0;
}

void Http1ServerConnection::finishHeader() {
  header_reader_.finish(in_trailers_ ? trailers_ : request_->headers);
}

int Http1ServerConnection::onHeaderField(llhttp_t* p, const char* at, size_t len) {
  auto* self = static_cast<Http1ServerConnection*>(p->data);
  if (!self->header_reader_.count(len, self->limits_.max_request_headers_bytes)) {
    self->sendProtocolError(431, "http1.headers_too_large");
    return HPE_USER;
  }
  self->header_reader_.appendName({at, len},
                                  self->in_trailers_ ? self->trailers_ : self->request_->headers);
  return 0;
}

int Http1ServerConnection::onHeaderValue(llhttp_t* p, const char* at, size_t len) {
  auto* self = static_cast<Http1ServerConnection*>(p->data);
  if (!self->header_reader_.hasName()) {
    // ": value": without this the value would be glued onto the next header's value.
    self->sendProtocolError(400, "http1.invalid_header_name");
    return HPE_USER;
  }
  if (!self->header_reader_.count(len, self->limits_.max_request_headers_bytes)) {
    self->sendProtocolError(431, "http1.headers_too_large");
    return HPE_USER;
  }
  self->header_reader_.appendValue({at, len});
  return 0;
}

int Http1ServerConnection::onHeadersComplete(llhttp_t* p) {
  auto* self = static_cast<Http1ServerConnection*>(p->data);
  self->finishHeader();
  return self->headersComplete();
}

int Http1ServerConnection::headersComplete() {
  if (parser_.http_major != 1) {
    // llhttp accepts any one-digit version; only HTTP/1.x is spoken here (RFC 9110 §15.6.6).
    sendProtocolError(505, "http1.version_not_supported");
    return HPE_USER;
  }
  if (request_->headers.size() > limits_.max_headers_count) {
    sendProtocolError(431, "http1.too_many_headers");
    return HPE_USER;
  }
  if (const char* invalid = header_reader_.firstInvalid()) {
    sendProtocolError(400, invalid);
    return HPE_USER;
  }
  request_->method = llhttp_method_name(static_cast<llhttp_method_t>(parser_.method));
  request_->http_major = parser_.http_major;
  request_->http_minor = parser_.http_minor;
  http_minor_ = parser_.http_minor;
  request_->scheme = "http";
  if (request_->path.empty() || (request_->path[0] != '/' && request_->method != "OPTIONS")) {
    // Absolute-form and authority-form (CONNECT) targets are not proxied.
    sendProtocolError(400, "http1.unsupported_request_target");
    return HPE_USER;
  }

  auto& headers = request_->headers;
  size_t host_count = headers.count("host");
  if (host_count > 1 || (host_count == 0 && parser_.http_minor >= 1)) {
    sendProtocolError(400, "http1.invalid_host");
    return HPE_USER;
  }
  if (auto host = headers.get("host")) {
    request_->authority = std::string(*host);
  }

  // Request smuggling shapes (RFC 9112 §6.3): TE with CL, differing duplicate CL, odd TE.
  bool has_te = headers.has("transfer-encoding");
  size_t cl_count = headers.count("content-length");
  if (has_te && cl_count > 0) {
    sendProtocolError(400, "http1.content_length_and_transfer_encoding");
    return HPE_USER;
  }
  if (cl_count > 1) {
    // Strict, like llhttp (which already rejects any duplicate before we get here): even
    // identical duplicates are refused.
    sendProtocolError(400, "http1.duplicate_content_length");
    return HPE_USER;
  }
  if (has_te) {
    auto te = headers.getJoined("transfer-encoding");
    if (!te || !equalsIgnoreCase(*te, "chunked")) {
      sendProtocolError(400, "http1.invalid_transfer_encoding");
      return HPE_USER;
    }
  }
  bool chunked = (parser_.flags & F_CHUNKED) != 0;
  bool has_body =
      chunked || ((parser_.flags & F_CONTENT_LENGTH) != 0 && parser_.content_length > 0);
  if (limits_.max_request_body_bytes > 0 && (parser_.flags & F_CONTENT_LENGTH) != 0 &&
      parser_.content_length > limits_.max_request_body_bytes) {
    sendProtocolError(413, "http1.request_body_too_large");
    return HPE_USER;
  }

  // Keep-alive is decided from the request's own headers before hop-by-hop stripping.
  request_keep_alive_ = llhttp_should_keep_alive(&parser_) != 0;
  // "Upgrade: h2c" alone is ignored (the client goes on in HTTP/1.1, as with Envoy); any other
  // switch goes to the stream, which tunnels it or refuses it. Either way the connection ends
  // with it: after a refusal what follows belongs to the other protocol.
  auto upgrade_to = headers.get("upgrade");
  if (parser_.upgrade != 0 &&
      !(upgrade_to && equalsIgnoreCase(trimOws(std::string(*upgrade_to)), "h2c"))) {
    if (chunked) {
      // Where the body ends and the new protocol starts would rest on chunk framing the
      // upstream may read differently.
      sendProtocolError(400, "http1.upgrade_with_chunked_body");
      return HPE_USER;
    }
    request_->upgrade = upgrade_to ? trimOws(std::string(*upgrade_to)) : std::string();
    toLowerInPlace(request_->upgrade);
    if (request_->upgrade.empty()) {
      request_->upgrade = "unnamed";  // Connection: upgrade without an Upgrade value
    }
    upgrade_requested_ = true;
    request_keep_alive_ = false;
  }
  if (auto expect = headers.get("expect")) {
    if (equalsIgnoreCase(*expect, "100-continue")) {
      expect_continue_ = has_body;
      headers.remove("expect");
    }
  }
  is_head_ = request_->method == "HEAD";
  stripHopByHop(headers);
  if (chunked) {
    // The body is re-framed by the upstream codec; the hop-by-hop strip removed TE already.
  }

  request_has_body_ = has_body;
  // A request without a body is complete now: a local reply sent from decodeHeaders must not
  // think the request is still being read (that would needlessly close the connection). An
  // upgrade request never completes: the tunnel is its body.
  request_complete_ = !has_body && !upgrade_requested_;
  stream_active_ = true;
  decoder_ = &callbacks_.newStream(*this);
  in_trailers_ = true;  // Any header callbacks from now on belong to chunked trailers.
  // The body is not scanned (onChunkHeader turns scanning back on for a trailer section).
  scanning_headers_ = false;
  prev_byte_ = prev_prev_byte_ = 0;
  auto* decoder = decoder_;
  decoder->decodeHeaders(std::move(request_), request_complete_);
  if (dead_) {
    return HPE_USER;
  }
  if (expect_continue_ && !response_started_ && decoder_ != nullptr) {
    encode100Continue();
  }
  return 0;
}

int Http1ServerConnection::onBody(llhttp_t* p, const char* at, size_t len) {
  auto* self = static_cast<Http1ServerConnection*>(p->data);
  self->body_bytes_ += len;
  if (self->limits_.max_request_body_bytes > 0 &&
      self->body_bytes_ > self->limits_.max_request_body_bytes) {
    if (!self->response_started_) {
      self->sendProtocolError(413, "http1.request_body_too_large");
    } else {
      self->resetStream(StreamResetReason::LocalReset);
    }
    return HPE_USER;
  }
  if (self->decoder_ == nullptr) {
    return 0;  // Response already complete; discard the rest.
  }
  evbuffer* body = self->bodyBuffer();
  evbuffer_add(body, at, len);
  if (evbuffer_get_length(body) >= kBodyFlushThreshold) {
    self->flushBody(false);
  }
  return 0;
}

int Http1ServerConnection::onChunkHeader(llhttp_t* p) {
  auto* self = static_cast<Http1ServerConnection*>(p->data);
  if (p->content_length != 0) {
    return 0;
  }
  // The last chunk ("0\r\n") was read: a trailer section follows, with the same hygiene rules as
  // the header section. Pause so dispatch() scans it before llhttp parses it; the scan starts as
  // if at the beginning of a line.
  self->scanning_headers_ = true;
  self->prev_prev_byte_ = '\r';
  self->prev_byte_ = '\n';
  self->scan_started_ = true;
  self->trailer_scan_pause_ = true;
  return HPE_PAUSED;
}

void Http1ServerConnection::flushBody(bool end_stream) {
  const size_t buffered = body_buffer_ != nullptr ? evbuffer_get_length(body_buffer_) : 0;
  if (decoder_ == nullptr) {
    if (buffered > 0) {
      evbuffer_drain(body_buffer_, buffered);
    }
    return;
  }
  if (buffered == 0 && !end_stream) {
    return;
  }
  decoder_->decodeData(bodyBuffer(), end_stream);
}

int Http1ServerConnection::onMessageComplete(llhttp_t* p) {
  auto* self = static_cast<Http1ServerConnection*>(p->data);
  if (self->header_reader_.inValue()) {
    self->finishHeader();
  }
  if (self->upgrade_requested_) {
    // Not the end of the stream: llhttp stops next (HPE_PAUSED_UPGRADE) and the tunnel follows.
    self->flushBody(false);
    return self->dead_ ? HPE_USER : 0;
  }
  self->request_complete_ = true;
  self->scanning_headers_ = true;
  self->scan_started_ = false;
  self->prev_byte_ = self->prev_prev_byte_ = 0;
  if (const char* invalid = self->header_reader_.firstInvalid()) {
    self->sendProtocolError(400, invalid);
    return HPE_USER;
  }
  if (self->decoder_ != nullptr) {
    if (!self->trailers_.empty()) {
      self->flushBody(false);
      if (self->decoder_ != nullptr) {
        HeaderMap trailers = std::move(self->trailers_);
        self->trailers_ = HeaderMap();
        self->decoder_->decodeTrailers(std::move(trailers));
      }
    } else if (self->request_has_body_) {
      self->flushBody(true);
    }
    // A request without a body was already ended in decodeHeaders(end_stream=true).
  }
  if (self->dead_) {
    return HPE_USER;
  }
  if (self->discard_rest_) {
    self->discard_rest_ = false;
    if (self->response_complete_) {
      // The answered request's dropped body is over: go straight on to the next request.
      return 0;
    }
    // The response started before the request ended and is still being sent: a pipelined
    // request must wait for it like any other, or its parsing would reset the response state
    // under the stream still writing (and an error reply would land inside that body).
  }
  if (self->response_complete_ && self->stream_active_) {
    self->onResponseComplete();
    if (self->dead_) {
      return HPE_USER;
    }
  }
  // One request at a time: pause so pipelined requests wait for this response.
  return HPE_PAUSED;
}

Status Http1ServerConnection::sendProtocolError(uint32_t status, std::string details) {
  if (dead_) {
    return Status::error(details);
  }
  callbacks_.onProtocolError(details);
  // A finished response belongs to the previous request (the scan of a pipelined request runs
  // before llhttp starts the new message and resets the response state): answer this one.
  if (!response_started_ || response_complete_) {
    std::string body = fmt::format("{}\n", details);
    std::string out = fmt::format(
        "HTTP/1.1 {} {}\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: "
        "close\r\n\r\n{}",
        status, reasonPhrase(status), body.size(), body);
    connection_.write(out);
  }
  dead_ = true;
  if (stream_active_ && stream_callbacks_ != nullptr) {
    auto* cb = stream_callbacks_;
    stream_callbacks_ = nullptr;
    stream_active_ = false;
    decoder_ = nullptr;
    cb->onResetStream(StreamResetReason::ProtocolError, details);
  }
  stream_active_ = false;
  decoder_ = nullptr;
  connection_.close(network::CodecConnection::CloseType::FlushWrite);
  return Status::error(details);
}

void Http1ServerConnection::encode100Continue() {
  if (response_started_ || dead_) {
    return;
  }
  connection_.write(std::string_view("HTTP/1.1 100 Continue\r\n\r\n"));
}

void Http1ServerConnection::encodeHeaders(const ResponseHeaders& headers, bool end_stream) {
  if (dead_) {
    return;
  }
  response_started_ = true;
  uint32_t status = headers.status;
  if (status == 101) {
    encodeSwitchingProtocols(headers);
    return;
  }
  response_no_body_ = is_head_ || status == 204 || status == 304 || (status >= 100 && status < 200);
  if (!request_keep_alive_ || draining_) {
    close_after_response_ = true;
  }
  const std::string_view reason = reasonPhrase(status);
  // Status line, the headers, a framing line, a connection line, the blank line.
  const size_t bound = 9 + 10 + 1 + reason.size() + 2 + headLength(headers.headers) + 28 + 24 + 2;
  HeadWriter out(connection_.reserveOutput(bound));
  putStatusLine(out, status, reason);
  bool has_content_length = false;
  for (const auto& [stored_name, value] : headers.headers.entries()) {
    // Compared as string_view: lengths first, no memcmp call for names of another length.
    const std::string_view name = stored_name;
    if (name == "connection" || name == "transfer-encoding" || name == "keep-alive") {
      continue;
    }
    if (name == "content-length") {
      has_content_length = true;
    }
    out.field(name, value);
  }
  if (!has_content_length && !response_no_body_) {
    if (end_stream) {
      out.put("content-length: 0\r\n");
    } else if (http_minor_ >= 1) {
      response_chunked_ = true;
      out.put("transfer-encoding: chunked\r\n");
    } else {
      close_after_response_ = true;  // HTTP/1.0: the body ends at close.
    }
  }
  if (!request_complete_ && !close_after_response_) {
    // Answered before the request finished (e.g. a local 429/503 to a POST). A short rest of a
    // Content-Length body is read and dropped, keeping the connection (what sheds load cheaply:
    // no reconnect per rejection). Otherwise the rest would parse as a new request, so the
    // connection closes, and says so now: a client that is not told would send its next request
    // into a closing connection. 100-continue clients may never send the body: close.
    const bool chunked = (parser_.flags & F_CHUNKED) != 0;
    if (!chunked && !expect_continue_ && parser_.content_length <= kDiscardBodyLimit) {
      discard_rest_ = true;
    } else {
      close_after_response_ = true;
    }
  }
  if (close_after_response_) {
    out.put("connection: close\r\n");
  } else if (http_minor_ == 0) {
    out.put("connection: keep-alive\r\n");
  }
  out.crlf();
  BULWARK_ASSERT(out.size() <= bound);
  connection_.commitOutput(out.room(), out.size());
  if (end_stream) {
    onResponseComplete();
  }
}

void Http1ServerConnection::encodeSwitchingProtocols(const ResponseHeaders& headers) {
  if (!upgrade_requested_) {
    // A 101 to a request that did not ask to switch: nothing sane can follow on this connection.
    resetStream(StreamResetReason::ProtocolError);
    return;
  }
  close_after_response_ = true;
  std::string out = "HTTP/1.1 101 Switching Protocols\r\n";
  for (const auto& [name, value] : headers.headers.entries()) {
    if (name == "connection" || name == "transfer-encoding" || name == "keep-alive" ||
        name == "content-length") {
      continue;
    }
    out.append(name).append(": ").append(value).append("\r\n");
  }
  out.append("connection: upgrade\r\n\r\n");
  connection_.write(out);
}

void Http1ServerConnection::writeChunk(evbuffer* data) {
  size_t len = evbuffer_get_length(data);
  if (len == 0) {
    return;
  }
  char header[32];
  int n = std::snprintf(header, sizeof(header), "%zx\r\n", len);
  connection_.write(header, static_cast<size_t>(n));
  connection_.write(data);
  connection_.write(std::string_view("\r\n"));
}

void Http1ServerConnection::encodeData(evbuffer* data, bool end_stream) {
  if (dead_ || response_complete_) {
    evbuffer_drain(data, evbuffer_get_length(data));
    return;
  }
  if (response_no_body_) {
    evbuffer_drain(data, evbuffer_get_length(data));
  } else if (response_chunked_) {
    writeChunk(data);
    if (end_stream) {
      connection_.write(std::string_view("0\r\n\r\n"));
    }
  } else {
    connection_.write(data);
  }
  if (end_stream) {
    onResponseComplete();
  }
}

void Http1ServerConnection::encodeTrailers(const HeaderMap& trailers) {
  if (dead_ || response_complete_) {
    return;
  }
  if (response_chunked_) {
    std::string out = "0\r\n";
    for (const auto& [name, value] : trailers.entries()) {
      out.append(name).append(": ").append(value).append("\r\n");
    }
    out.append("\r\n");
    connection_.write(out);
  }
  onResponseComplete();
}

void Http1ServerConnection::onResponseComplete() {
  response_complete_ = true;
  if (!request_complete_ && discard_rest_ && !close_after_response_) {
    // Keep reading: onBody drops the rest (no decoder any more), onMessageComplete lets the next
    // request start.
    decoder_ = nullptr;
    stream_active_ = false;
    stream_callbacks_ = nullptr;
    read_disable_.clear(connection_);
    return;
  }
  if (!request_complete_) {
    // Stop delivering the rest of the request body; the connection closes after the response.
    close_after_response_ = true;
    decoder_ = nullptr;
    stream_active_ = false;
    stream_callbacks_ = nullptr;
    dead_ = true;
    connection_.close(network::CodecConnection::CloseType::FlushWrite);
    return;
  }
  stream_active_ = false;
  decoder_ = nullptr;
  stream_callbacks_ = nullptr;
  read_disable_.clear(connection_);
  if (close_after_response_) {
    dead_ = true;
    connection_.close(network::CodecConnection::CloseType::FlushWrite);
    return;
  }
  if (paused_) {
    paused_ = false;
    llhttp_resume(&parser_);
    // Pipelined requests already buffered: continue after the current callback stack unwinds.
    connection_.dispatchBufferedLater();
  }
}

void Http1ServerConnection::resetStream(StreamResetReason) {
  if (dead_) {
    return;
  }
  dead_ = true;
  stream_callbacks_ = nullptr;
  decoder_ = nullptr;
  stream_active_ = false;
  // HTTP/1 has no stream reset: close the connection after what was already written, so the
  // client sees a response shorter than its framing promised (truncation is detectable).
  connection_.close(network::CodecConnection::CloseType::FlushWrite);
}

void Http1ServerConnection::readDisable(bool disable) { read_disable_.apply(connection_, disable); }

void Http1ServerConnection::onUnderlyingConnectionAboveWriteBufferHighWatermark() {
  forwardWatermark(stream_active_, stream_callbacks_, true);
}

void Http1ServerConnection::onUnderlyingConnectionBelowWriteBufferLowWatermark() {
  forwardWatermark(stream_active_, stream_callbacks_, false);
}

void Http1ServerConnection::onConnectionClosed() {
  bool was_dead = dead_;
  dead_ = true;
  if (stream_active_ && stream_callbacks_ != nullptr && !was_dead) {
    auto* cb = stream_callbacks_;
    stream_callbacks_ = nullptr;
    stream_active_ = false;
    decoder_ = nullptr;
    cb->onResetStream(StreamResetReason::ConnectionTermination, "downstream connection closed");
  }
  stream_active_ = false;
  decoder_ = nullptr;
}

}  // namespace bulwark::http
