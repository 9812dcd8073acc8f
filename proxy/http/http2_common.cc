#include "proxy/http/http2_common.h"

#include <algorithm>
#include <cstring>

#include "common/assert.h"

namespace bulwark::http {
namespace {

// Output is handed to the connection in pieces this large during one send loop, so the
// connection's high watermark can trip (and stop DATA) before the loop drains every window.
constexpr size_t kOutputChunk = 64UL * 1024;

bool hasUpper(std::string_view s) {
  return std::any_of(s.begin(), s.end(), [](char c) { return c >= 'A' && c <= 'Z'; });
}

Http2ConnectionBase* base(void* user_data) { return static_cast<Http2ConnectionBase*>(user_data); }

}  // namespace

bool isHttp2ConnectionSpecificHeader(std::string_view name) {
  return name == "connection" || name == "keep-alive" || name == "proxy-connection" ||
         name == "transfer-encoding" || name == "upgrade" || name == "http2-settings";
}

namespace {

/**
 * Headers whose value is new on every request (request ids, trace context, a propagated
 * deadline, an idempotency key). Indexed, each would enter the HPACK dynamic table once, never
 * be referenced again and evict entries that would: nghttp2's table search and eviction then
 * cost about 3.8 k instructions per proxied request on h2c -> h2c (callgrind).
 */
bool valueIsPerRequest(std::string_view name) {
  switch (name.size()) {
    case 2: return name == "b3";
    case 10: return name == "tracestate";
    case 11: return name == "traceparent" || name == "x-b3-spanid";
    case 12: return name == "x-request-id" || name == "x-b3-traceid" || name == "grpc-timeout";
    case 15: return name == "idempotency-key";
    case 17: return name == "x-b3-parentspanid" || name == "x-client-trace-id";
    default: return false;
  }
}

}  // namespace

void Http2HeaderBlock::add(std::string_view name, std::string_view value) {
  uint8_t flags = NGHTTP2_NV_FLAG_NONE;
  // Keep credentials out of the HPACK dynamic table (a CRIME-style oracle otherwise), and values
  // that are never sent twice.
  if (name == "authorization" || name == "proxy-authorization" ||
      (name == "cookie" && value.size() < 20) || valueIsPerRequest(name)) {
    flags = NGHTTP2_NV_FLAG_NO_INDEX;
  }
  nva_.push_back(nghttp2_nv{const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(name.data())),
                            const_cast<uint8_t*>(reinterpret_cast<const uint8_t*>(value.data())),
                            name.size(), value.size(), flags});
}

void appendRegularHeaders(const HeaderMap& headers, bool drop_host, Http2HeaderBlock& block,
                          LoweredNames& lowered) {
  for (const auto& [raw_name, value] : headers.entries()) {
    std::string_view name = raw_name;
    if (hasUpper(name)) {
      lowered.emplace_front(raw_name);
      toLowerInPlace(lowered.front());
      name = lowered.front();
    }
    if (name.empty() || name[0] == ':' || isHttp2ConnectionSpecificHeader(name)) {
      continue;
    }
    if (drop_host && name == "host") {
      continue;
    }
    // TE is connection-specific except for the one value HTTP/2 allows (gRPC needs it).
    if (name == "te" && value != "trailers") {
      continue;
    }
    block.add(name, value);
  }
}

// ---------------------------------------------------------------------------------------------
// Http2StreamBase

Http2StreamBase::Http2StreamBase(Http2ConnectionBase& parent) : parent_(parent) {}

Http2StreamBase::~Http2StreamBase() = default;

void Http2StreamBase::resetStream(StreamResetReason reason) {
  if (local_reset_ || closed_) {
    return;
  }
  local_reset_ = true;
  silenced_ = true;
  callbacks_ = nullptr;
  send_buf_.clear();
  recv_buf_.clear();
  pending_trailers_.reset();
  if (id_ == 0) {
    // Never submitted (client stream before encodeHeaders): nothing to tell the peer.
    parent_.removeStream(*this);
    return;
  }
  if (parent_.session_ != nullptr && !parent_.torn_down_) {
    nghttp2_submit_rst_stream(parent_.session_, NGHTTP2_FLAG_NONE, id_, resetCode(reason));
    parent_.scheduleFlush();
  }
}

