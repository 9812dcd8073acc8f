#include "bench/loadgen/http2_connection.h"

#include <strings.h>

#include <algorithm>
#include <charconv>
#include <cstring>
#include <string_view>
#include <vector>

#include <event2/buffer.h>
#include <event2/bufferevent.h>
#include <event2/event.h>

namespace bulwark::bench {
namespace {

// Receive windows large enough that flow control never paces the answers we measure.
constexpr int32_t kStreamWindow = 1 << 20;
constexpr int32_t kConnectionWindow = 1 << 24;

std::string_view view(const uint8_t* p, size_t n) { return {reinterpret_cast<const char*>(p), n}; }

std::optional<int> parseInt(std::string_view s) {
  int v = 0;
  auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (ec != std::errc() || ptr != s.data() + s.size()) {
    return std::nullopt;
  }
  return v;
}

}  // namespace

Http2Connection::Http2Connection(event_base* base, const sockaddr_storage& address,
                                 socklen_t address_len, ConnectionOwner& owner, size_t target,
                                 size_t max_streams)
    : ClientConnection(base, address, address_len, owner, target), max_streams_(max_streams) {}

Http2Connection::~Http2Connection() { shutdown(); }

bool Http2Connection::hasCapacity() const {
  if (draining_) {
    return false;
  }
  size_t limit = max_streams_;
  if (session_ != nullptr) {
    limit = std::min<size_t>(limit, nghttp2_session_get_remote_settings(
                                        session_, NGHTTP2_SETTINGS_MAX_CONCURRENT_STREAMS));
  }
  return streams_.size() < limit;
}

bool Http2Connection::open() {
  if (session_ != nullptr) {
    return true;
  }
  open_ = false;
  draining_ = false;
  bev_ = startConnect();
  if (bev_ == nullptr) {
    owner_.onConnectResult(false);
    return false;
  }
  nghttp2_session_callbacks* callbacks = nullptr;
  nghttp2_session_callbacks_new(&callbacks);
  nghttp2_session_callbacks_set_on_header_callback(callbacks, &Http2Connection::onHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(callbacks, &Http2Connection::onFrameRecv);
  nghttp2_session_callbacks_set_on_stream_close_callback(callbacks,
                                                         &Http2Connection::onStreamClose);
  const int rv = nghttp2_session_client_new(&session_, callbacks, this);
  nghttp2_session_callbacks_del(callbacks);
  if (rv != 0) {
    session_ = nullptr;
    bufferevent_free(bev_);
    bev_ = nullptr;
    return false;
  }
  const nghttp2_settings_entry settings[] = {{NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
                                             {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, kStreamWindow}};
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, std::size(settings));
  nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0, kConnectionWindow);
  bufferevent_setcb(bev_, &Http2Connection::onRead, nullptr, &Http2Connection::onEvent, this);
  bufferevent_enable(bev_, EV_READ | EV_WRITE);
  // The preface and SETTINGS wait in the output buffer until the handshake completes.
  return flush();
}

void Http2Connection::connect() { open(); }

void Http2Connection::send(PendingRequest& request, const PreparedRequest& prepared) {
  if (!open()) {
    complete(request, failedOutcome(error_kind::kConnect));
    deliverSoon();
    return;
  }
  auto stream = std::make_unique<Stream>();
  stream->request = &request;
  stream->grpc = prepared.grpc;
  std::vector<nghttp2_nv> nva;
  nva.reserve(prepared.h2_headers.size());
  for (const auto& [name, value] : prepared.h2_headers) {
    nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                   reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                   value.size(), NGHTTP2_NV_FLAG_NONE});
  }
  nghttp2_data_provider provider{};
  nghttp2_data_provider* body = nullptr;
  if (!prepared.h2_body.empty()) {
    if (prepared.per_request_copy) {
      stream->owned_body = prepared.h2_body;
      stream->body = &stream->owned_body;
    } else {
      stream->body = &prepared.h2_body;
    }
    provider.source.ptr = stream.get();
    provider.read_callback = &Http2Connection::readBody;
    body = &provider;
  }
  const int32_t id =
      nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(), body, stream.get());
  if (id < 0) {
    // Stream ids exhausted or the session is going away: retire this connection.
    draining_ = true;
    complete(request, failedOutcome(error_kind::kReset));
    deliverSoon();
    return;
  }
  streams_.emplace(id, std::move(stream));
  if (!flush()) {
    teardown(error_kind::kProtocol);
    deliverSoon();
  }
}

