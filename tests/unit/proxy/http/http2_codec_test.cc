// HTTP/2 server and client codecs wired to each other (or to a hand-written peer) over a
// socketpair on one dispatcher in the test thread.

#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/thread.h>
#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>
#include <spawn.h>

#include "proxy/event/dispatcher.h"
#include "proxy/http/http2_client_codec.h"
#include "proxy/http/http2_server_codec.h"
#include "proxy/network/connection.h"

namespace bulwark::http {
namespace {

using namespace std::chrono_literals;

std::string drainToString(evbuffer* data) {
  std::string out(evbuffer_get_length(data), '\0');
  evbuffer_remove(data, out.data(), out.size());
  return out;
}

/** Runs the loop until pred holds or the deadline passes; true when pred held. */
bool runUntil(event::Dispatcher& dispatcher, const std::function<bool()>& pred,
              std::chrono::milliseconds timeout = 3000ms) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  auto wake = dispatcher.createTimer([] {});
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) {
      return false;
    }
    wake->enableTimer(5ms);
    event_base_loop(dispatcher.base(), EVLOOP_ONCE);
  }
  return true;
}

// ---------------------------------------------------------------------------------------------
// Server side: a request handler per stream.

struct ServerRequest : public RequestDecoder, public StreamCallbacks {
  ResponseEncoder* encoder = nullptr;
  RequestHeadersPtr headers;
  bool headers_end = false;
  std::string body;
  uint64_t body_bytes = 0;
  bool keep_body = true;
  bool end = false;
  std::optional<HeaderMap> trailers;
  std::optional<StreamResetReason> reset;
  std::string reset_detail;
  int above = 0;
  int below = 0;
  std::function<void(ServerRequest&)> on_headers;
  std::function<void(ServerRequest&)> on_data;
  std::function<void(ServerRequest&)> on_end;

  void decodeHeaders(RequestHeadersPtr&& h, bool end_stream) override {
    EXPECT_FALSE(reset.has_value());
    headers = std::move(h);
    headers_end = end_stream;
    end = end_stream;
    if (on_headers) {
      on_headers(*this);
    }
    if (end && on_end) {
      on_end(*this);
    }
  }
  void decodeData(evbuffer* data, bool end_stream) override {
    EXPECT_FALSE(reset.has_value());
    size_t n = evbuffer_get_length(data);
    body_bytes += n;
    if (keep_body) {
      body += drainToString(data);
    } else {
      evbuffer_drain(data, n);
    }
    end = end_stream;
    if (on_data) {
      on_data(*this);
    }
    if (end && on_end) {
      on_end(*this);
    }
  }
  void decodeTrailers(HeaderMap&& t) override {
    EXPECT_FALSE(reset.has_value());
    trailers = std::move(t);
    end = true;
    if (on_end) {
      on_end(*this);
    }
  }
  void onResetStream(StreamResetReason reason, std::string_view detail) override {
    EXPECT_FALSE(reset.has_value()) << "reset reported twice";
    reset = reason;
    reset_detail = std::string(detail);
  }
  void onAboveWriteBufferHighWatermark() override { ++above; }
  void onBelowWriteBufferLowWatermark() override { ++below; }
};

class ServerSide : public network::ConnectionCallbacks, public ServerConnectionCallbacks {
public:
  ServerSide(event::Dispatcher& dispatcher, int fd, const ServerCodecLimits& limits)
      : connection(std::make_unique<network::Connection>(dispatcher, fd, "test-client")) {
    connection->setCallbacks(this);
    codec = std::make_unique<Http2ServerConnection>(*connection, *this, limits);
  }

  // network::ConnectionCallbacks
  void onData(evbuffer* input) override {
    Status status = codec->dispatch(input);
    if (!status.isOk()) {
      dispatch_error = status.message();
      connection->close(network::Connection::CloseType::FlushWrite);
    } else if (codec->wantsClose()) {
      connection->close(network::Connection::CloseType::FlushWrite);
    }
  }
  void onEvent(network::ConnectionEvent event) override {
    if (event == network::ConnectionEvent::RemoteClose ||
        event == network::ConnectionEvent::LocalClose) {
      closed = true;
      codec->onConnectionClosed();
    }
  }
  void onAboveWriteBufferHighWatermark() override {
    codec->onUnderlyingConnectionAboveWriteBufferHighWatermark();
  }
  void onBelowWriteBufferLowWatermark() override {
    codec->onUnderlyingConnectionBelowWriteBufferLowWatermark();
  }

  // ServerConnectionCallbacks
  RequestDecoder& newStream(ResponseEncoder& encoder) override {
    requests.push_back(std::make_unique<ServerRequest>());
    ServerRequest& r = *requests.back();
    r.encoder = &encoder;
    encoder.stream().setCallbacks(&r);
    if (on_new_stream) {
      on_new_stream(r);
    }
    return r;
  }
  void onProtocolError(std::string_view details) override { protocol_errors.emplace_back(details); }

  network::ConnectionPtr connection;
  std::unique_ptr<Http2ServerConnection> codec;
  std::vector<std::unique_ptr<ServerRequest>> requests;
  std::vector<std::string> protocol_errors;
  std::function<void(ServerRequest&)> on_new_stream;
  std::string dispatch_error;
  bool closed = false;
};

// ---------------------------------------------------------------------------------------------
// Client side.

struct ClientResponse : public ResponseDecoder, public StreamCallbacks {
  RequestEncoder* encoder = nullptr;
  std::vector<uint32_t> informational;
  ResponseHeadersPtr headers;
  bool headers_end = false;
  std::string body;
  uint64_t body_bytes = 0;
  bool keep_body = true;
  bool end = false;
  std::optional<HeaderMap> trailers;
  std::optional<StreamResetReason> reset;
  std::string reset_detail;
  int above = 0;
  int below = 0;
  std::function<void(ClientResponse&)> on_data;
  std::function<void()> on_above;
  std::function<void()> on_below;

  void decode1xxHeaders(ResponseHeadersPtr&& h) override { informational.push_back(h->status); }
  void decodeHeaders(ResponseHeadersPtr&& h, bool end_stream) override {
    EXPECT_FALSE(reset.has_value());
    headers = std::move(h);
    headers_end = end_stream;
    end = end_stream;
  }
  void decodeData(evbuffer* data, bool end_stream) override {
    EXPECT_FALSE(reset.has_value());
    size_t n = evbuffer_get_length(data);
    body_bytes += n;
    if (keep_body) {
      body += drainToString(data);
    } else {
      evbuffer_drain(data, n);
    }
    end = end_stream;
    if (on_data) {
      on_data(*this);
    }
  }
  void decodeTrailers(HeaderMap&& t) override {
    EXPECT_FALSE(reset.has_value());
    trailers = std::move(t);
    end = true;
  }
  void onResetStream(StreamResetReason reason, std::string_view detail) override {
    EXPECT_FALSE(reset.has_value()) << "reset reported twice";
    reset = reason;
    reset_detail = std::string(detail);
  }
  void onAboveWriteBufferHighWatermark() override {
    ++above;
    if (on_above) {
      on_above();
    }
  }
  void onBelowWriteBufferLowWatermark() override {
    ++below;
    if (on_below) {
      on_below();
    }
  }
};