void Http2StreamBase::readDisable(bool disable) {
  if (disable) {
    ++read_disable_count_;
    return;
  }
  if (read_disable_count_ == 0 || --read_disable_count_ > 0) {
    return;
  }
  if (unconsumed_bytes_ > 0 && !closed_ && id_ != 0 && !parent_.torn_down_) {
    nghttp2_session_consume_stream(parent_.session_, id_, unconsumed_bytes_);
    unconsumed_bytes_ = 0;
    parent_.scheduleFlush();
  }
}

void Http2StreamBase::submitHeaders(Http2HeaderBlock& block, bool end_stream) {
  if (parent_.torn_down_) {
    return;
  }
  nghttp2_data_provider provider;
  provider.source.ptr = this;
  provider.read_callback = &Http2StreamBase::onDataSourceRead;
  const nghttp2_data_provider* prd = end_stream ? nullptr : &provider;
  headers_submitted_ = true;
  if (end_stream) {
    local_end_requested_ = true;
  }
  if (parent_.server_) {
    int rv = nghttp2_submit_response(parent_.session_, id_, block.data(), block.size(), prd);
    (void)rv;  // Fails only when the stream is already gone; on_stream_close reports that.
  } else {
    int32_t id =
        nghttp2_submit_request(parent_.session_, nullptr, block.data(), block.size(), prd, this);
    if (id < 0) {
      // Out of stream ids or the session refuses requests: never sent, so safe to retry.
      parent_.deferReset(*this, StreamResetReason::RefusedStream,
                         std::string("http2.submit_failed.") + nghttp2_strerror(id));
      return;
    }
    id_ = id;
    parent_.by_id_[id_] = this;
  }
  parent_.scheduleFlush();
}

void Http2StreamBase::encodeDataImpl(evbuffer* data, bool end_stream) {
  if (!headers_submitted_ || local_reset_ || closed_ || local_end_requested_) {
    evbuffer_drain(data, evbuffer_get_length(data));
    return;
  }
  if (evbuffer_get_length(data) > 0) {
    evbuffer_add_buffer(send_buf_.get(), data);
  }
  if (end_stream) {
    local_end_requested_ = true;
  }
  if (!own_above_high_ && bufferedBytes() > kHttp2StreamHighWatermark) {
    own_above_high_ = true;
    updateWatermarkState();
  }
  resumeData();
  parent_.scheduleFlush();
}

void Http2StreamBase::encodeTrailersImpl(const HeaderMap& trailers) {
  if (!headers_submitted_ || local_reset_ || closed_ || local_end_requested_) {
    return;
  }
  if (trailers.empty()) {
    encodeDataImpl(network::emptyBuffer(), true);
    return;
  }
  pending_trailers_ = std::make_unique<HeaderMap>(trailers);
  local_end_requested_ = true;
  resumeData();
  parent_.scheduleFlush();
}

void Http2StreamBase::resumeData() {
  if (!data_deferred_ || id_ == 0 || closed_ || parent_.torn_down_) {
    return;
  }
  if (parent_.connection_above_high_ && bufferedBytes() > 0) {
    return;
  }
  if (bufferedBytes() == 0 && !local_end_requested_) {
    return;
  }
  data_deferred_ = false;
  nghttp2_session_resume_data(parent_.session_, id_);
  parent_.scheduleFlush();
}

void Http2StreamBase::notifyReset(StreamResetReason reason, std::string_view detail) {
  if (silenced_) {
    return;
  }
  silenced_ = true;
  StreamCallbacks* cb = callbacks_;
  callbacks_ = nullptr;
  if (cb != nullptr) {
    cb->onResetStream(reason, detail);
  }
}

