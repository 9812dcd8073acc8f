#include "tests/support/http2_client.h"

#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>

#include <nghttp2/nghttp2.h>

#include "tests/support/body_pattern.h"
#include "tests/support/socket_util.h"

namespace bulwark::testing {

/** Per-stream client state: the response being built and the request body being sent. */
struct Http2Client::StreamState {
  Http2Response response;
  Http2Request request;
  uint64_t body_sent = 0;
};

namespace {

constexpr size_t kMaxPendingOutput = 1 << 20;
constexpr size_t kReadChunk = 256 * 1024;
constexpr std::chrono::milliseconds kPollSlice{5};

Http2Client& client(void* user_data) { return *static_cast<Http2Client*>(user_data); }

int onHeader(nghttp2_session*, const nghttp2_frame* frame, const uint8_t* name, size_t namelen,
             const uint8_t* value, size_t valuelen, uint8_t, void* ud) {
  auto* s = client(ud).streamState(frame->hd.stream_id);
  if (s == nullptr || frame->hd.type != NGHTTP2_HEADERS) {
    return 0;
  }
  std::string n(reinterpret_cast<const char*>(name), namelen);
  std::string v(reinterpret_cast<const char*>(value), valuelen);
  Http2Response& r = s->response;
  if (r.headers_received) {
    r.trailers.emplace_back(std::move(n), std::move(v));
  } else if (n == ":status") {
    r.status = std::atoi(v.c_str());
  } else {
    r.headers.emplace_back(std::move(n), std::move(v));
  }
  return 0;
}

int onFrameRecv(nghttp2_session*, const nghttp2_frame* frame, void* ud) {
  auto& c = client(ud);
  switch (frame->hd.type) {
    case NGHTTP2_SETTINGS:
      if ((frame->hd.flags & NGHTTP2_FLAG_ACK) == 0) {
        c.onSettings();
      }
      return 0;
    case NGHTTP2_GOAWAY:
      c.onGoAway(frame->goaway.error_code, frame->goaway.last_stream_id);
      return 0;
    default: break;
  }
  auto* s = c.streamState(frame->hd.stream_id);
  if (s == nullptr) {
    return 0;
  }
  Http2Response& r = s->response;
  if (frame->hd.type == NGHTTP2_HEADERS && !r.headers_received) {
    if (r.status >= 200) {
      r.headers_received = true;
      r.headers_time = Clock::now();
    } else {
      r.headers.clear();  // 1xx interim response: wait for the final one
      r.status = 0;
    }
  }
  if (frame->hd.type == NGHTTP2_RST_STREAM) {
    r.reset_by_peer = true;
    r.error_code = frame->rst_stream.error_code;
  }
  if ((frame->hd.type == NGHTTP2_HEADERS || frame->hd.type == NGHTTP2_DATA) &&
      (frame->hd.flags & NGHTTP2_FLAG_END_STREAM)) {
    r.complete = true;
  }
  return 0;
}

int onDataChunk(nghttp2_session*, uint8_t, int32_t stream_id, const uint8_t* data, size_t len,
                void* ud) {
  auto* s = client(ud).streamState(stream_id);
  if (s == nullptr) {
    return 0;
  }
  Http2Response& r = s->response;
  const std::string_view chunk(reinterpret_cast<const char*>(data), len);
  if (r.body_matches_pattern && !matchesBodyPattern(r.body_bytes, chunk)) {
    r.body_matches_pattern = false;
  }
  r.body_bytes += len;
  if (!s->request.discard_body) {
    r.body.append(chunk);
  }
  return 0;
}

int onStreamClose(nghttp2_session*, int32_t stream_id, uint32_t error_code, void* ud) {
  auto* s = client(ud).streamState(stream_id);
  if (s == nullptr) {
    return 0;
  }
  s->response.closed = true;
  s->response.close_time = Clock::now();
  if (!s->response.reset_by_peer) {
    s->response.error_code = error_code;
  }
  return 0;
}

std::vector<nghttp2_nv> makeNva(const std::vector<std::pair<std::string, std::string>>& fields) {
  std::vector<nghttp2_nv> nva;
  nva.reserve(fields.size());
  for (const auto& [k, v] : fields) {
    nva.push_back(nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(k.data())),
                             reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), k.size(),
                             v.size(), NGHTTP2_NV_FLAG_NONE});
  }
  return nva;
}

Headers lowerNames(const Headers& headers) {
  Headers out;
  out.reserve(headers.size());
  for (const auto& [k, v] : headers) {
    out.emplace_back(toLower(k), v);
  }
  return out;
}