class ClientSide : public network::ConnectionCallbacks, public ClientConnectionCallbacks {
public:
  ClientSide(event::Dispatcher& dispatcher, int fd, const Http2ClientSettings& settings)
      : connection(std::make_unique<network::Connection>(dispatcher, fd, "test-server")) {
    connection->setCallbacks(this);
    codec = std::make_unique<Http2ClientConnection>(*connection, *this, settings);
  }

  ClientResponse& start(const RequestHeaders& headers, bool end_stream) {
    responses.push_back(std::make_unique<ClientResponse>());
    ClientResponse& r = *responses.back();
    r.encoder = &codec->newStream(r);
    r.encoder->stream().setCallbacks(&r);
    r.encoder->encodeHeaders(headers, end_stream);
    return r;
  }

  // network::ConnectionCallbacks
  void onData(evbuffer* input) override {
    Status status = codec->dispatch(input);
    if (!status.isOk()) {
      dispatch_error = status.message();
      connection->close(network::Connection::CloseType::FlushWrite);
    }
  }
  void onEvent(network::ConnectionEvent event) override {
    if (event == network::ConnectionEvent::RemoteClose ||
        event == network::ConnectionEvent::LocalClose) {
      closed = true;
      codec->onConnectionClosed(false);
    }
  }
  void onAboveWriteBufferHighWatermark() override {
    codec->onUnderlyingConnectionAboveWriteBufferHighWatermark();
  }
  void onBelowWriteBufferLowWatermark() override {
    codec->onUnderlyingConnectionBelowWriteBufferLowWatermark();
  }

  // ClientConnectionCallbacks
  void onGoAway() override { ++goaways; }
  void onStreamClosed() override { ++streams_closed; }

  network::ConnectionPtr connection;
  std::unique_ptr<Http2ClientConnection> codec;
  std::vector<std::unique_ptr<ClientResponse>> responses;
  std::string dispatch_error;
  int goaways = 0;
  int streams_closed = 0;
  bool closed = false;
};

/** The other end of a socketpair, speaking raw bytes. */
class RawPeer : public network::ConnectionCallbacks {
public:
  RawPeer(event::Dispatcher& dispatcher, int fd)
      : connection(std::make_unique<network::Connection>(dispatcher, fd, "raw")) {
    connection->setCallbacks(this);
  }
  void onData(evbuffer* input) override { received += drainToString(input); }
  void onEvent(network::ConnectionEvent event) override {
    if (event != network::ConnectionEvent::Connected) {
      closed = true;
    }
  }
  void send(const std::string& bytes) { connection->write(bytes); }

  struct Frame {
    uint8_t type;
    uint8_t flags;
    uint32_t stream_id;
    std::string payload;
  };
  /** Frames received so far (skipping the client preface if present). */
  std::vector<Frame> frames() const {
    std::vector<Frame> out;
    size_t pos = 0;
    if (received.rfind(NGHTTP2_CLIENT_MAGIC, 0) == 0) {
      pos = NGHTTP2_CLIENT_MAGIC_LEN;
    }
    while (received.size() - pos >= 9) {
      auto b = [&](size_t i) { return static_cast<uint8_t>(received[pos + i]); };
      size_t len = (size_t{b(0)} << 16) | (size_t{b(1)} << 8) | b(2);
      if (received.size() - pos - 9 < len) {
        break;
      }
      Frame f{b(3), b(4),
              ((uint32_t{b(5)} << 24) | (uint32_t{b(6)} << 16) | (uint32_t{b(7)} << 8) | b(8)) &
                  0x7fffffffu,
              received.substr(pos + 9, len)};
      out.push_back(std::move(f));
      pos += 9 + len;
    }
    return out;
  }
  std::optional<Frame> find(uint8_t type, uint32_t stream_id = 0xffffffffu) const {
    for (auto& f : frames()) {
      if (f.type == type && (stream_id == 0xffffffffu || f.stream_id == stream_id)) {
        return f;
      }
    }
    return std::nullopt;
  }

  network::ConnectionPtr connection;
  std::string received;
  bool closed = false;
};

uint32_t be32(const std::string& s, size_t at) {
  auto b = [&](size_t i) { return static_cast<uint32_t>(static_cast<uint8_t>(s[at + i])); };
  return (b(0) << 24) | (b(1) << 16) | (b(2) << 8) | b(3);
}

std::string frame(uint8_t type, uint8_t flags, uint32_t stream_id, const std::string& payload) {
  std::string out;
  out.push_back(static_cast<char>((payload.size() >> 16) & 0xff));
  out.push_back(static_cast<char>((payload.size() >> 8) & 0xff));
  out.push_back(static_cast<char>(payload.size() & 0xff));
  out.push_back(static_cast<char>(type));
  out.push_back(static_cast<char>(flags));
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((stream_id >> shift) & 0xff));
  }
  return out + payload;
}

std::string u32(uint32_t v) {
  std::string out;
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
  return out;
}

/** HPACK-encodes a header list as given (no validation, so it can carry bad names). */
std::string hpack(const std::vector<std::pair<std::string, std::string>>& headers) {
  nghttp2_hd_deflater* deflater = nullptr;
  nghttp2_hd_deflate_new(&deflater, 4096);
  std::vector<nghttp2_nv> nva;
  for (auto& [n, v] : headers) {
    nva.push_back(nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(n.data())),
                             reinterpret_cast<uint8_t*>(const_cast<char*>(v.data())), n.size(),
                             v.size(), NGHTTP2_NV_FLAG_NONE});
  }
  std::string out(nghttp2_hd_deflate_bound(deflater, nva.data(), nva.size()), '\0');
  ssize_t n = nghttp2_hd_deflate_hd(deflater, reinterpret_cast<uint8_t*>(out.data()), out.size(),
                                    nva.data(), nva.size());
  nghttp2_hd_deflate_del(deflater);
  out.resize(n > 0 ? static_cast<size_t>(n) : 0);
  return out;
}

RequestHeaders makeRequest(std::string method, std::string path) {
  RequestHeaders h;
  h.method = std::move(method);
  h.path = std::move(path);
  h.scheme = "http";
  h.authority = "backend.test";
  return h;
}

class Http2CodecTest : public testing::Test {
protected:
  static void SetUpTestSuite() { evthread_use_pthreads(); }

  void SetUp() override { ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds_)); }

  void connectCodecs(const ServerCodecLimits& limits = {},
                     const Http2ClientSettings& settings = {}) {
    server_ = std::make_unique<ServerSide>(dispatcher_, fds_[0], limits);
    client_ = std::make_unique<ClientSide>(dispatcher_, fds_[1], settings);
  }

  bool run(const std::function<bool()>& pred, std::chrono::milliseconds timeout = 3000ms) {
    return runUntil(dispatcher_, pred, timeout);
  }

  void TearDown() override {
    // Codecs first (they reference the connections), then the connections.
    if (client_) {
      client_->codec.reset();
    }
    if (server_) {
      server_->codec.reset();
    }
    client_.reset();
    server_.reset();
    raw_.reset();
    run([] { return true; });
  }

  event::Dispatcher dispatcher_;
  int fds_[2] = {-1, -1};
  std::unique_ptr<ServerSide> server_;
  std::unique_ptr<ClientSide> client_;
  std::unique_ptr<RawPeer> raw_;
};