void Http2StreamBase::updateWatermarkState() {
  bool above = own_above_high_ || parent_.connection_above_high_;
  if (above == notified_above_high_) {
    return;
  }
  notified_above_high_ = above;
  if (silenced_ || callbacks_ == nullptr) {
    return;
  }
  if (above) {
    callbacks_->onAboveWriteBufferHighWatermark();
  } else {
    callbacks_->onBelowWriteBufferLowWatermark();
  }
}

void Http2StreamBase::deliverBody(bool end_stream) {
  size_t frame_bytes = frame_body_bytes_;
  frame_body_bytes_ = 0;
  if (silenced_ || local_reset_) {
    recv_buf_.clear();
    if (frame_bytes > 0) {
      nghttp2_session_consume_stream(parent_.session_, id_, frame_bytes);
    }
    return;
  }
  decodeBody(recv_buf_.getOrEmpty(), end_stream);
  if (!closed_ && !local_reset_ && frame_bytes > 0) {
    consumeDelivered(frame_bytes);
  }
}

void Http2StreamBase::consumeDelivered(size_t bytes) {
  if (read_disable_count_ > 0) {
    unconsumed_bytes_ += bytes;
    return;
  }
  nghttp2_session_consume_stream(parent_.session_, id_, bytes);
}

ssize_t Http2StreamBase::onDataSourceRead(nghttp2_session* session, int32_t, uint8_t*,
                                          size_t length, uint32_t* data_flags,
                                          nghttp2_data_source* source, void*) {
  auto* stream = static_cast<Http2StreamBase*>(source->ptr);
  size_t avail = stream->bufferedBytes();
  if (stream->local_reset_) {
    stream->data_deferred_ = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  // Stop pulling body while the socket is backed up; resumed on the low watermark.
  if ((avail == 0 && !stream->local_end_requested_) ||
      (avail > 0 && stream->parent_.connection_above_high_)) {
    stream->data_deferred_ = true;
    return NGHTTP2_ERR_DEFERRED;
  }
  size_t n = std::min(length, avail);
  if (n > 0) {
    *data_flags |= NGHTTP2_DATA_FLAG_NO_COPY;
  }
  if (stream->local_end_requested_ && n == avail) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
    if (stream->pending_trailers_ != nullptr) {
      *data_flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      Http2HeaderBlock block;
      LoweredNames lowered;
      appendRegularHeaders(*stream->pending_trailers_, false, block, lowered);
      nghttp2_submit_trailer(session, stream->id_, block.data(), block.size());
      stream->pending_trailers_.reset();
    }
  }
  return static_cast<ssize_t>(n);
}

// ---------------------------------------------------------------------------------------------
// Http2ConnectionBase

Http2ConnectionBase::Http2ConnectionBase(network::CodecConnection& connection, bool server)
    : connection_(connection), server_(server) {
  flush_timer_ = connection_.dispatcher().createTimer([this] { onFlushTimer(); });
}

Http2ConnectionBase::~Http2ConnectionBase() {
  flush_timer_.reset();
  // No callbacks from here on: nghttp2_session_del raises none, and streams die silently.
  if (session_ != nullptr) {
    nghttp2_session_del(session_);
  }
  streams_.clear();
}