ssize_t readRequestBody(nghttp2_session* session, int32_t stream_id, uint8_t* buf, size_t length,
                        uint32_t* flags, nghttp2_data_source* source, void*) {
  auto* s = static_cast<Http2Client::StreamState*>(source->ptr);
  const Http2Request& req = s->request;
  const uint64_t total = req.generated_body_bytes ? *req.generated_body_bytes : req.body.size();
  const size_t n = static_cast<size_t>(std::min<uint64_t>(length, total - s->body_sent));
  if (req.generated_body_bytes) {
    fillBodyPattern(s->body_sent, reinterpret_cast<char*>(buf), n);
  } else {
    std::memcpy(buf, req.body.data() + s->body_sent, n);
  }
  s->body_sent += n;
  if (s->body_sent >= total) {
    *flags |= NGHTTP2_DATA_FLAG_EOF;
    if (!req.trailers.empty()) {
      *flags |= NGHTTP2_DATA_FLAG_NO_END_STREAM;
      const Headers trailers = lowerNames(req.trailers);
      auto nva = makeNva(trailers);
      nghttp2_submit_trailer(session, stream_id, nva.data(), nva.size());
    }
  }
  return static_cast<ssize_t>(n);
}

}  // namespace

Http2Request http2Get(std::string path, Headers headers) {
  Http2Request r;
  r.path = std::move(path);
  r.headers = std::move(headers);
  return r;
}

Http2Request http2Request(std::string method, std::string path, Headers headers, std::string body) {
  Http2Request r;
  r.method = std::move(method);
  r.path = std::move(path);
  r.headers = std::move(headers);
  r.body = std::move(body);
  return r;
}

Http2Client::Http2Client(std::string host, uint16_t port, Http2ClientOptions options)
    : host_(std::move(host)), port_(port), options_(options) {}

Http2Client::~Http2Client() { close(); }

void Http2Client::close() {
  if (session_ != nullptr) {
    nghttp2_session_del(session_);
  }
  session_ = nullptr;
  if (fd_ >= 0) {
    ::close(fd_);
  }
  fd_ = -1;
}

bool Http2Client::isOpen() const { return fd_ >= 0 && !peer_closed_ && !goaway_received_; }

Http2Client::StreamState* Http2Client::streamState(int32_t id) {
  auto it = streams_.find(id);
  return it == streams_.end() ? nullptr : it->second.get();
}

void Http2Client::onGoAway(uint32_t code, int32_t last_stream_id) {
  goaway_received_ = true;
  goaway_error_code_ = code;
  goaway_last_stream_id_ = last_stream_id;
}

bool Http2Client::connect(Deadline deadline) {
  close();
  streams_.clear();
  out_.clear();
  peer_closed_ = goaway_received_ = settings_received_ = false;
  goaway_last_stream_id_ = -1;
  fd_ = connectTcp(host_, port_, deadline, &error_, options_.receive_buffer);
  if (fd_ < 0) {
    return false;
  }

  nghttp2_session_callbacks* cbs;
  nghttp2_session_callbacks_new(&cbs);
  nghttp2_session_callbacks_set_on_header_callback(cbs, &onHeader);
  nghttp2_session_callbacks_set_on_frame_recv_callback(cbs, &onFrameRecv);
  nghttp2_session_callbacks_set_on_data_chunk_recv_callback(cbs, &onDataChunk);
  nghttp2_session_callbacks_set_on_stream_close_callback(cbs, &onStreamClose);
  nghttp2_option* opt;
  nghttp2_option_new(&opt);
  if (options_.manual_flow_control) {
    nghttp2_option_set_no_auto_window_update(opt, 1);
  }
  // Tests open thousands of streams on purpose; nghttp2's closed-stream bookkeeping is enough.
  nghttp2_session_client_new2(&session_, cbs, this, opt);
  nghttp2_option_del(opt);
  nghttp2_session_callbacks_del(cbs);

  const nghttp2_settings_entry settings[] = {
      {NGHTTP2_SETTINGS_ENABLE_PUSH, 0},
      {NGHTTP2_SETTINGS_INITIAL_WINDOW_SIZE, options_.initial_window_size},
  };
  nghttp2_submit_settings(session_, NGHTTP2_FLAG_NONE, settings, 2);
  if (options_.connection_window_size > 65535) {
    nghttp2_session_set_local_window_size(session_, NGHTTP2_FLAG_NONE, 0,
                                          static_cast<int32_t>(options_.connection_window_size));
  }
  if (!runUntil([this] { return settings_received_; }, deadline)) {
    if (error_.empty()) {
      error_ = "no SETTINGS from peer";
    }
    return false;
  }
  return true;
}