// Headers, body and trailers travel both ways and a normally completed stream raises no reset.
TEST(Http2HeaderBlockTest, PerRequestValuesAndCredentialsStayOutOfTheDynamicTable) {
  nghttp2_hd_deflater* deflater = nullptr;
  ASSERT_EQ(nghttp2_hd_deflate_new(&deflater, 4096), 0);
  std::vector<uint8_t> out(1024);
  for (const char* id : {"2b1f7c3e-0001", "2b1f7c3e-0002", "2b1f7c3e-0003"}) {
    Http2HeaderBlock block;
    block.add("content-type", "application/grpc");
    block.add("x-request-id", id);
    block.add("traceparent", id);
    block.add("grpc-timeout", id);
    block.add("authorization", "Bearer secret");
    ASSERT_GT(nghttp2_hd_deflate_hd(deflater, out.data(), out.size(), block.data(), block.size()),
              0);
  }
  // content-type entered the table once (its later uses are references); nothing else did.
  EXPECT_EQ(nghttp2_hd_deflate_get_num_table_entries(deflater), 61U + 1U);
  nghttp2_hd_deflate_del(deflater);
}

TEST_F(Http2CodecTest, HeadersBodyTrailersBothWays) {
  connectCodecs();
  server_->on_new_stream = [](ServerRequest& r) {
    r.on_end = [](ServerRequest& req) {
      EXPECT_EQ("HTTP/2", req.encoder->protocol());
      ResponseHeaders resp;
      resp.status = 201;
      resp.headers.add("x-reply", "yes");
      resp.headers.add("Connection", "close");  // connection-specific: must be dropped
      req.encoder->encodeHeaders(resp, false);
      evbuffer* body = evbuffer_new();
      evbuffer_add(body, "world", 5);
      req.encoder->encodeData(body, false);
      EXPECT_EQ(0u, evbuffer_get_length(body));
      evbuffer_free(body);
      HeaderMap trailers;
      trailers.add("x-checksum", "abc");
      req.encoder->encodeTrailers(trailers);
    };
  };
  RequestHeaders req = makeRequest("POST", "/upload?x=1");
  req.headers.add("content-type", "text/plain");
  req.headers.add("cookie", "a=1");
  req.headers.add("cookie", "b=2");
  ClientResponse& resp = client_->start(req, false);
  evbuffer* body = evbuffer_new();
  evbuffer_add(body, "hello", 5);
  resp.encoder->encodeData(body, false);
  evbuffer_free(body);
  HeaderMap trailers;
  trailers.add("x-request-trailer", "1");
  resp.encoder->encodeTrailers(trailers);

  ASSERT_TRUE(run([&] {
    return resp.trailers.has_value() && client_->codec->activeStreams() == 0 &&
           server_->codec->activeStreams() == 0;
  }));
  EXPECT_FALSE(server_->codec->holdsOutputBuffer()) << "an idle session kept its output buffer";
  EXPECT_FALSE(client_->codec->holdsOutputBuffer());
  ASSERT_EQ(1u, server_->requests.size());
  ServerRequest& sr = *server_->requests[0];
  EXPECT_EQ("POST", sr.headers->method);
  EXPECT_EQ("/upload?x=1", sr.headers->path);
  EXPECT_EQ("http", sr.headers->scheme);
  EXPECT_EQ("backend.test", sr.headers->authority);
  EXPECT_EQ(2, sr.headers->http_major);
  EXPECT_EQ("text/plain", sr.headers->headers.get("content-type").value_or(""));
  EXPECT_EQ("a=1; b=2", sr.headers->headers.get("cookie").value_or(""));
  EXPECT_EQ("hello", sr.body);
  ASSERT_TRUE(sr.trailers.has_value());
  EXPECT_EQ("1", sr.trailers->get("x-request-trailer").value_or(""));

  EXPECT_EQ(201u, resp.headers->status);
  EXPECT_EQ("yes", resp.headers->headers.get("x-reply").value_or(""));
  EXPECT_FALSE(resp.headers->headers.has("connection"));
  EXPECT_EQ("world", resp.body);
  EXPECT_EQ("abc", resp.trailers->get("x-checksum").value_or(""));
  EXPECT_FALSE(resp.reset.has_value());
  EXPECT_FALSE(sr.reset.has_value());
  EXPECT_EQ(1, client_->streams_closed);
  EXPECT_TRUE(server_->protocol_errors.empty());
}

// gRPC: the client adds te: trailers; trailers-only and normal-trailer responses both arrive.
TEST_F(Http2CodecTest, GrpcTrailersOnlyAndNormalTrailers) {
  connectCodecs();
  server_->on_new_stream = [](ServerRequest& r) {
    r.on_end = [](ServerRequest& req) {
      ResponseHeaders resp;
      resp.status = 200;
      resp.headers.add("content-type", "application/grpc");
      if (req.headers->path == "/svc/TrailersOnly") {
        resp.headers.add("grpc-status", "14");
        resp.headers.add("grpc-message", "unavailable");
        req.encoder->encodeHeaders(resp, true);
        return;
      }
      req.encoder->encodeHeaders(resp, false);
      evbuffer* body = evbuffer_new();
      evbuffer_add(body, "\0\0\0\0\x02hi", 7);
      req.encoder->encodeData(body, false);
      evbuffer_free(body);
      HeaderMap trailers;
      trailers.add("grpc-status", "0");
      req.encoder->encodeTrailers(trailers);
    };
  };
  RequestHeaders req = makeRequest("POST", "/svc/TrailersOnly");
  req.headers.add("content-type", "application/grpc+proto");
  ClientResponse& a = client_->start(req, true);
  req.path = "/svc/Normal";
  ClientResponse& b = client_->start(req, false);
  evbuffer* body = evbuffer_new();
  evbuffer_add(body, "\0\0\0\0\x02yo", 7);
  b.encoder->encodeData(body, true);
  evbuffer_free(body);

  ASSERT_TRUE(run([&] { return a.end && b.end; }));
  ASSERT_EQ(2u, server_->requests.size());
  for (auto& r : server_->requests) {
    EXPECT_EQ("trailers", r->headers->headers.get("te").value_or(""));
  }
  EXPECT_TRUE(a.headers_end);
  EXPECT_EQ("14", a.headers->headers.get("grpc-status").value_or(""));
  EXPECT_FALSE(a.trailers.has_value());
  EXPECT_FALSE(b.headers_end);
  EXPECT_EQ(std::string("\0\0\0\0\x02hi", 7), b.body);
  ASSERT_TRUE(b.trailers.has_value());
  EXPECT_EQ("0", b.trailers->get("grpc-status").value_or(""));
  EXPECT_FALSE(a.reset.has_value());
  EXPECT_FALSE(b.reset.has_value());
}