void Http2ConnectionBase::initSession(nghttp2_option* option,
                                      const std::vector<nghttp2_settings_entry>& settings) {
  nghttp2_session_callbacks* cbs = nullptr;
  BULWARK_RELEASE_ASSERT(nghttp2_session_callbacks_new(&cbs) == 0, "nghttp2 out of memory");
  nghttp2_session_callbacks_set_send_callback(cbs, &Http2ConnectionBase::onSend);
  nghttp2_session_callbacks_set_send_data_callback(cbs, &Http2ConnectionBase::onSendData);
  nghttp2_session_callbacks_set_on_begin_headers_callback(cbs,
                                                          &Http2ConnectionBase::onBeginHeadersCb);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &Http2ConnectionBase::onHeaderCb);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &Http2ConnectionBase::onFrameRecvCb);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(
      cbs, &Http2ConnectionBase::onDataChunkRecvCb);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs,
                                                         &Http2ConnectionBase::onStreamCloseCb);
  nghttp2_session_callbacks_set_on_frame_send_callback(cbs, &Http2ConnectionBase::onFrameSendCb);
  nghttp2_session_callbacks_set_on_frame_not_send_callback(cbs,
                                                           &Http2ConnectionBase::onFrameNotSendCb);
  nghttp2_session_callbacks_set_on_invalid_frame_recv_callback(
      cbs, &Http2ConnectionBase::onInvalidFrameRecvCb);
  int rv = server_ ? nghttp2_session_server_new2(&session_, cbs, this, option)
                   : nghttp2_session_client_new2(&session_, cbs, this, option);
  nghttp2_session_callbacks_del(cbs);
  BULWARK_RELEASE_ASSERT(rv == 0, "nghttp2 session creation failed");
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings.data(), settings.size());
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                        static_cast<int32_t>(kHttp2ConnectionWindow));
}

size_t Http2ConnectionBase::bufferedOutboundBytes() const {
  size_t n = 0;
  for (const auto& s : streams_) {
    n += s->bufferedBytes();
  }
  return n;
}

size_t Http2ConnectionBase::bufferedInboundBytes() const {
  size_t n = 0;
  for (const auto& s : streams_) {
    n += s->recv_buf_.length();
  }
  return n;
}

Status Http2ConnectionBase::dispatchImpl(evbuffer* input) {
  if (dead_) {
    evbuffer_drain(input, evbuffer_get_length(input));
    return Status::error(dead_detail_);
  }
  dispatching_ = true;
  while (!dead_ && evbuffer_get_length(input) > 0) {
    evbuffer_iovec vec;
    if (evbuffer_peek(input, -1, nullptr, &vec, 1) < 1) {
      break;
    }
    ssize_t rv =
        nghttp2_session_mem_recv(session_, static_cast<const uint8_t*>(vec.iov_base), vec.iov_len);
    if (rv < 0) {
      markDead(std::string("http2.codec_error.") + nghttp2_strerror(static_cast<int>(rv)));
      // Tell the peer when the session still lets us (it refuses after some fatal errors).
      nghttp2_session_terminate_session(session_, NGHTTP2_PROTOCOL_ERROR);
      break;
    }
    received_any_ = true;
    evbuffer_drain(input, static_cast<size_t>(rv));
  }
  dispatching_ = false;
  sendPendingFrames();
  if (dead_) {
    evbuffer_drain(input, evbuffer_get_length(input));
    return Status::error(dead_detail_);
  }
  return Status::ok();
}

void Http2ConnectionBase::sendPendingFrames() {
  if (session_ == nullptr || torn_down_ || dispatching_ || sending_) {
    return;
  }
  // While the peer is not reading, leave frames queued inside nghttp2: its outbound-ACK limit
  // then turns a SETTINGS/PING flood into NGHTTP2_ERR_FLOODED instead of unbounded output.
  // The low-watermark callback schedules the flush again.
  if (connection_above_high_ && !dead_) {
    return;
  }
  flush_timer_->disableTimer();
  sending_ = true;
  int rv = nghttp2_session_send(session_);
  sending_ = false;
  if (rv != 0) {
    markDead(std::string("http2.codec_error.") + nghttp2_strerror(rv));
  }
  writeOutput();
}

void Http2ConnectionBase::scheduleFlush() {
  // Inside dispatch (or an ongoing send loop) the pending frames go out before it returns.
  if (dispatching_ || sending_ || torn_down_) {
    return;
  }
  if (!flush_timer_->enabled()) {
    flush_timer_->enableTimer(std::chrono::microseconds(0));
  }
}

void Http2ConnectionBase::onFlushTimer() {
  runDeferredResets();
  sendPendingFrames();
  afterFlush();
}