int32_t Http2Client::submit(const Http2Request& request) {
  if (session_ == nullptr) {
    error_ = "not connected";
    return -1;
  }
  auto state = std::make_unique<StreamState>();
  state->request = request;
  const std::string authority =
      request.authority.empty() ? host_ + ":" + std::to_string(port_) : request.authority;
  Headers fields{{":method", request.method},
                 {":scheme", request.scheme},
                 {":authority", authority},
                 {":path", request.path}};
  for (const auto& h : lowerNames(request.headers)) {
    fields.push_back(h);
  }
  auto nva = makeNva(fields);
  const bool has_body =
      request.generated_body_bytes ? true : (!request.body.empty() || !request.trailers.empty());
  nghttp2_data_provider prd;
  prd.source.ptr = state.get();
  prd.read_callback = &readRequestBody;
  const int32_t id = nghttp2_submit_request(session_, nullptr, nva.data(), nva.size(),
                                            has_body ? &prd : nullptr, nullptr);
  if (id < 0) {
    error_ = std::string("nghttp2_submit_request: ") + nghttp2_strerror(id);
    return -1;
  }
  state->response.stream_id = id;
  streams_[id] = std::move(state);
  return id;
}

bool Http2Client::writePending(Deadline deadline, bool block) {
  if (fd_ < 0 || session_ == nullptr) {
    return false;
  }
  while (true) {
    while (out_.size() < kMaxPendingOutput) {
      const uint8_t* data = nullptr;
      const ssize_t n = nghttp2_session_mem_send(session_, &data);
      if (n < 0) {
        error_ = std::string("nghttp2_session_mem_send: ") + nghttp2_strerror(static_cast<int>(n));
        peer_closed_ = true;  // the session is unusable; stop every wait
        return false;
      }
      if (n == 0) {
        break;
      }
      out_.append(reinterpret_cast<const char*>(data), static_cast<size_t>(n));
    }
    while (!out_.empty()) {
      const ssize_t n = ::send(fd_, out_.data(), out_.size(), MSG_NOSIGNAL);
      if (n > 0) {
        out_.erase(0, static_cast<size_t>(n));
        continue;
      }
      if (n < 0 && errno == EINTR) {
        continue;
      }
      if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
        break;
      }
      error_ = std::string("send: ") + std::strerror(errno);
      peer_closed_ = true;
      return false;
    }
    if (!block || (out_.empty() && !nghttp2_session_want_write(session_))) {
      return true;
    }
    if (!out_.empty() && pollFd(fd_, POLLOUT, deadline) == 0) {
      error_ = "send: deadline exceeded";
      return false;
    }
    if (out_.empty() && nghttp2_session_want_write(session_)) {
      // Only flow-controlled DATA is left: the peer must open its window, which needs reading.
      return true;
    }
  }
}

bool Http2Client::pumpOnce(Deadline deadline) {
  if (!writePending(deadline, false)) {
    return false;
  }
  const short events = static_cast<short>(POLLIN | (out_.empty() ? 0 : POLLOUT));
  const short re = pollFd(fd_, events, deadline);
  if (re == 0) {
    return false;
  }
  if (re & (POLLIN | POLLHUP | POLLERR)) {
    char buf[kReadChunk];
    const ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n > 0) {
      const ssize_t rv = nghttp2_session_mem_recv(session_, reinterpret_cast<const uint8_t*>(buf),
                                                  static_cast<size_t>(n));
      if (rv < 0) {
        error_ = std::string("nghttp2_session_mem_recv: ") + nghttp2_strerror(static_cast<int>(rv));
        writePending(deadline, false);  // the GOAWAY nghttp2 queued
        peer_closed_ = true;
      }
    } else if (n == 0 || (errno != EAGAIN && errno != EINTR)) {
      error_ = n == 0 ? "connection closed by peer" : std::string("recv: ") + std::strerror(errno);
      peer_closed_ = true;
    }
    if (peer_closed_) {
      for (auto& [id, s] : streams_) {
        if (!s->response.closed) {
          s->response.closed = true;
          s->response.close_time = Clock::now();
        }
      }
    }
  }
  return true;
}

bool Http2Client::runUntil(const std::function<bool()>& predicate, Deadline deadline) {
  while (true) {
    if (predicate()) {
      return true;
    }
    if (fd_ < 0 || session_ == nullptr || peer_closed_) {
      return predicate();
    }
    // Poll in short slices: the predicate may depend on state outside this socket (an
    // upstream's counters), which no socket event would announce.
    const Deadline slice = std::min(deadline, Clock::now() + kPollSlice);
    if (!pumpOnce(slice) && Clock::now() >= deadline) {
      return predicate();
    }
  }
}

bool Http2Client::flush(Deadline deadline) { return writePending(deadline, true); }