// 100 streams are open at the same time on one connection.
TEST_F(Http2CodecTest, HundredConcurrentStreams) {
  connectCodecs();
  size_t max_active = 0;
  server_->on_new_stream = [&](ServerRequest& r) {
    (void)r;
    max_active = std::max(max_active, server_->codec->activeStreams());
  };
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(client_->codec->canCreateStream()) << i;
    client_->start(makeRequest("GET", "/s/" + std::to_string(i)), true);
  }
  EXPECT_FALSE(client_->codec->canCreateStream());
  ASSERT_TRUE(run([&] { return server_->requests.size() == 100; }));
  EXPECT_EQ(100u, max_active);
  EXPECT_EQ(100u, client_->codec->activeStreams());
  // Answer in reverse order, each with its own path as the body.
  for (int i = 99; i >= 0; --i) {
    auto& r = *server_->requests[static_cast<size_t>(i)];
    ResponseHeaders resp;
    r.encoder->encodeHeaders(resp, false);
    evbuffer* body = evbuffer_new();
    evbuffer_add(body, r.headers->path.data(), r.headers->path.size());
    r.encoder->encodeData(body, true);
    evbuffer_free(body);
  }
  ASSERT_TRUE(run([&] { return client_->codec->activeStreams() == 0; }));
  for (auto& resp : client_->responses) {
    EXPECT_TRUE(resp->end);
    EXPECT_FALSE(resp->reset.has_value());
  }
  EXPECT_EQ("/s/7", client_->responses[7]->body);
  EXPECT_EQ(100, client_->streams_closed);
}

/**
 * Pushes total bytes into an encoder while it is below its high watermark; resumes on the low
 * watermark. Records the most bytes ever buffered in the sending codec.
 */
class Producer {
public:
  Producer(std::function<void(evbuffer*, bool)> encode, std::function<size_t()> buffered,
           uint64_t total)
      : encode_(std::move(encode)), buffered_(std::move(buffered)), total_(total) {}

  void onAbove() { blocked_ = true; }
  void onBelow() {
    blocked_ = false;
    pump();
  }
  void pump() {
    if (pumping_) {
      return;
    }
    pumping_ = true;
    static const std::string kChunk(64 * 1024, 'x');
    while (!blocked_ && sent_ < total_) {
      size_t n = static_cast<size_t>(std::min<uint64_t>(kChunk.size(), total_ - sent_));
      evbuffer* buf = evbuffer_new();
      evbuffer_add(buf, kChunk.data(), n);
      sent_ += n;
      encode_(buf, sent_ == total_);
      evbuffer_free(buf);
      max_buffered_ = std::max(max_buffered_, buffered_());
    }
    pumping_ = false;
  }
  uint64_t sent() const { return sent_; }
  size_t maxBuffered() const { return max_buffered_; }
  bool blocked() const { return blocked_; }

private:
  std::function<void(evbuffer*, bool)> encode_;
  std::function<size_t()> buffered_;
  uint64_t total_;
  uint64_t sent_ = 0;
  bool blocked_ = false;
  bool pumping_ = false;
  size_t max_buffered_ = 0;
};

// A large upload and download stream with bounded buffering, including while the receiver
// read-disables its stream: the sender gets a high-watermark signal and the receiver gets at
// most about one stream window while disabled.
TEST_F(Http2CodecTest, LargeBodyBothWaysWithBackpressure) {
  constexpr uint64_t kTotal = 32ull * 1024 * 1024;
  // Bound on what the receiving decoder may be handed while its stream is read-disabled:
  // one stream window plus one frame.
  constexpr uint64_t kDisabledBound = kHttp2DefaultInitialWindow + 64 * 1024;
  // Bound on bytes buffered inside the sending codec: high watermark plus one producer chunk.
  constexpr size_t kSendBound = kHttp2StreamHighWatermark + 64 * 1024;
  connectCodecs();

  ServerRequest* sreq = nullptr;
  server_->on_new_stream = [&](ServerRequest& r) {
    r.keep_body = false;
    sreq = &r;
  };
  ClientResponse& resp = client_->start(makeRequest("PUT", "/big"), false);
  resp.keep_body = false;
  Producer upload([&](evbuffer* b, bool end) { resp.encoder->encodeData(b, end); },
                  [&] { return client_->codec->bufferedOutboundBytes(); }, kTotal);
  resp.on_above = [&] { upload.onAbove(); };
  resp.on_below = [&] { upload.onBelow(); };
  upload.pump();

  ASSERT_TRUE(run([&] { return sreq != nullptr && sreq->body_bytes >= 4 * 1024 * 1024; }));
  // Pause the receiver; the sender must stall with bounded buffering.
  sreq->encoder->stream().readDisable(true);
  uint64_t at_disable = sreq->body_bytes;
  ASSERT_TRUE(run(
      [&] { return upload.blocked() && upload.sent() - sreq->body_bytes > 2 * kDisabledBound; }));
  // Give in-flight frames time to land, then check the receiver got at most one window.
  ASSERT_FALSE(run([&] { return sreq->body_bytes - at_disable > kDisabledBound; }, 100ms));
  EXPECT_LE(server_->codec->bufferedInboundBytes(), 0u);
  sreq->encoder->stream().readDisable(false);
  ASSERT_TRUE(run([&] { return sreq->end; }, 10000ms));
  EXPECT_EQ(kTotal, sreq->body_bytes);
  EXPECT_LE(upload.maxBuffered(), kSendBound);
  EXPECT_GT(resp.above, 0);

  // Download: the client read-disables for a while.
  ResponseHeaders h;
  sreq->encoder->encodeHeaders(h, false);
  struct Relay : StreamCallbacks {
    Producer* p = nullptr;
    void onResetStream(StreamResetReason, std::string_view) override { ADD_FAILURE() << "reset"; }
    void onAboveWriteBufferHighWatermark() override { p->onAbove(); }
    void onBelowWriteBufferLowWatermark() override { p->onBelow(); }
  } relay;
  Producer download([&](evbuffer* b, bool end) { sreq->encoder->encodeData(b, end); },
                    [&] { return server_->codec->bufferedOutboundBytes(); }, kTotal);
  relay.p = &download;
  sreq->encoder->stream().setCallbacks(&relay);
  download.pump();
  ASSERT_TRUE(run([&] { return resp.body_bytes >= 4 * 1024 * 1024; }));
  resp.encoder->stream().readDisable(true);
  resp.encoder->stream().readDisable(true);  // nested: needs two enables
  at_disable = resp.body_bytes;
  ASSERT_TRUE(run([&] {
    return download.blocked() && download.sent() - resp.body_bytes > 2 * kDisabledBound;
  }));
  ASSERT_FALSE(run([&] { return resp.body_bytes - at_disable > kDisabledBound; }, 100ms));
  resp.encoder->stream().readDisable(false);
  ASSERT_FALSE(run([&] { return resp.body_bytes - at_disable > kDisabledBound; }, 50ms));
  resp.encoder->stream().readDisable(false);
  ASSERT_TRUE(run([&] { return resp.end; }, 10000ms));
  EXPECT_EQ(kTotal, resp.body_bytes);
  EXPECT_LE(download.maxBuffered(), kSendBound);
  ASSERT_TRUE(run([&] {
    return client_->codec->activeStreams() == 0 && server_->codec->activeStreams() == 0;
  }));
  EXPECT_FALSE(resp.reset.has_value());
}