void Http2ConnectionBase::deferReset(Http2StreamBase& stream, StreamResetReason reason,
                                     std::string detail) {
  deferred_resets_.push_back(DeferredReset{&stream, reason, std::move(detail)});
  if (!flush_timer_->enabled()) {
    flush_timer_->enableTimer(std::chrono::microseconds(0));
  }
}

void Http2ConnectionBase::runDeferredResets() {
  auto resets = std::move(deferred_resets_);
  deferred_resets_.clear();
  for (auto& r : resets) {
    if (r.stream->closed_) {
      continue;
    }
    r.stream->notifyReset(r.reason, r.detail);
    removeStream(*r.stream);
    onStreamRemoved();
  }
}

void Http2ConnectionBase::writeOutput() {
  if (output_.length() > 0) {
    connection_.write(output_.get());
  }
  output_.release();  // an idle connection holds no output buffer
}

void Http2ConnectionBase::markDead(std::string detail) {
  if (dead_) {
    return;
  }
  dead_ = true;
  dead_detail_ = std::move(detail);
}

void Http2ConnectionBase::onAboveHighWatermarkImpl() {
  if (connection_above_high_) {
    return;
  }
  connection_above_high_ = true;
  std::vector<Http2StreamBase*> snapshot;
  for (auto& s : streams_) {
    snapshot.push_back(s.get());
  }
  for (auto* s : snapshot) {
    if (!s->closed_) {
      s->updateWatermarkState();
    }
  }
}

void Http2ConnectionBase::onBelowLowWatermarkImpl() {
  if (!connection_above_high_) {
    return;
  }
  connection_above_high_ = false;
  std::vector<Http2StreamBase*> snapshot;
  for (auto& s : streams_) {
    snapshot.push_back(s.get());
  }
  for (auto* s : snapshot) {
    if (s->closed_) {
      continue;
    }
    s->resumeData();
    s->updateWatermarkState();
  }
  scheduleFlush();
}

void Http2ConnectionBase::resetAllStreams(StreamResetReason reason, std::string_view detail) {
  markDead(std::string(detail));
  torn_down_ = true;
  flush_timer_->disableTimer();
  deferred_resets_.clear();
  std::vector<Http2StreamBase*> snapshot;
  for (auto& s : streams_) {
    snapshot.push_back(s.get());
  }
  for (auto* s : snapshot) {
    if (s->closed_) {
      continue;
    }
    s->notifyReset(reason, detail);
    removeStream(*s);
  }
}

void Http2ConnectionBase::registerStream(Http2StreamBasePtr&& stream) {
  Http2StreamBase* raw = stream.get();
  streams_.push_back(std::move(stream));
  raw->self_ = std::prev(streams_.end());
  if (raw->id_ != 0) {
    by_id_[raw->id_] = raw;
  }
}

void Http2ConnectionBase::removeStream(Http2StreamBase& stream) {
  if (stream.closed_) {
    return;
  }
  stream.closed_ = true;
  stream.silenced_ = true;
  stream.callbacks_ = nullptr;
  if (stream.id_ != 0) {
    by_id_.erase(stream.id_);
  }
  std::erase_if(deferred_resets_, [&](const DeferredReset& r) { return r.stream == &stream; });
  Http2StreamBasePtr owned = std::move(*stream.self_);
  streams_.erase(stream.self_);
  // Callers may still be inside an encode call on this stream: destroy after the loop turn.
  connection_.dispatcher().deferredDelete(std::move(owned));
}

Http2StreamBase* Http2ConnectionBase::findStream(int32_t stream_id) {
  auto it = by_id_.find(stream_id);
  return it == by_id_.end() ? nullptr : it->second;
}

void Http2ConnectionBase::onInvalidFrame(const nghttp2_frame* frame, int) {
  if (frame->hd.stream_id != 0) {
    if (auto* stream = findStream(frame->hd.stream_id)) {
      stream->protocol_error_ = true;
    }
  }
}