bool Http2Client::waitForResponse(int32_t stream_id, Deadline deadline) {
  return runUntil([&] { return response(stream_id).closed; }, deadline);
}

bool Http2Client::waitForResponses(const std::vector<int32_t>& ids, Deadline deadline) {
  return runUntil(
      [&] {
        return std::all_of(ids.begin(), ids.end(), [&](int32_t id) { return response(id).closed; });
      },
      deadline);
}

bool Http2Client::waitForHeaders(int32_t stream_id, Deadline deadline) {
  return runUntil(
      [&] {
        const auto& r = response(stream_id);
        return r.headers_received || r.closed;
      },
      deadline);
}

const Http2Response& Http2Client::response(int32_t stream_id) const {
  static const Http2Response kNone;
  auto it = streams_.find(stream_id);
  return it == streams_.end() ? kNone : it->second->response;
}

std::optional<Http2Response> Http2Client::request(const Http2Request& request, Deadline deadline) {
  const int32_t id = submit(request);
  if (id < 0) {
    return std::nullopt;
  }
  if (!waitForResponse(id, deadline)) {
    if (error_.empty()) {
      error_ = "deadline exceeded waiting for stream " + std::to_string(id);
    }
    return std::nullopt;
  }
  return response(id);
}

std::optional<Http2Response> Http2Client::get(std::string path, Headers headers,
                                              Deadline deadline) {
  return request(http2Get(std::move(path), std::move(headers)), deadline);
}

bool Http2Client::resetStream(int32_t stream_id, uint32_t error_code, Deadline deadline) {
  if (session_ == nullptr) {
    return false;
  }
  if (nghttp2_submit_rst_stream(session_, NGHTTP2_FLAG_NONE, stream_id, error_code) != 0) {
    return false;
  }
  return flush(deadline);
}

bool Http2Client::sendGoAway(uint32_t error_code, Deadline deadline) {
  if (session_ == nullptr) {
    return false;
  }
  const int32_t last = nghttp2_session_get_last_proc_stream_id(session_);
  if (nghttp2_submit_goaway(session_, NGHTTP2_FLAG_NONE, last, error_code, nullptr, 0) != 0) {
    return false;
  }
  return flush(deadline);
}

bool Http2Client::consume(int32_t stream_id, size_t bytes, Deadline deadline) {
  if (session_ == nullptr) {
    return false;
  }
  if (nghttp2_session_consume(session_, stream_id, bytes) != 0) {
    return false;
  }
  return flush(deadline);
}

bool Http2Client::waitForGoAway(Deadline deadline) {
  return runUntil([this] { return goaway_received_; }, deadline);
}

bool Http2Client::waitForClose(Deadline deadline) {
  return runUntil([this] { return peer_closed_; }, deadline);
}

bool Http2Client::sendRaw(std::string_view bytes, Deadline deadline) {
  if (fd_ < 0) {
    return false;
  }
  if (!writePending(deadline, true)) {
    return false;
  }
  return sendAll(fd_, bytes, deadline, &error_);
}

size_t Http2Client::openStreams() const {
  return static_cast<size_t>(std::count_if(
      streams_.begin(), streams_.end(), [](const auto& s) { return !s.second->response.closed; }));
}

GrpcResponse Http2Client::grpcUnary(const std::string& path, std::string_view message,
                                    Deadline deadline, Headers metadata,
                                    std::optional<std::chrono::milliseconds> grpc_timeout) {
  Http2Request req =
      http2Request("POST", path, {{"content-type", "application/grpc"}, {"te", "trailers"}},
                   encodeGrpcMessage(message));
  if (grpc_timeout) {
    req.headers.emplace_back("grpc-timeout", std::to_string(grpc_timeout->count()) + "m");
  }
  req.headers.insert(req.headers.end(), metadata.begin(), metadata.end());
  GrpcResponse out;
  const int32_t id = submit(req);
  if (id < 0) {
    return out;
  }
  waitForResponse(id, deadline);
  out.http = response(id);
  const Http2Response& r = out.http;
  auto status = findHeader(r.trailers, "grpc-status");
  if (!status && r.trailers.empty() && r.body_bytes == 0) {
    status = findHeader(r.headers, "grpc-status");
    out.trailers_only = status.has_value();
  }
  if (status) {
    out.grpc_status_code = std::atoi(status->c_str());
  }
  const Headers& status_block = out.trailers_only ? r.headers : r.trailers;
  if (auto m = findHeader(status_block, "grpc-message")) {
    out.grpc_message = decodeGrpcMessageHeader(*m);
  }
  if (auto msgs = decodeGrpcMessages(r.body)) {
    out.messages = std::move(*msgs);
  } else {
    out.malformed = true;
  }
  return out;
}

}  // namespace bulwark::testing