// A client-side reset reaches the server as RemoteReset and raises nothing on the client.
TEST_F(Http2CodecTest, ClientResetPropagatesToServer) {
  connectCodecs();
  ClientResponse& resp = client_->start(makeRequest("POST", "/r"), false);
  ASSERT_TRUE(run([&] { return server_->requests.size() == 1; }));
  resp.encoder->stream().resetStream(StreamResetReason::LocalReset);
  ServerRequest& sr = *server_->requests[0];
  ASSERT_TRUE(run([&] { return sr.reset.has_value(); }));
  EXPECT_EQ(StreamResetReason::RemoteReset, *sr.reset);
  ASSERT_TRUE(run([&] {
    return client_->codec->activeStreams() == 0 && server_->codec->activeStreams() == 0;
  }));
  EXPECT_FALSE(resp.reset.has_value());
  EXPECT_EQ(1, client_->streams_closed);
}

// A server-side reset mid-response reaches the client as RemoteReset.
TEST_F(Http2CodecTest, ServerResetPropagatesToClient) {
  connectCodecs();
  server_->on_new_stream = [](ServerRequest& r) {
    r.on_end = [](ServerRequest& req) {
      ResponseHeaders resp;
      req.encoder->encodeHeaders(resp, false);
      req.encoder->stream().resetStream(StreamResetReason::LocalReset);
    };
  };
  ClientResponse& resp = client_->start(makeRequest("GET", "/r"), true);
  ASSERT_TRUE(run([&] { return resp.reset.has_value(); }));
  EXPECT_EQ(StreamResetReason::RemoteReset, *resp.reset);
  ASSERT_TRUE(run([&] { return server_->codec->activeStreams() == 0; }));
  EXPECT_FALSE(server_->requests[0]->reset.has_value());
}

// Streams beyond the server's SETTINGS_MAX_CONCURRENT_STREAMS that were sent before the
// SETTINGS arrived come back as RefusedStream.
TEST_F(Http2CodecTest, RefusedStreamMapping) {
  ServerCodecLimits limits;
  limits.max_concurrent_streams = 1;
  connectCodecs(limits);
  ClientResponse& first = client_->start(makeRequest("GET", "/1"), true);
  ClientResponse& second = client_->start(makeRequest("GET", "/2"), true);
  ASSERT_TRUE(run([&] { return second.reset.has_value(); }));
  EXPECT_EQ(StreamResetReason::RefusedStream, *second.reset);
  EXPECT_FALSE(first.reset.has_value());
  EXPECT_EQ(1u, server_->requests.size());
}

// The client never opens more streams than the server's limit (after SETTINGS) or its own.
TEST_F(Http2CodecTest, CanCreateStreamRespectsMaxConcurrentStreams) {
  ServerCodecLimits limits;
  limits.max_concurrent_streams = 2;
  connectCodecs(limits);
  // One full exchange first, so the server's SETTINGS have arrived.
  ClientResponse& warmup = client_->start(makeRequest("GET", "/warmup"), true);
  ASSERT_TRUE(run([&] { return server_->requests.size() == 1; }));
  ResponseHeaders ok;
  server_->requests[0]->encoder->encodeHeaders(ok, true);
  ASSERT_TRUE(run([&] { return warmup.end && client_->codec->activeStreams() == 0; }));
  server_->requests.clear();
  ClientResponse& a = client_->start(makeRequest("GET", "/a"), true);
  ASSERT_TRUE(run([&] { return server_->requests.size() == 1; }));
  EXPECT_TRUE(client_->codec->canCreateStream());
  client_->start(makeRequest("GET", "/b"), true);
  EXPECT_FALSE(client_->codec->canCreateStream());
  ASSERT_TRUE(run([&] { return server_->requests.size() == 2; }));
  ResponseHeaders resp;
  server_->requests[0]->encoder->encodeHeaders(resp, true);
  ASSERT_TRUE(run([&] { return a.end && client_->codec->activeStreams() == 1; }));
  EXPECT_TRUE(client_->codec->canCreateStream());

  // Our own limit applies too.
  TearDown();
  ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, fds_));
  Http2ClientSettings settings;
  settings.max_concurrent_streams = 1;
  connectCodecs({}, settings);
  client_->start(makeRequest("GET", "/a"), true);
  EXPECT_FALSE(client_->codec->canCreateStream());
}

// Graceful drain: the client learns of the GOAWAY and stops opening streams; the stream in
// flight finishes; then the server closes the connection.
TEST_F(Http2CodecTest, GracefulGoAway) {
  connectCodecs();
  ClientResponse& inflight = client_->start(makeRequest("GET", "/slow"), true);
  ASSERT_TRUE(run([&] { return server_->requests.size() == 1; }));
  server_->codec->shutdownNotice();
  ASSERT_TRUE(run([&] { return client_->goaways == 1; }));
  EXPECT_FALSE(client_->codec->canCreateStream());
  EXPECT_TRUE(client_->codec->goAwayReceived());
  EXPECT_EQ(1u, client_->codec->activeStreams());
  ResponseHeaders resp;
  server_->requests[0]->encoder->encodeHeaders(resp, true);
  ASSERT_TRUE(run([&] { return inflight.end && server_->closed && client_->closed; }));
  EXPECT_FALSE(inflight.reset.has_value());
  EXPECT_EQ(1, client_->goaways);
}

// A GOAWAY whose last-stream-id is below open streams resets those as GoAwayBeforeProcessing;
// RST_STREAM(REFUSED_STREAM) maps to RefusedStream.
TEST_F(Http2CodecTest, GoAwayBeforeProcessingAndRefusedFromRawServer) {
  raw_ = std::make_unique<RawPeer>(dispatcher_, fds_[0]);
  client_ = std::make_unique<ClientSide>(dispatcher_, fds_[1], Http2ClientSettings{});
  ClientResponse& s1 = client_->start(makeRequest("GET", "/1"), true);
  ClientResponse& s3 = client_->start(makeRequest("GET", "/3"), true);
  ClientResponse& s5 = client_->start(makeRequest("GET", "/5"), true);
  ASSERT_TRUE(run([&] { return raw_->find(NGHTTP2_HEADERS, 5).has_value(); }));
  raw_->send(frame(NGHTTP2_SETTINGS, 0, 0, "") + frame(NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0, "") +
             frame(NGHTTP2_GOAWAY, 0, 0, u32(1) + u32(NGHTTP2_NO_ERROR)));
  ASSERT_TRUE(run([&] { return s3.reset.has_value() && s5.reset.has_value(); }));
  EXPECT_EQ(StreamResetReason::GoAwayBeforeProcessing, *s3.reset);
  EXPECT_EQ(StreamResetReason::GoAwayBeforeProcessing, *s5.reset);
  EXPECT_EQ(1, client_->goaways);
  EXPECT_FALSE(client_->codec->canCreateStream());
  EXPECT_FALSE(s1.reset.has_value());
  raw_->send(frame(NGHTTP2_RST_STREAM, 0, 1, u32(NGHTTP2_REFUSED_STREAM)));
  ASSERT_TRUE(run([&] { return s1.reset.has_value(); }));
  EXPECT_EQ(StreamResetReason::RefusedStream, *s1.reset);
  EXPECT_EQ(0u, client_->codec->activeStreams());
  EXPECT_EQ(3, client_->streams_closed);
}