ssize_t Http2ConnectionBase::onSend(nghttp2_session*, const uint8_t* data, size_t length, int,
                                    void* user_data) {
  evbuffer_add(base(user_data)->output_.get(), data, length);
  return static_cast<ssize_t>(length);
}

int Http2ConnectionBase::onSendData(nghttp2_session*, nghttp2_frame* frame, const uint8_t* framehd,
                                    size_t length, nghttp2_data_source* source, void* user_data) {
  auto* self = base(user_data);
  auto* stream = static_cast<Http2StreamBase*>(source->ptr);
  evbuffer* output = self->output_.get();
  evbuffer_add(output, framehd, 9);
  size_t padlen = frame->data.padlen;
  if (padlen > 0) {
    auto pad_length = static_cast<uint8_t>(padlen - 1);
    evbuffer_add(output, &pad_length, 1);
  }
  evbuffer_remove_buffer(stream->send_buf_.getOrEmpty(), output, length);
  if (padlen > 1) {
    static const uint8_t kZeros[256] = {};
    evbuffer_add(output, kZeros, padlen - 1);
  }
  if (stream->own_above_high_ && stream->bufferedBytes() <= kHttp2StreamLowWatermark) {
    stream->own_above_high_ = false;
    stream->updateWatermarkState();
  }
  if (self->output_.length() >= kOutputChunk) {
    self->writeOutput();
  }
  return 0;
}

int Http2ConnectionBase::onBeginHeadersCb(nghttp2_session*, const nghttp2_frame* frame,
                                          void* user_data) {
  return base(user_data)->onBeginHeaders(frame);
}

int Http2ConnectionBase::onHeaderCb(nghttp2_session*, const nghttp2_frame* frame,
                                    const uint8_t* name, size_t namelen, const uint8_t* value,
                                    size_t valuelen, uint8_t, void* user_data) {
  auto* stream = base(user_data)->findStream(frame->hd.stream_id);
  if (stream == nullptr || stream->local_reset_) {
    return 0;
  }
  return stream->onHeaderField(std::string_view(reinterpret_cast<const char*>(name), namelen),
                               std::string_view(reinterpret_cast<const char*>(value), valuelen));
}