void Http2Connection::cancel(PendingRequest& request) {
  forget(request);
  for (auto& [id, stream] : streams_) {
    if (stream->request == &request) {
      stream->request = nullptr;
      if (session_ != nullptr) {
        nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, id, NGHTTP2_CANCEL);
        if (!flush()) {
          teardown(nullptr);
        }
      }
      return;
    }
  }
}

void Http2Connection::shutdown() {
  for (auto& [id, stream] : streams_) {
    stream->request = nullptr;
  }
  teardown(nullptr);
}

bool Http2Connection::flush() {
  if (session_ == nullptr || bev_ == nullptr) {
    return false;
  }
  evbuffer* output = bufferevent_get_output(bev_);
  for (;;) {
    const uint8_t* data = nullptr;
    const ssize_t n = nghttp2_session_mem_send(session_, &data);
    if (n < 0) {
      return false;
    }
    if (n == 0) {
      return true;
    }
    evbuffer_add(output, data, static_cast<size_t>(n));
  }
}

void Http2Connection::teardown(const char* kind) {
  const char* stream_kind = open_ ? kind : (kind != nullptr ? error_kind::kConnect : nullptr);
  for (auto& [id, stream] : streams_) {
    if (stream->request != nullptr && stream_kind != nullptr) {
      complete(*stream->request, failedOutcome(stream_kind));
    }
  }
  streams_.clear();
  if (session_ != nullptr) {
    nghttp2_session_del(session_);
    session_ = nullptr;
  }
  if (bev_ != nullptr) {
    bufferevent_free(bev_);
    bev_ = nullptr;
  }
  open_ = false;
  draining_ = false;
}

void Http2Connection::settle() {
  if (session_ != nullptr) {
    const bool finished =
        nghttp2_session_want_read(session_) == 0 && nghttp2_session_want_write(session_) == 0;
    if (finished || (draining_ && streams_.empty())) {
      teardown(error_kind::kReset);
    }
  }
  deliver();
}

void Http2Connection::onEvent(bufferevent* /*bev*/, short what, void* arg) {
  auto& c = *static_cast<Http2Connection*>(arg);
  if ((what & BEV_EVENT_CONNECTED) != 0) {
    c.open_ = true;
    c.owner_.onConnectResult(true);
    return;
  }
  if ((what & (BEV_EVENT_EOF | BEV_EVENT_ERROR)) == 0) {
    return;
  }
  if (!c.open_) {
    c.owner_.onConnectResult(false);
    c.teardown(error_kind::kConnect);
  } else if (c.receive()) {
    // Frames that arrived with the FIN are counted; whatever is still open was cut off.
    c.teardown(error_kind::kReset);
  }
  c.deliver();
}

void Http2Connection::onRead(bufferevent* /*bev*/, void* arg) {
  auto& c = *static_cast<Http2Connection*>(arg);
  if (c.receive()) {
    c.settle();
  } else {
    c.deliver();
  }
}