// A server that sends a bad frame is answered with GOAWAY; dispatch fails and streams reset.
TEST_F(Http2CodecTest, ClientRejectsBadServerFrames) {
  raw_ = std::make_unique<RawPeer>(dispatcher_, fds_[0]);
  client_ = std::make_unique<ClientSide>(dispatcher_, fds_[1], Http2ClientSettings{});
  ClientResponse& s1 = client_->start(makeRequest("GET", "/1"), true);
  ASSERT_TRUE(run([&] { return raw_->find(NGHTTP2_HEADERS, 1).has_value(); }));
  // DATA on stream 0 is a connection error.
  raw_->send(frame(NGHTTP2_SETTINGS, 0, 0, "") + frame(NGHTTP2_DATA, 0, 0, "xx"));
  ASSERT_TRUE(run([&] { return s1.reset.has_value() && raw_->find(NGHTTP2_GOAWAY).has_value(); }));
  EXPECT_EQ(StreamResetReason::ProtocolError, *s1.reset);
  EXPECT_FALSE(client_->dispatch_error.empty());
  EXPECT_EQ(uint32_t{NGHTTP2_PROTOCOL_ERROR}, be32(raw_->find(NGHTTP2_GOAWAY)->payload, 4));
}

// Garbage after the client preface: GOAWAY(PROTOCOL_ERROR) and dispatch() fails.
TEST_F(Http2CodecTest, GarbageAfterPrefaceClosesWithGoAway) {
  server_ = std::make_unique<ServerSide>(dispatcher_, fds_[0], ServerCodecLimits{});
  raw_ = std::make_unique<RawPeer>(dispatcher_, fds_[1]);
  raw_->send(std::string(NGHTTP2_CLIENT_MAGIC) + "this is not an HTTP/2 frame at all........");
  ASSERT_TRUE(run([&] { return raw_->closed; }));
  auto goaway = raw_->find(NGHTTP2_GOAWAY);
  ASSERT_TRUE(goaway.has_value());
  EXPECT_NE(uint32_t{NGHTTP2_NO_ERROR}, be32(goaway->payload, 4));
  EXPECT_FALSE(server_->dispatch_error.empty());
  EXPECT_FALSE(server_->protocol_errors.empty());
}

// Drain as seen on the wire: GOAWAY(2^31-1) and a PING at once; after the PING ACK the final
// GOAWAY carries the last stream that arrived; streams opened after it are ignored.
TEST_F(Http2CodecTest, DrainSequenceOnTheWire) {
  server_ = std::make_unique<ServerSide>(dispatcher_, fds_[0], ServerCodecLimits{});
  raw_ = std::make_unique<RawPeer>(dispatcher_, fds_[1]);
  auto request = [](uint32_t id) {
    return frame(
        NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, id,
        hpack({{":method", "GET"}, {":path", "/"}, {":scheme", "http"}, {":authority", "x"}}));
  };
  raw_->send(std::string(NGHTTP2_CLIENT_MAGIC) + frame(NGHTTP2_SETTINGS, 0, 0, "") + request(1));
  ASSERT_TRUE(run([&] { return server_->requests.size() == 1; }));
  server_->codec->shutdownNotice();
  ASSERT_TRUE(run([&] { return raw_->find(NGHTTP2_PING).has_value(); }));
  auto notice = raw_->find(NGHTTP2_GOAWAY);
  ASSERT_TRUE(notice.has_value());
  EXPECT_EQ(0x7fffffffu, be32(notice->payload, 0));
  EXPECT_FALSE(server_->codec->wantsClose());
  // A request already in flight when the notice arrived still counts; then the PING ACK.
  raw_->send(request(3) +
             frame(NGHTTP2_PING, NGHTTP2_FLAG_ACK, 0, raw_->find(NGHTTP2_PING)->payload));
  auto final_goaway = [&]() -> std::optional<RawPeer::Frame> {
    for (auto& f : raw_->frames()) {
      if (f.type == NGHTTP2_GOAWAY && be32(f.payload, 0) != 0x7fffffffu) {
        return f;
      }
    }
    return std::nullopt;
  };
  ASSERT_TRUE(run([&] { return final_goaway().has_value(); }));
  EXPECT_EQ(3u, be32(final_goaway()->payload, 0));
  EXPECT_EQ(2u, server_->requests.size());
  raw_->send(request(5));
  ASSERT_FALSE(run([&] { return server_->requests.size() > 2; }, 20ms));
  // Answer both: the server then closes the connection by itself.
  ResponseHeaders h;
  server_->requests[0]->encoder->encodeHeaders(h, true);
  server_->requests[1]->encoder->encodeHeaders(h, true);
  ASSERT_TRUE(run([&] { return raw_->closed && server_->closed; }));
  EXPECT_TRUE(raw_->find(NGHTTP2_HEADERS, 3).has_value());
  EXPECT_FALSE(raw_->find(NGHTTP2_HEADERS, 5).has_value());
}

// A PING flood from a peer that does not read: frames stay queued in nghttp2 while the
// connection is above its high watermark, and the session dies of NGHTTP2_ERR_FLOODED.
TEST_F(Http2CodecTest, PingFloodFromNonReadingPeerIsCut) {
  server_ = std::make_unique<ServerSide>(dispatcher_, fds_[0], ServerCodecLimits{});
  server_->connection->setWatermarks(16 * 1024, 64 * 1024);
  raw_ = std::make_unique<RawPeer>(dispatcher_, fds_[1]);
  raw_->send(std::string(NGHTTP2_CLIENT_MAGIC) + frame(NGHTTP2_SETTINGS, 0, 0, ""));
  // Batches below nghttp2's 1000-ACK limit even when one socket read takes several.
  std::string batch;
  for (int i = 0; i < 300; ++i) {
    batch += frame(NGHTTP2_PING, 0, 0, std::string(8, 'p'));
  }
  auto acks = [&] {
    size_t n = 0;
    for (auto& f : raw_->frames()) {
      n += f.type == NGHTTP2_PING ? 1 : 0;
    }
    return n;
  };
  // A peer that reads its ACKs is fine.
  for (int i = 1; i <= 10; ++i) {
    raw_->send(batch);
    ASSERT_TRUE(run([&] { return acks() == static_cast<size_t>(i) * 300; }));
  }
  EXPECT_TRUE(server_->dispatch_error.empty());
  raw_->connection->readDisable(true);
  int batches = 0;
  while (server_->dispatch_error.empty() && batches < 1000) {
    raw_->send(batch);
    ++batches;
    run([&] { return raw_->connection->outputLength() == 0 || !server_->dispatch_error.empty(); },
        200ms);
  }
  EXPECT_NE(std::string::npos, server_->dispatch_error.find("Flood")) << server_->dispatch_error;
  EXPECT_LT(server_->connection->outputLength(), 1024u * 1024u);
}