int Http2ConnectionBase::onFrameRecvCb(nghttp2_session*, const nghttp2_frame* frame,
                                       void* user_data) {
  auto* self = base(user_data);
  if (frame->hd.stream_id == 0) {
    if (frame->hd.type == NGHTTP2_GOAWAY && !self->goaway_received_) {
      self->goaway_received_ = true;
      self->goaway_received_last_id_ = frame->goaway.last_stream_id;
    } else if (frame->hd.type == NGHTTP2_GOAWAY) {
      self->goaway_received_last_id_ =
          std::min(self->goaway_received_last_id_, frame->goaway.last_stream_id);
    }
    self->onConnectionFrame(frame);
    return 0;
  }
  auto* stream = self->findStream(frame->hd.stream_id);
  if (stream == nullptr) {
    return 0;
  }
  bool end_stream = (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0;
  switch (frame->hd.type) {
    case NGHTTP2_HEADERS:
      if (end_stream) {
        stream->remote_end_ = true;
      }
      if (!stream->local_reset_) {
        stream->onHeaderBlock(frame);
      }
      break;
    case NGHTTP2_DATA:
      if (end_stream) {
        stream->remote_end_ = true;
      }
      stream->deliverBody(end_stream);
      break;
    case NGHTTP2_RST_STREAM:
      stream->remote_reset_ = true;
      stream->remote_reset_code_ = frame->rst_stream.error_code;
      break;
    default: break;
  }
  return 0;
}

int Http2ConnectionBase::onDataChunkRecvCb(nghttp2_session* session, uint8_t, int32_t stream_id,
                                           const uint8_t* data, size_t len, void* user_data) {
  auto* self = base(user_data);
  // The connection window is returned at once: per-stream windows bound what a peer may send.
  nghttp2_session_consume_connection(session, len);
  auto* stream = self->findStream(stream_id);
  if (stream == nullptr) {
    nghttp2_session_consume_stream(session, stream_id, len);
    return 0;
  }
  stream->received_body_bytes_ += len;
  if (stream->silenced_ || stream->local_reset_) {
    nghttp2_session_consume_stream(session, stream_id, len);
    return 0;
  }
  evbuffer_add(stream->recv_buf_.get(), data, len);
  stream->frame_body_bytes_ += len;
  stream->onBodyBytes(len);
  return 0;
}

int Http2ConnectionBase::onStreamCloseCb(nghttp2_session*, int32_t stream_id, uint32_t error_code,
                                         void* user_data) {
  auto* self = base(user_data);
  auto* stream = self->findStream(stream_id);
  if (stream == nullptr) {
    return 0;
  }
  stream->onClosed(error_code);
  self->removeStream(*stream);
  self->onStreamRemoved();
  return 0;
}

int Http2ConnectionBase::onFrameSendCb(nghttp2_session* session, const nghttp2_frame* frame,
                                       void* user_data) {
  auto* self = base(user_data);
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    self->goaway_sent_ = true;
    // 2^31-1 is only ever the shutdown notice; any other last-stream-id is a final GOAWAY.
    if (frame->goaway.last_stream_id != kHttp2MaxStreamId) {
      self->final_goaway_sent_ = true;
    }
    if (frame->goaway.error_code != NGHTTP2_NO_ERROR) {
      std::string detail =
          std::string("http2.goaway_sent.") + nghttp2_http2_strerror(frame->goaway.error_code);
      if (frame->goaway.opaque_data_len > 0) {
        detail.append(": ").append(reinterpret_cast<const char*>(frame->goaway.opaque_data),
                                   frame->goaway.opaque_data_len);
      }
      self->markDead(std::move(detail));
    }
    return 0;
  }
  if (frame->hd.stream_id == 0) {
    return 0;
  }
  auto* stream = self->findStream(frame->hd.stream_id);
  if (stream == nullptr) {
    return 0;
  }
  if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
    stream->local_end_sent_ = true;
    if (stream->reset_after_local_end_ && !stream->remote_end_) {
      // The reply is complete; stop the peer from sending a body nobody reads (RFC 9113 §8.1).
      nghttp2_submit_rst_stream(session, NGHTTP2_FLAG_NONE, stream->id_, NGHTTP2_NO_ERROR);
    }
  } else if (frame->hd.type == NGHTTP2_RST_STREAM && !stream->local_reset_ &&
             !stream->reset_after_local_end_) {
    // nghttp2 itself reset the stream: the peer broke a stream-level rule.
    stream->protocol_error_ = true;
    self->onPeerCausedReset();
  }
  return 0;
}

int Http2ConnectionBase::onFrameNotSendCb(nghttp2_session*, const nghttp2_frame* frame,
                                          int lib_error_code, void* user_data) {
  auto* self = base(user_data);
  if (frame->hd.type != NGHTTP2_HEADERS || self->server_) {
    return 0;
  }
  auto* stream = self->findStream(frame->hd.stream_id);
  if (stream == nullptr || stream->closed_) {
    return 0;
  }
  // A request that never left: nghttp2 may or may not raise stream close for it, so finish it
  // here; the peer never saw it, so the owner may retry elsewhere.
  StreamResetReason reason = self->goaway_received_ ? StreamResetReason::GoAwayBeforeProcessing
                                                    : StreamResetReason::RefusedStream;
  stream->notifyReset(reason,
                      std::string("http2.request_not_sent.") + nghttp2_strerror(lib_error_code));
  self->removeStream(*stream);
  self->onStreamRemoved();
  return 0;
}

int Http2ConnectionBase::onInvalidFrameRecvCb(nghttp2_session*, const nghttp2_frame* frame,
                                              int lib_error_code, void* user_data) {
  base(user_data)->onInvalidFrame(frame, lib_error_code);
  return 0;
}

}  // namespace bulwark::http