bool Http2Connection::receive() {
  if (bev_ == nullptr) {
    return false;
  }
  evbuffer* input = bufferevent_get_input(bev_);
  while (evbuffer_get_length(input) > 0) {
    const auto length = static_cast<size_t>(evbuffer_get_contiguous_space(input));
    const auto* data = evbuffer_pullup(input, static_cast<ev_ssize_t>(length));
    const ssize_t n = nghttp2_session_mem_recv(session_, data, length);
    if (n < 0) {
      evbuffer_drain(input, length);
      teardown(error_kind::kProtocol);
      return false;
    }
    evbuffer_drain(input, static_cast<size_t>(n));
  }
  if (!flush()) {
    teardown(error_kind::kProtocol);
    return false;
  }
  return true;
}

int Http2Connection::onHeader(nghttp2_session* session, const nghttp2_frame* frame,
                              const uint8_t* name, size_t namelen, const uint8_t* value,
                              size_t valuelen, uint8_t /*flags*/, void* /*user_data*/) {
  if (frame->hd.type != NGHTTP2_HEADERS) {
    return 0;
  }
  auto* stream =
      static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
  if (stream == nullptr) {
    return 0;
  }
  const std::string_view n = view(name, namelen);
  const std::string_view v = view(value, valuelen);
  if (n == ":status") {
    // A 1xx block is followed by the real one; keep the last.
    stream->status = parseInt(v).value_or(0);
  } else if (n == "grpc-status") {
    stream->grpc_status = parseInt(v);
    if (!stream->grpc_status) {
      stream->grpc_status = 2;  // unparseable: UNKNOWN, as gRPC clients do
    }
  } else if (n == "x-bulwark-degraded" && v.size() == 4 && strncasecmp(v.data(), "true", 4) == 0) {
    stream->degraded = true;
  }
  return 0;
}

int Http2Connection::onFrameRecv(nghttp2_session* session, const nghttp2_frame* frame,
                                 void* user_data) {
  auto& c = *static_cast<Http2Connection*>(user_data);
  if (frame->hd.type == NGHTTP2_GOAWAY) {
    c.draining_ = true;
    return 0;
  }
  if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM) != 0) {
    auto* stream =
        static_cast<Stream*>(nghttp2_session_get_stream_user_data(session, frame->hd.stream_id));
    if (stream != nullptr) {
      stream->end_stream = true;
    }
  }
  return 0;
}

int Http2Connection::onStreamClose(nghttp2_session* /*session*/, int32_t stream_id,
                                   uint32_t error_code, void* user_data) {
  auto& c = *static_cast<Http2Connection*>(user_data);
  auto it = c.streams_.find(stream_id);
  if (it == c.streams_.end()) {
    return 0;
  }
  Stream& s = *it->second;
  if (s.request != nullptr) {
    Outcome outcome;
    if (!s.end_stream) {
      outcome = failedOutcome(error_kind::kReset);
      // REFUSED_STREAM (also how nghttp2 closes streams above a GOAWAY's last stream id):
      // the server did not process it (RFC 9113 §8.7).
      outcome.unprocessed = error_code == NGHTTP2_REFUSED_STREAM && s.status == 0;
    } else if (s.grpc) {
      outcome = grpcOutcome(s.status, s.grpc_status, s.degraded);
    } else {
      outcome = httpOutcome(s.status, s.degraded);
    }
    c.complete(*s.request, std::move(outcome));
  }
  c.streams_.erase(it);
  return 0;
}

ssize_t Http2Connection::readBody(nghttp2_session* /*session*/, int32_t /*stream_id*/, uint8_t* buf,
                                  size_t length, uint32_t* data_flags, nghttp2_data_source* source,
                                  void* /*user_data*/) {
  auto* stream = static_cast<Stream*>(source->ptr);
  const size_t left = stream->body->size() - stream->body_offset;
  const size_t n = std::min(left, length);
  std::memcpy(buf, stream->body->data() + stream->body_offset, n);
  stream->body_offset += n;
  if (stream->body_offset == stream->body->size()) {
    *data_flags |= NGHTTP2_DATA_FLAG_EOF;
  }
  return static_cast<ssize_t>(n);
}

}  // namespace bulwark::bench