// A wrong preface (an HTTP/1 request on an h2c port) fails dispatch.
TEST_F(Http2CodecTest, BadPrefaceFailsDispatch) {
  server_ = std::make_unique<ServerSide>(dispatcher_, fds_[0], ServerCodecLimits{});
  raw_ = std::make_unique<RawPeer>(dispatcher_, fds_[1]);
  raw_->send("GET / HTTP/1.1\r\nHost: x\r\n\r\n");
  ASSERT_TRUE(run([&] { return raw_->closed; }));
  EXPECT_FALSE(server_->dispatch_error.empty());
}

// An undecodable header block is a connection error (COMPRESSION_ERROR).
TEST_F(Http2CodecTest, BadHpackClosesWithGoAway) {
  server_ = std::make_unique<ServerSide>(dispatcher_, fds_[0], ServerCodecLimits{});
  raw_ = std::make_unique<RawPeer>(dispatcher_, fds_[1]);
  // Index 0x7e of the dynamic table does not exist.
  raw_->send(std::string(NGHTTP2_CLIENT_MAGIC) + frame(NGHTTP2_SETTINGS, 0, 0, "") +
             frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 1,
                   std::string("\xfe", 1)));
  ASSERT_TRUE(run([&] { return raw_->closed; }));
  auto goaway = raw_->find(NGHTTP2_GOAWAY);
  ASSERT_TRUE(goaway.has_value());
  EXPECT_EQ(uint32_t{NGHTTP2_COMPRESSION_ERROR}, be32(goaway->payload, 4));
  EXPECT_FALSE(server_->dispatch_error.empty());
  EXPECT_TRUE(server_->requests.empty());
}

// A header name nghttp2's messaging checks reject resets that stream only (PROTOCOL_ERROR).
TEST_F(Http2CodecTest, InvalidHeaderNameResetsStream) {
  server_ = std::make_unique<ServerSide>(dispatcher_, fds_[0], ServerCodecLimits{});
  raw_ = std::make_unique<RawPeer>(dispatcher_, fds_[1]);
  std::string block = hpack({{":method", "GET"},
                             {":path", "/"},
                             {":scheme", "http"},
                             {":authority", "x"},
                             {"Bad-Name", "v"}});
  raw_->send(std::string(NGHTTP2_CLIENT_MAGIC) + frame(NGHTTP2_SETTINGS, 0, 0, "") +
             frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS | NGHTTP2_FLAG_END_STREAM, 1, block));
  ASSERT_TRUE(run([&] { return raw_->find(NGHTTP2_RST_STREAM, 1).has_value(); }));
  EXPECT_EQ(uint32_t{NGHTTP2_PROTOCOL_ERROR}, be32(raw_->find(NGHTTP2_RST_STREAM, 1)->payload, 0));
  EXPECT_TRUE(server_->requests.empty());
  EXPECT_FALSE(server_->protocol_errors.empty());
  EXPECT_TRUE(server_->dispatch_error.empty());
  EXPECT_FALSE(raw_->closed);
  EXPECT_EQ(0u, server_->codec->activeStreams());
}

// CONNECT has no :path: refused here (400), as over HTTP/1, never routed with an empty path.
TEST_F(Http2CodecTest, ConnectIsRefusedWith400) {
  server_ = std::make_unique<ServerSide>(dispatcher_, fds_[0], ServerCodecLimits{});
  raw_ = std::make_unique<RawPeer>(dispatcher_, fds_[1]);
  std::string block = hpack({{":method", "CONNECT"}, {":authority", "example.com:443"}});
  raw_->send(std::string(NGHTTP2_CLIENT_MAGIC) + frame(NGHTTP2_SETTINGS, 0, 0, "") +
             frame(NGHTTP2_HEADERS, NGHTTP2_FLAG_END_HEADERS, 1, block));
  ASSERT_TRUE(run([&] { return raw_->find(NGHTTP2_HEADERS, 1).has_value(); }));
  EXPECT_TRUE(server_->requests.empty());
  ASSERT_EQ(1u, server_->protocol_errors.size());
  EXPECT_EQ("http2.unsupported_request_target", server_->protocol_errors[0]);
  EXPECT_TRUE(server_->dispatch_error.empty());
  EXPECT_FALSE(raw_->closed);
}

// Too many headers: 431 from the codec, the connection manager never sees the request.
TEST_F(Http2CodecTest, HeaderCountLimitReplies431) {
  ServerCodecLimits limits;
  limits.max_headers_count = 3;
  connectCodecs(limits);
  RequestHeaders req = makeRequest("GET", "/");
  for (int i = 0; i < 5; ++i) {
    req.headers.add("x-h" + std::to_string(i), "v");
  }
  ClientResponse& resp = client_->start(req, true);
  ASSERT_TRUE(run([&] { return resp.end; }));
  EXPECT_EQ(431u, resp.headers->status);
  EXPECT_EQ("http2.too_many_headers\n", resp.body);
  EXPECT_TRUE(server_->requests.empty());
  ASSERT_EQ(1u, server_->protocol_errors.size());
  EXPECT_EQ("http2.too_many_headers", server_->protocol_errors[0]);
  // The connection stays usable.
  ClientResponse& ok = client_->start(makeRequest("GET", "/"), true);
  ASSERT_TRUE(run([&] { return server_->requests.size() == 1; }));
  ResponseHeaders h;
  server_->requests[0]->encoder->encodeHeaders(h, true);
  ASSERT_TRUE(run([&] { return ok.end; }));
  EXPECT_EQ(200u, ok.headers->status);
}

// Header bytes over the limit: 431.
TEST_F(Http2CodecTest, HeaderBytesLimitReplies431) {
  ServerCodecLimits limits;
  limits.max_request_headers_bytes = 1024;
  connectCodecs(limits);
  RequestHeaders req = makeRequest("GET", "/");
  req.headers.add("x-big", std::string(2048, 'a'));
  ClientResponse& resp = client_->start(req, true);
  ASSERT_TRUE(run([&] { return resp.end; }));
  EXPECT_EQ(431u, resp.headers->status);
  EXPECT_TRUE(server_->requests.empty());
}

// A body over the limit mid-stream: the owner is told (ProtocolError), the client gets 413 and
// the rest of its upload is cancelled with RST_STREAM(NO_ERROR), which it treats as success.
TEST_F(Http2CodecTest, BodyLimitReplies413) {
  ServerCodecLimits limits;
  limits.max_request_body_bytes = 100 * 1024;
  connectCodecs(limits);
  ClientResponse& resp = client_->start(makeRequest("POST", "/up"), false);
  std::string chunk(64 * 1024, 'b');
  for (int i = 0; i < 3; ++i) {
    evbuffer* buf = evbuffer_new();
    evbuffer_add(buf, chunk.data(), chunk.size());
    resp.encoder->encodeData(buf, i == 2);
    evbuffer_free(buf);
  }
  ASSERT_TRUE(run([&] { return resp.end && client_->codec->activeStreams() == 0; }));
  EXPECT_EQ(413u, resp.headers->status);
  EXPECT_FALSE(resp.reset.has_value());
  ASSERT_EQ(1u, server_->requests.size());
  ASSERT_TRUE(server_->requests[0]->reset.has_value());
  EXPECT_EQ(StreamResetReason::ProtocolError, *server_->requests[0]->reset);
  ASSERT_TRUE(run([&] { return server_->codec->activeStreams() == 0; }));
}

// Expect: 100-continue gets an interim 100 before the final response.
TEST_F(Http2CodecTest, ExpectContinue) {
  connectCodecs();
  RequestHeaders req = makeRequest("POST", "/");
  req.headers.add("expect", "100-continue");
  ClientResponse& resp = client_->start(req, false);
  ASSERT_TRUE(run([&] { return resp.informational.size() == 1; }));
  EXPECT_EQ(100u, resp.informational[0]);
  EXPECT_FALSE(server_->requests[0]->headers->headers.has("expect"));
  evbuffer* buf = evbuffer_new();
  evbuffer_add(buf, "x", 1);
  resp.encoder->encodeData(buf, true);
  evbuffer_free(buf);
  ASSERT_TRUE(run([&] { return server_->requests[0]->end; }));
  ResponseHeaders h;
  server_->requests[0]->encoder->encodeHeaders(h, true);
  ASSERT_TRUE(run([&] { return resp.end; }));
  EXPECT_EQ(200u, resp.headers->status);
}

// Closing the connection resets open streams: ConnectionTermination on the server,
// ConnectionTermination on a client that already received bytes.
TEST_F(Http2CodecTest, ConnectionCloseResetsStreams) {
  connectCodecs();
  ClientResponse& resp = client_->start(makeRequest("GET", "/"), true);
  ASSERT_TRUE(run([&] { return server_->requests.size() == 1; }));
  server_->connection->close(network::Connection::CloseType::NoFlush);
  ASSERT_TRUE(run([&] { return resp.reset.has_value(); }));
  EXPECT_EQ(StreamResetReason::ConnectionTermination, *resp.reset);
  ASSERT_TRUE(server_->requests[0]->reset.has_value());
  EXPECT_EQ(StreamResetReason::ConnectionTermination, *server_->requests[0]->reset);
  EXPECT_FALSE(client_->codec->canCreateStream());
  // Broken precondition (stream on a dead connection): the reset comes later, not inside
  // newStream/encodeHeaders; a stream the owner resets first hears nothing.
  ClientResponse late;
  RequestEncoder& enc = client_->codec->newStream(late);
  enc.stream().setCallbacks(&late);
  enc.encodeHeaders(makeRequest("GET", "/late"), true);
  EXPECT_FALSE(late.reset.has_value());
  ClientResponse cancelled;
  RequestEncoder& enc2 = client_->codec->newStream(cancelled);
  enc2.stream().setCallbacks(&cancelled);
  enc2.stream().resetStream(StreamResetReason::LocalReset);
  ASSERT_TRUE(run([&] { return late.reset.has_value(); }));
  EXPECT_EQ(StreamResetReason::ConnectionFailure, *late.reset);
  ASSERT_FALSE(run([&] { return cancelled.reset.has_value(); }, 10ms));
  EXPECT_EQ(0u, client_->codec->activeStreams());
}

// Interop with a real client: h2load (nghttp2-client) uploads to the server codec with many
// streams in flight and expects every response to be a 200.
TEST_F(Http2CodecTest, RealClientH2load) {
  const char* h2load = "/usr/bin/h2load";
  // scripts/install-deps.sh installs nghttp2-client: a missing h2load is a broken setup, not a
  // reason to pass without testing anything.
  ASSERT_EQ(0, access(h2load, X_OK))
      << h2load << " is missing: install nghttp2-client (scripts/install-deps.sh does)";
  int lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
  ASSERT_GE(lfd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(0, bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)));
  ASSERT_EQ(0, listen(lfd, 16));
  socklen_t len = sizeof(addr);
  ASSERT_EQ(0, getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len));
  std::string url = "http://127.0.0.1:" + std::to_string(ntohs(addr.sin_port)) + "/echo";

  std::vector<std::unique_ptr<ServerSide>> servers;
  struct Accept {
    event::Dispatcher* dispatcher;
    int lfd;
    std::vector<std::unique_ptr<ServerSide>>* servers;
  } accept_ctx{&dispatcher_, lfd, &servers};
  ::event* ev = event_new(
      dispatcher_.base(), lfd, EV_READ | EV_PERSIST,
      [](evutil_socket_t fd, short, void* arg) {
        auto* ctx = static_cast<Accept*>(arg);
        int cfd = accept4(fd, nullptr, nullptr, SOCK_NONBLOCK);
        if (cfd < 0) {
          return;
        }
        auto side = std::make_unique<ServerSide>(*ctx->dispatcher, cfd, ServerCodecLimits{});
        side->on_new_stream = [](ServerRequest& r) {
          r.keep_body = false;
          r.on_end = [](ServerRequest& req) {
            ResponseHeaders h;
            std::string size = std::to_string(req.body_bytes);
            h.headers.add("content-length", std::to_string(size.size()));
            req.encoder->encodeHeaders(h, false);
            evbuffer* body = evbuffer_new();
            evbuffer_add(body, size.data(), size.size());
            req.encoder->encodeData(body, true);
            evbuffer_free(body);
          };
        };
        ctx->servers->push_back(std::move(side));
      },
      &accept_ctx);
  event_add(ev, nullptr);

  std::string upload =
      std::filesystem::temp_directory_path() / ("h2load_body_" + std::to_string(getpid()));
  std::string out = upload + ".out";
  { std::ofstream(upload) << std::string(100 * 1024, 'u'); }
  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, STDOUT_FILENO, out.c_str(),
                                   O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_addopen(&actions, STDERR_FILENO, "/dev/null", O_WRONLY, 0);
  std::vector<std::string> args = {h2load, "-n", "200", "-c", "2", "-m", "20", "-d", upload, url};
  std::vector<char*> argv;
  for (auto& a : args) {
    argv.push_back(a.data());
  }
  argv.push_back(nullptr);
  pid_t pid = -1;
  ASSERT_EQ(0, posix_spawn(&pid, h2load, &actions, nullptr, argv.data(), environ));
  posix_spawn_file_actions_destroy(&actions);
  int status = -1;
  bool exited = run([&] { return waitpid(pid, &status, WNOHANG) == pid; }, 10000ms);
  if (!exited) {
    kill(pid, SIGKILL);
    waitpid(pid, &status, 0);
  }
  event_free(ev);
  close(lfd);
  std::ifstream in(out);
  std::string report((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::filesystem::remove(upload);
  std::filesystem::remove(out);
  ASSERT_TRUE(exited);
  EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0) << report;
  EXPECT_NE(std::string::npos, report.find("200 succeeded, 0 failed")) << report;
  EXPECT_NE(std::string::npos, report.find("status codes: 200 2xx")) << report;
  for (auto& side : servers) {
    for (auto& r : side->requests) {
      EXPECT_EQ(100u * 1024u, r->body_bytes);
    }
    side->codec.reset();
  }
}

}  // namespace
}  // namespace bulwark::http
