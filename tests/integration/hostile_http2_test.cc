// Hostile HTTP/2 (h2c prior knowledge) input against the real bulwark binary: a bad preface
// closes the connection, malformed requests are reset or answered 4xx without touching other
// streams or the upstream, header and body limits answer 431/413, and Rapid Reset / SETTINGS / PING
// floods neither crash bulwark nor grow its memory. Requests that nghttp2's own client would refuse
// to send are written as raw frames by RawH2Connection below.

#include <signal.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstring>
#include <functional>
#include <iterator>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nghttp2/nghttp2.h>

#include "tests/integration/hostile_fixture.h"
#include "tests/support/admin_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/http2_client.h"
#include "tests/support/process.h"
#include "tests/support/socket_util.h"
#include "tests/support/wait.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

constexpr uint8_t kFrameData = 0x0;
constexpr uint8_t kFrameHeaders = 0x1;
constexpr uint8_t kFrameRstStream = 0x3;
constexpr uint8_t kFrameSettings = 0x4;
constexpr uint8_t kFramePing = 0x6;
constexpr uint8_t kFrameGoAway = 0x7;
constexpr uint8_t kFrameContinuation = 0x9;
constexpr uint8_t kFlagEndStream = 0x1;
constexpr uint8_t kFlagAck = 0x1;
constexpr uint8_t kFlagEndHeaders = 0x4;
constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/** One header field as it goes on the wire: names are NOT lower-cased (hostile tests need that). */
using RawHeaders = std::vector<std::pair<std::string, std::string>>;

std::string frameHeader(size_t length, uint8_t type, uint8_t flags, uint32_t stream_id) {
  std::string out(9, '\0');
  out[0] = static_cast<char>((length >> 16) & 0xff);
  out[1] = static_cast<char>((length >> 8) & 0xff);
  out[2] = static_cast<char>(length & 0xff);
  out[3] = static_cast<char>(type);
  out[4] = static_cast<char>(flags);
  out[5] = static_cast<char>((stream_id >> 24) & 0x7f);
  out[6] = static_cast<char>((stream_id >> 16) & 0xff);
  out[7] = static_cast<char>((stream_id >> 8) & 0xff);
  out[8] = static_cast<char>(stream_id & 0xff);
  return out;
}

std::string frame(uint8_t type, uint8_t flags, uint32_t stream_id, std::string_view payload = {}) {
  return frameHeader(payload.size(), type, flags, stream_id).append(payload);
}

std::string u32(uint32_t v) {
  std::string out(4, '\0');
  out[0] = static_cast<char>(v >> 24);
  out[1] = static_cast<char>(v >> 16);
  out[2] = static_cast<char>(v >> 8);
  out[3] = static_cast<char>(v);
  return out;
}

/** What bulwark did on one stream of a RawH2Connection. */
struct RawStream {
  int status = 0;
  bool end_stream = false;
  bool reset = false;
  uint32_t reset_code = 0;
  std::string body;
};

/**
 * A hand-driven h2c connection: HPACK through nghttp2's deflater/inflater (which do not validate
 * names), frames written verbatim, frames read and recorded per stream. No flow control is sent
 * (responses in these tests are small). Thread: the test thread.
 */
class RawH2Connection {
public:
  explicit RawH2Connection(uint16_t port, int rcvbuf = 0) : port_(port), rcvbuf_(rcvbuf) {
    nghttp2_hd_deflate_new(&deflater_, 4096);
    nghttp2_hd_inflate_new(&inflater_);
  }
  ~RawH2Connection() {
    if (fd_ >= 0) {
      ::close(fd_);
    }
    nghttp2_hd_deflate_del(deflater_);
    nghttp2_hd_inflate_del(inflater_);
  }

  /** Connects and (unless told otherwise) sends the preface and an empty SETTINGS frame. */
  bool connect(bool handshake = true) {
    fd_ = connectTcp("127.0.0.1", port_, deadlineIn(2s), &error_, rcvbuf_);
    if (fd_ < 0) {
      return false;
    }
    return !handshake || send(std::string(kPreface) + frame(kFrameSettings, 0, 0));
  }

  bool send(std::string_view bytes, Deadline deadline = deadlineIn(3s)) {
    return sendAll(fd_, bytes, deadline, &error_);
  }

  /** HPACK-encodes a header block exactly as given. */
  std::string encode(const RawHeaders& headers) {
    std::vector<nghttp2_nv> nva;
    for (const auto& [name, value] : headers) {
      nva.push_back({reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                     reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                     value.size(), NGHTTP2_NV_FLAG_NONE});
    }
    std::string out(nghttp2_hd_deflate_bound(deflater_, nva.data(), nva.size()), '\0');
    ssize_t n = nghttp2_hd_deflate_hd(deflater_, reinterpret_cast<uint8_t*>(out.data()), out.size(),
                                      nva.data(), nva.size());
    out.resize(n < 0 ? 0 : static_cast<size_t>(n));
    return out;
  }

  /** A HEADERS frame (END_HEADERS) for a request on `stream_id`. */
  std::string headersFrame(uint32_t stream_id, const RawHeaders& headers, bool end_stream) {
    return frame(kFrameHeaders,
                 static_cast<uint8_t>(kFlagEndHeaders | (end_stream ? kFlagEndStream : 0)),
                 stream_id, encode(headers));
  }

  static RawHeaders get(const std::string& path, RawHeaders extra = {}) {
    RawHeaders h = {
        {":method", "GET"}, {":scheme", "http"}, {":authority", "bulwark.test"}, {":path", path}};
    h.insert(h.end(), extra.begin(), extra.end());
    return h;
  }

  /** Reads what is available (waiting up to the deadline for something) and parses frames. */
  bool pumpOnce(Deadline deadline) {
    if (closed_) {
      return false;
    }
    char buf[16384];
    RecvResult r = recvSome(fd_, buf, sizeof(buf), deadline);
    if (r.n == -2) {
      return false;
    }
    if (r.n <= 0) {
      closed_ = true;
      return false;
    }
    in_.append(buf, static_cast<size_t>(r.n));
    parseFrames();
    return true;
  }

  /** Pumps until predicate holds, the peer closes, or the deadline passes. */
  bool runUntil(const std::function<bool()>& predicate, Deadline deadline = deadlineIn(3s)) {
    while (!predicate()) {
      if (closed_ || Clock::now() >= deadline) {
        return predicate();
      }
      pumpOnce(deadline);
    }
    return true;
  }

  bool waitForStream(uint32_t id, Deadline deadline = deadlineIn(3s)) {
    return runUntil([&] { return streams_[id].end_stream || streams_[id].reset; }, deadline);
  }
  bool waitForClose(Deadline deadline = deadlineIn(3s)) {
    return runUntil([&] { return closed_; }, deadline) || closed_;
  }

  RawStream& stream(uint32_t id) { return streams_[id]; }
  /** Streams that got their whole answer or a reset. */
  size_t answeredStreams() const {
    return static_cast<size_t>(std::count_if(streams_.begin(), streams_.end(), [](const auto& s) {
      return s.second.end_stream || s.second.reset;
    }));
  }
  bool closed() const { return closed_; }
  bool goAwayReceived() const { return goaway_; }
  uint32_t goAwayCode() const { return goaway_code_; }
  const std::string& lastError() const { return error_; }
  int fd() const { return fd_; }

private:
  static uint32_t readU32(const char* p) {
    auto b = reinterpret_cast<const uint8_t*>(p);
    return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
  }

  void parseFrames() {
    // Consumed bytes are dropped once per read, not per frame: a flood's replies are megabytes.
    size_t pos = 0;
    while (in_.size() - pos >= 9) {
      auto b = reinterpret_cast<const uint8_t*>(in_.data() + pos);
      size_t length = (size_t{b[0]} << 16) | (size_t{b[1]} << 8) | size_t{b[2]};
      if (in_.size() - pos < 9 + length) {
        break;
      }
      uint8_t type = b[3];
      uint8_t flags = b[4];
      uint32_t sid = readU32(in_.data() + pos + 5) & 0x7fffffff;
      std::string payload = in_.substr(pos + 9, length);
      pos += 9 + length;
      onFrame(type, flags, sid, payload);
    }
    in_.erase(0, pos);
  }

  void onFrame(uint8_t type, uint8_t flags, uint32_t sid, const std::string& payload) {
    switch (type) {
      case kFrameSettings:
        if ((flags & kFlagAck) == 0) {
          send(frame(kFrameSettings, kFlagAck, 0));
        }
        break;
      case kFrameHeaders:
      case kFrameContinuation: {
        std::string block = payload;
        if (type == kFrameHeaders) {
          size_t pos = 0, pad = 0;
          if (flags & 0x8) {
            pad = static_cast<uint8_t>(block[pos++]);
          }
          if (flags & 0x20) {
            pos += 5;
          }
          block = block.substr(pos, block.size() - pos - pad);
          if (flags & kFlagEndStream) {
            pending_end_stream_ = true;
          }
        }
        header_block_ += block;
        if (flags & kFlagEndHeaders) {
          decodeBlock(sid);
          if (pending_end_stream_) {
            streams_[sid].end_stream = true;
          }
          pending_end_stream_ = false;
        }
        break;
      }
      case kFrameData: {
        std::string data = payload;
        if (flags & 0x8) {
          size_t pad = static_cast<uint8_t>(data[0]);
          data = data.substr(1, data.size() - 1 - pad);
        }
        streams_[sid].body += data;
        if (flags & kFlagEndStream) {
          streams_[sid].end_stream = true;
        }
        break;
      }
      case kFrameRstStream:
        streams_[sid].reset = true;
        streams_[sid].reset_code = payload.size() >= 4 ? readU32(payload.data()) : 0;
        break;
      case kFrameGoAway:
        goaway_ = true;
        goaway_code_ = payload.size() >= 8 ? readU32(payload.data() + 4) : 0;
        break;
      default: break;
    }
  }

  void decodeBlock(uint32_t sid) {
    const auto* in = reinterpret_cast<const uint8_t*>(header_block_.data());
    size_t left = header_block_.size();
    for (;;) {
      nghttp2_nv nv;
      int inflate_flags = 0;
      ssize_t n = nghttp2_hd_inflate_hd2(inflater_, &nv, &inflate_flags, in, left, 1);
      if (n < 0) {
        break;
      }
      in += n;
      left -= static_cast<size_t>(n);
      if (inflate_flags & NGHTTP2_HD_INFLATE_EMIT) {
        std::string name(reinterpret_cast<char*>(nv.name), nv.namelen);
        if (name == ":status" && streams_[sid].status == 0) {
          streams_[sid].status =
              std::stoi(std::string(reinterpret_cast<char*>(nv.value), nv.valuelen));
        }
      }
      if (inflate_flags & NGHTTP2_HD_INFLATE_FINAL) {
        nghttp2_hd_inflate_end_headers(inflater_);
        break;
      }
      if ((inflate_flags & NGHTTP2_HD_INFLATE_EMIT) == 0 && left == 0) {
        break;
      }
    }
    header_block_.clear();
  }

  uint16_t port_;
  int rcvbuf_;
  int fd_ = -1;
  nghttp2_hd_deflater* deflater_ = nullptr;
  nghttp2_hd_inflater* inflater_ = nullptr;
  std::string in_;
  std::string header_block_;
  bool pending_end_stream_ = false;
  std::map<uint32_t, RawStream> streams_;
  bool closed_ = false;
  bool goaway_ = false;
  uint32_t goaway_code_ = 0;
  std::string error_;
};

/** The shared bulwark with an h2c listener. */
class HostileHttp2Test : public HostileProxyTest {
protected:
  static void SetUpTestSuite() { startShared("h2c"); }
  static void TearDownTestSuite() { stopShared(); }

  static std::string expectStillServing() { return expectStillServingOver<Http2Client>(); }

  /**
   * After the attack: the upstream saw only `allowed` paths (plus the liveness probe, which this
   * runs), and none of the forbidden ones arrived whole.
   */
  void expectUpstreamSawOnly(const std::vector<std::string>& allowed) {
    std::string probe = expectStillServing();
    EXPECT_TRUE(upstream_->waitForRequests(baseline_ + allowed.size() + 1, deadlineIn(2s)));
    for (const auto& req : newUpstreamRequests()) {
      if (req.path == probe) {
        continue;
      }
      if (std::find(allowed.begin(), allowed.end(), req.path) != allowed.end()) {
        continue;
      }
      EXPECT_FALSE(req.complete) << "a rejected request reached the upstream whole: " << req.method
                                 << " " << req.path;
    }
  }
};

// --- Preface ----------------------------------------------------------------------------------

TEST_F(HostileHttp2Test, BadPrefaceClosesConnection) {
  RawH2Connection conn(port());
  ASSERT_TRUE(conn.connect(/*handshake=*/false)) << conn.lastError();
  ASSERT_TRUE(conn.send("PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n" + frame(kFrameSettings, 0, 0)));
  EXPECT_TRUE(conn.waitForClose(deadlineIn(3s))) << "bulwark kept a connection with a bad preface";
  EXPECT_TRUE(waitForMetric(
      bulwark_->adminPort(), kProtocolErrors, {{"listener", "public"}},
      [&](double v) { return v >= errors_before_ + 1; }, deadlineIn(2s)));
  expectUpstreamSawOnly({});
}

TEST_F(HostileHttp2Test, Http1RequestOnH2cListenerClosesConnection) {
  RawH2Connection conn(port());
  ASSERT_TRUE(conn.connect(/*handshake=*/false)) << conn.lastError();
  ASSERT_TRUE(conn.send("GET /h1 HTTP/1.1\r\nHost: h\r\n\r\n"));
  EXPECT_TRUE(conn.waitForClose(deadlineIn(3s)));
  expectUpstreamSawOnly({});
}

TEST_F(HostileHttp2Test, FrameBeforePrefaceClosesConnection) {
  RawH2Connection conn(port());
  ASSERT_TRUE(conn.connect(/*handshake=*/false)) << conn.lastError();
  ASSERT_TRUE(conn.send(conn.headersFrame(1, RawH2Connection::get("/early"), true)));
  EXPECT_TRUE(conn.waitForClose(deadlineIn(3s)));
  expectUpstreamSawOnly({});
}

// --- Malformed requests: the stream fails, its neighbours do not -------------------------------

/** Sends valid /ok-a on stream 1, `bad` on stream 3, valid /ok-b on stream 5, in one write. */
void expectOnlyMiddleStreamRejected(uint16_t port, const RawHeaders& bad,
                                    const std::function<void(const RawStream&)>& check_bad) {
  RawH2Connection conn(port);
  ASSERT_TRUE(conn.connect()) << conn.lastError();
  // Encoded one after another: HPACK state depends on the order.
  std::string out = conn.headersFrame(1, RawH2Connection::get("/ok-a"), true);
  out += conn.headersFrame(3, bad, true);
  out += conn.headersFrame(5, RawH2Connection::get("/ok-b"), true);
  ASSERT_TRUE(conn.send(out));
  ASSERT_TRUE(conn.waitForStream(1));
  ASSERT_TRUE(conn.waitForStream(3));
  ASSERT_TRUE(conn.waitForStream(5));
  EXPECT_EQ(200, conn.stream(1).status);
  EXPECT_EQ(200, conn.stream(5).status);
  EXPECT_TRUE(conn.stream(1).end_stream);
  EXPECT_TRUE(conn.stream(5).end_stream);
  check_bad(conn.stream(3));
  EXPECT_FALSE(conn.goAwayReceived()) << "a stream error must not take the connection down";
  EXPECT_FALSE(conn.closed());
}

void expectResetOr400(const RawStream& s) {
  if (s.reset) {
    EXPECT_EQ(uint32_t{NGHTTP2_PROTOCOL_ERROR}, s.reset_code);
  } else {
    EXPECT_EQ(400, s.status);
  }
}

TEST_F(HostileHttp2Test, UppercaseHeaderNameResetsOnlyThatStream) {
  expectOnlyMiddleStreamRejected(port(), RawH2Connection::get("/bad", {{"X-Upper", "v"}}),
                                 expectResetOr400);
  EXPECT_TRUE(waitForMetric(
      bulwark_->adminPort(), kProtocolErrors, {{"listener", "public"}},
      [&](double v) { return v >= errors_before_ + 1; }, deadlineIn(2s)))
      << "the malformed stream was not counted";
  expectUpstreamSawOnly({"/ok-a", "/ok-b"});
}

TEST_F(HostileHttp2Test, ConnectionSpecificHeadersResetOnlyThatStream) {
  const RawHeaders shapes[] = {{{"connection", "keep-alive"}}, {{"transfer-encoding", "chunked"}},
                               {{"keep-alive", "timeout=5"}},  {{"proxy-connection", "keep-alive"}},
                               {{"upgrade", "h2c"}},           {{"te", "gzip"}}};
  for (const auto& extra : shapes) {
    SCOPED_TRACE(extra[0].first);
    expectOnlyMiddleStreamRejected(port(), RawH2Connection::get("/bad", extra), expectResetOr400);
  }
  std::vector<std::string> ok;
  for (size_t i = 0; i < std::size(shapes); ++i) {
    ok.push_back("/ok-a");
    ok.push_back("/ok-b");
  }
  expectUpstreamSawOnly(ok);
}

TEST_F(HostileHttp2Test, BadPseudoHeadersAndCrlfResetOnlyThatStream) {
  const RawHeaders shapes[] = {
      // :path missing.
      {{":method", "GET"}, {":scheme", "http"}, {":authority", "a"}},
      // :path twice.
      {{":method", "GET"},
       {":scheme", "http"},
       {":authority", "a"},
       {":path", "/x"},
       {":path", "/y"}},
      // A pseudo-header after a regular one.
      {{":method", "GET"}, {":scheme", "http"}, {"x-a", "b"}, {":path", "/x"}},
      // Unknown pseudo-header.
      {{":method", "GET"}, {":scheme", "http"}, {":path", "/x"}, {":evil", "1"}},
      // CRLF injection in a value (H2 -> H1 downgrade smuggling).
      {{":method", "GET"},
       {":scheme", "http"},
       {":path", "/x"},
       {"x-a", "b\r\nTransfer-Encoding: chunked"}},
      // NUL in a value.
      {{":method", "GET"}, {":scheme", "http"}, {":path", "/x"}, {"x-a", std::string("b\0c", 3)}},
      // Space in the path.
      {{":method", "GET"}, {":scheme", "http"}, {":path", "/x y"}},
  };
  int index = 0;
  for (const auto& bad : shapes) {
    SCOPED_TRACE(index++);
    expectOnlyMiddleStreamRejected(port(), bad, expectResetOr400);
  }
  std::vector<std::string> ok;
  for (size_t i = 0; i < std::size(shapes); ++i) {
    ok.push_back("/ok-a");
    ok.push_back("/ok-b");
  }
  expectUpstreamSawOnly(ok);
}

// H2.CL (downgrade smuggling): content-length disagrees with the DATA that follows.
TEST_F(HostileHttp2Test, ContentLengthMismatchIsNeverForwardedWhole) {
  RawH2Connection conn(port());
  ASSERT_TRUE(conn.connect()) << conn.lastError();
  RawHeaders headers = {{":method", "POST"},
                        {":scheme", "http"},
                        {":authority", "a"},
                        {":path", "/h2cl"},
                        {"content-length", "5"}};
  ASSERT_TRUE(conn.send(
      conn.headersFrame(1, headers, false) +
      frame(kFrameData, kFlagEndStream, 1, "helloGET /smuggled HTTP/1.1\r\nHost: a\r\n\r\n")));
  ASSERT_TRUE(conn.waitForStream(1));
  expectResetOr400(conn.stream(1));
  EXPECT_FALSE(conn.closed());
  expectUpstreamSawOnly({});
  for (const auto& req : newUpstreamRequests()) {
    EXPECT_NE("/smuggled", req.path);
  }
}

// When :authority and host disagree, :authority wins, so the
// HTTP/1 upstream is never routed for one host and handed another.
TEST_F(HostileHttp2Test, AuthorityWinsOverHostHeader) {
  RawH2Connection conn(port());
  ASSERT_TRUE(conn.connect()) << conn.lastError();
  RawHeaders headers = {{":method", "GET"},
                        {":scheme", "http"},
                        {":authority", "good.example"},
                        {":path", "/authority"},
                        {"host", "evil.example"}};
  ASSERT_TRUE(conn.send(conn.headersFrame(1, headers, true)));
  ASSERT_TRUE(conn.waitForStream(1));
  EXPECT_EQ(200, conn.stream(1).status);
  ASSERT_TRUE(upstream_->waitForRequests(baseline_ + 1, deadlineIn(2s)));
  auto req = newUpstreamRequests().at(0);
  EXPECT_EQ("/authority", req.path);
  EXPECT_EQ((std::vector<std::string>{"good.example"}), headerValues(req.headers, "host"));
}

// --- Limits -----------------------------------------------------------------------------------

TEST_F(HostileHttp2Test, TooManyHeadersGet431OtherStreamsUnaffected) {
  double before = protocolErrors("http2.too_many_headers");
  Http2Client client(port());
  ASSERT_TRUE(client.connect(deadlineIn(3s))) << client.lastError();
  Http2Request many = http2Get("/many");
  for (uint32_t i = 0; i < kMaxHeadersCount + 5; ++i) {
    many.withHeader("x-h" + std::to_string(i), "v");
  }
  int32_t bad = client.submit(many);
  int32_t good = client.submit(http2Get("/fine"));
  ASSERT_TRUE(client.waitForResponses({bad, good}, deadlineIn(3s))) << client.lastError();
  EXPECT_EQ(431, client.response(bad).status);
  EXPECT_EQ(200, client.response(good).status);
  EXPECT_TRUE(client.isOpen());
  EXPECT_TRUE(waitForProtocolError("http2.too_many_headers", before));
  expectUpstreamSawOnly({"/fine"});
}

TEST_F(HostileHttp2Test, HeaderBytesOverLimitAreRefused) {
  // Over SETTINGS_MAX_HEADER_LIST_SIZE: nghttp2 or the codec refuses it (431 or a reset); the
  // connection and its other streams survive.
  Http2Client client(port());
  ASSERT_TRUE(client.connect(deadlineIn(3s))) << client.lastError();
  int32_t bad =
      client.submit(http2Get("/big", {{"x-big", std::string(kMaxHeaderBytes + 100, 'b')}}));
  int32_t good = client.submit(http2Get("/fine"));
  ASSERT_TRUE(client.waitForResponses({bad, good}, deadlineIn(3s))) << client.lastError();
  const auto& r = client.response(bad);
  EXPECT_TRUE(r.status == 431 || r.reset_by_peer) << "status " << r.status;
  EXPECT_EQ(200, client.response(good).status);
  expectUpstreamSawOnly({"/fine"});
}

TEST_F(HostileHttp2Test, DeclaredBodyOverLimitGets413) {
  double before = protocolErrors("http2.request_body_too_large");
  Http2Client client(port());
  ASSERT_TRUE(client.connect(deadlineIn(3s))) << client.lastError();
  std::string body(kMaxBodyBytes + 1, 'x');
  auto r = client.request(
      http2Request("POST", "/upload", {{"content-length", std::to_string(body.size())}}, body),
      deadlineIn(3s));
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(413, r->status);
  EXPECT_TRUE(waitForProtocolError("http2.request_body_too_large", before));
  expectUpstreamSawOnly({});
}

TEST_F(HostileHttp2Test, StreamedBodyOverLimitGets413OrReset) {
  double before = protocolErrors("http2.request_body_too_large");
  Http2Client client(port());
  ASSERT_TRUE(client.connect(deadlineIn(3s))) << client.lastError();
  Http2Request up = http2Request("POST", "/stream-upload");
  up.generated_body_bytes = 64 * 1024;  // no content-length: the limit trips mid-body
  int32_t id = client.submit(up);
  ASSERT_TRUE(client.waitForResponse(id, deadlineIn(3s))) << client.lastError();
  const auto& r = client.response(id);
  EXPECT_TRUE(r.status == 413 || r.reset_by_peer) << "status " << r.status;
  EXPECT_TRUE(waitForProtocolError("http2.request_body_too_large", before));
  expectUpstreamSawOnly({});
  // The connection is still good for the next stream.
  auto again = client.get("/after-413", {}, deadlineIn(3s));
  ASSERT_TRUE(again) << client.lastError();
  EXPECT_EQ(200, again->status);
}

// An h2c connection that has sent its preface but no request yet is idle, not slow: it is
// governed by idleTimeout (30 s here), not headerReadTimeout (1 s). gRPC channels connect ahead
// of their first call and may sit like this for a long time.
TEST_F(HostileHttp2Test, IdleH2cConnectionOutlivesHeaderReadTimeout) {
  Http2Client client(port());
  ASSERT_TRUE(client.connect(deadlineIn(3s))) << client.lastError();
  // Pump the connection for longer than headerReadTimeout; it must stay open.
  EXPECT_FALSE(client.runUntil([&] { return !client.isOpen(); }, deadlineIn(1500ms)))
      << "bulwark closed an idle h2c connection after headerReadTimeout";
  auto r = client.get("/after-idle", {}, deadlineIn(3s));
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);
}

// --- Floods -----------------------------------------------------------------------------------

// CVE-2023-44487: open and cancel streams as fast as possible. nghttp2's stream-reset rate limit
// (a bucket of 1000) makes bulwark answer with GOAWAY and close; that must reach the client, be
// counted, leave bulwark serving, and not grow its memory with the number of streams.
TEST_F(HostileHttp2Test, RapidResetGetsGoAwayAndMemoryStaysBounded) {
  const pid_t pid = bulwark_->process().pid();
  auto rss_before = readRssBytes(pid);
  ASSERT_TRUE(rss_before);
  const std::string reason = "http2.goaway_sent.INTERNAL_ERROR";
  double before = protocolErrors(reason);
  constexpr int kConnections = 4;
  constexpr uint32_t kPairsPerConnection = 5000;
  for (int c = 0; c < kConnections; ++c) {
    SCOPED_TRACE(c);
    RawH2Connection conn(port());
    ASSERT_TRUE(conn.connect()) << conn.lastError();
    std::string batch;
    bool write_failed = false;
    for (uint32_t i = 0; i < kPairsPerConnection && !write_failed; ++i) {
      uint32_t sid = 1 + 2 * i;
      batch += conn.headersFrame(sid, RawH2Connection::get("/rapid"), true);
      batch += frame(kFrameRstStream, 0, sid, u32(NGHTTP2_CANCEL));
      if (batch.size() > 32 * 1024) {
        write_failed = !conn.send(batch, deadlineIn(3s));  // bulwark may cut us off mid-burst
        batch.clear();
      }
    }
    if (!write_failed && !batch.empty()) {
      conn.send(batch, deadlineIn(3s));
    }
    EXPECT_TRUE(conn.waitForClose(deadlineIn(10s))) << "the Rapid Reset connection was not closed";
    EXPECT_TRUE(conn.goAwayReceived()) << "closed without telling the client why";
    EXPECT_EQ(uint32_t{NGHTTP2_INTERNAL_ERROR}, conn.goAwayCode());
  }
  EXPECT_TRUE(waitForMetric(
      bulwark_->adminPort(), kProtocolErrors, {{"listener", "public"}, {"reason", reason}},
      [&](double v) { return v >= before + kConnections; }, deadlineIn(2s)))
      << "Rapid Reset closes not counted as " << reason;
  ASSERT_TRUE(bulwark_->process().running()) << "bulwark crashed under Rapid Reset";
  expectStillServing();
  auto rss_after = readRssBytes(pid);
  ASSERT_TRUE(rss_after);
  int64_t growth = static_cast<int64_t>(*rss_after) - static_cast<int64_t>(*rss_before);
  int64_t ceiling = 32ll << 20;
#if defined(__SANITIZE_THREAD__)
  // TSan keeps shadow and metadata beside every byte touched (39 MiB measured there).
  ceiling *= 4;
#endif
  EXPECT_LT(growth, ceiling) << "RSS grew by " << (growth >> 10) << " KiB over "
                             << kConnections * kPairsPerConnection << " reset streams";
}

// The other Rapid Reset shape: malformed HEADERS that make bulwark send the RST_STREAM itself.
// Each costs bulwark work and an outbound frame; the abuser must be cut off like the
// client-reset shape (Rapid Reset), and bulwark must keep serving.
TEST_F(HostileHttp2Test, MalformedHeadersFloodIsCutOff) {
  const pid_t pid = bulwark_->process().pid();
  auto rss_before = readRssBytes(pid);
  ASSERT_TRUE(rss_before);
  RawH2Connection conn(port());
  ASSERT_TRUE(conn.connect()) << conn.lastError();
  std::string batch;
  bool write_failed = false;
  uint32_t sent = 0;
  for (uint32_t i = 0; i < 5000 && !write_failed; ++i) {
    batch +=
        conn.headersFrame(1 + 2 * i, RawH2Connection::get("/malformed", {{"X-Upper", "v"}}), true);
    ++sent;
    if (batch.size() > 16 * 1024) {
      write_failed = !conn.send(batch, deadlineIn(3s));
      batch.clear();
      // Read what bulwark sent so far, so its RST_STREAMs never back up into a write stall.
      while (!conn.closed() && conn.pumpOnce(deadlineIn(1ms))) {
      }
    }
  }
  if (!write_failed && !batch.empty()) {
    conn.send(batch, deadlineIn(3s));
  }
  // The deadline is generous: on a loaded machine bulwark may take a while to work through the
  // flood, and the close is what counts.
  EXPECT_TRUE(conn.waitForClose(deadlineIn(10s)))
      << "still open after " << sent << " malformed streams";
  EXPECT_TRUE(conn.goAwayReceived());
  EXPECT_NE(uint32_t{NGHTTP2_NO_ERROR}, conn.goAwayCode());
  ASSERT_TRUE(bulwark_->process().running()) << "bulwark crashed under a malformed-HEADERS flood";
  expectStillServing();
  auto rss_after = readRssBytes(pid);
  ASSERT_TRUE(rss_after);
  EXPECT_LT(static_cast<int64_t>(*rss_after) - static_cast<int64_t>(*rss_before), 16ll << 20);
}

// "MadeYouReset" (CVE-2025-8671): each request is followed by a frame that makes the server reset
// the stream itself, so the resets are not the client's and Rapid Reset accounting never sees
// them, while every request still starts upstream work. Two such frames: a zero-increment
// WINDOW_UPDATE and DATA after END_STREAM. Each must end the connection (GOAWAY with an error)
// long before the upstream has done the flood's work.
TEST_F(HostileHttp2Test, MadeYouResetGetsGoAwayBeforeTheUpstreamSeesTheFlood) {
  constexpr uint32_t kStreams = 5000;
  constexpr uint8_t kFrameWindowUpdate = 0x8;
  const std::vector<std::pair<std::string, std::function<std::string(uint32_t)>>> vectors = {
      {"zero WINDOW_UPDATE", [](uint32_t id) { return frame(kFrameWindowUpdate, 0, id, u32(0)); }},
      {"DATA after END_STREAM", [](uint32_t id) { return frame(kFrameData, 0, id, "x"); }},
  };
  for (const auto& [name, provoke] : vectors) {
    SCOPED_TRACE(name);
    const size_t before = upstream_->requestCount();
    RawH2Connection conn(port());
    ASSERT_TRUE(conn.connect()) << conn.lastError();
    std::string batch;
    bool write_failed = false;
    for (uint32_t i = 0; i < kStreams && !write_failed && !conn.closed(); ++i) {
      const uint32_t id = 1 + 2 * i;
      batch += conn.headersFrame(id, RawH2Connection::get("/made-you-reset"), true);
      batch += provoke(id);
      if (batch.size() > 16 * 1024) {
        write_failed = !conn.send(batch, deadlineIn(3s));
        batch.clear();
        while (!conn.closed() && conn.pumpOnce(deadlineIn(1ms))) {
        }
      }
    }
    if (!write_failed && !batch.empty() && !conn.closed()) {
      conn.send(batch, deadlineIn(3s));
    }
    EXPECT_TRUE(conn.waitForClose(deadlineIn(10s))) << "still open after " << kStreams;
    EXPECT_TRUE(conn.goAwayReceived());
    EXPECT_NE(uint32_t{NGHTTP2_NO_ERROR}, conn.goAwayCode());
    const size_t reached = upstream_->requestCount() - before;
    EXPECT_LT(reached, 1000u) << "the upstream did the work of " << reached << " reset streams";
    ASSERT_TRUE(bulwark_->process().running());
  }
  expectStillServing();
}

// A flood of requests that each earn a 431 (one header over maxHeadersCount): nghttp2 sees
// well-formed frames, so only bulwark's own stream-error budget (limits.streamErrorBudget,
// default burst 100 refilled at 10/s) ends it, with GOAWAY ENHANCE_YOUR_CALM. A client on
// another connection is served throughout.
TEST_F(HostileHttp2Test, RejectedStreamFloodExhaustsTheStreamErrorBudget) {
  constexpr uint32_t kStreams = 3000;
  constexpr uint32_t kEnhanceYourCalm = 0xb;
  const double before = protocolErrors("http2.stream_error_budget");
  std::vector<std::pair<std::string, std::string>> headers;
  for (uint32_t i = 0; i <= kMaxHeadersCount; ++i) {
    headers.emplace_back("x-h" + std::to_string(i), "v");
  }
  RawH2Connection conn(port());
  ASSERT_TRUE(conn.connect()) << conn.lastError();
  Http2Client bystander(port());
  ASSERT_TRUE(bystander.connect(deadlineIn(3s))) << bystander.lastError();
  std::string batch;
  uint32_t sent = 0;
  uint32_t bystander_ok = 0;
  for (uint32_t i = 0; i < kStreams && !conn.closed(); ++i) {
    batch += conn.headersFrame(1 + 2 * i, RawH2Connection::get("/rejected", headers), true);
    ++sent;
    if (batch.size() > 16 * 1024) {
      if (!conn.send(batch, deadlineIn(3s))) {
        break;
      }
      batch.clear();
      while (!conn.closed() && conn.pumpOnce(deadlineIn(1ms))) {
      }
      const int32_t id = bystander.submit(http2Get("/bystander"));
      if (bystander.waitForResponses({id}, deadlineIn(3s)) &&
          bystander.response(id).status == 200) {
        ++bystander_ok;
      }
    }
  }
  EXPECT_TRUE(conn.waitForClose(deadlineIn(10s))) << "still open after " << sent << " streams";
  EXPECT_TRUE(conn.goAwayReceived());
  EXPECT_EQ(kEnhanceYourCalm, conn.goAwayCode());
  // Counted on what bulwark answered, not on what was written: a loaded bulwark reads the flood
  // late, and the test may have written all of it by then.
  EXPECT_LT(conn.answeredStreams(), 1000u) << "the budget let " << conn.answeredStreams() << " of "
                                           << sent << " rejected streams through";
  EXPECT_TRUE(waitForProtocolError("http2.stream_error_budget", before));
  EXPECT_GT(bystander_ok, 0u);
  const int32_t last = bystander.submit(http2Get("/bystander"));
  ASSERT_TRUE(bystander.waitForResponses({last}, deadlineIn(3s))) << bystander.lastError();
  EXPECT_EQ(200, bystander.response(last).status);
  ASSERT_TRUE(bulwark_->process().running());
}

/** How a flood ended. */
struct FloodResult {
  size_t sent_units = 0;
  bool closed = false;
  bool goaway = false;
  uint32_t goaway_code = 0;
};

/**
 * Floods a connection whose receive buffer is tiny and never read with `unit`, until bulwark
 * stops taking it or `max_units` went out; then reads everything bulwark sent (the ACKs it owed,
 * then its GOAWAY) until it closes.
 */
FloodResult flood(uint16_t port, const std::string& unit, size_t max_units) {
  FloodResult result;
  RawH2Connection conn(port, /*rcvbuf=*/1024);
  if (!conn.connect()) {
    ADD_FAILURE() << conn.lastError();
    return result;
  }
  std::string batch;
  for (int i = 0; i < 2048; ++i) {
    batch += unit;
  }
  auto deadline = deadlineIn(15s);
  while (result.sent_units < max_units && Clock::now() < deadline) {
    if (!conn.send(batch, deadlineIn(2s))) {
      break;  // reset/closed by bulwark, or it stopped reading
    }
    result.sent_units += 2048;
  }
  result.closed = conn.waitForClose(deadlineIn(10s));
  result.goaway = conn.goAwayReceived();
  result.goaway_code = conn.goAwayCode();
  return result;
}

// A PING flood from a client that never reads: every PING owes an ACK, and once nghttp2's queue
// of unsent ACKs overflows bulwark tells the client why (GOAWAY) and closes.
TEST_F(HostileHttp2Test, PingFloodFromNonReaderGetsGoAway) {
  const pid_t pid = bulwark_->process().pid();
  auto rss_before = readRssBytes(pid);
  const double before = totalProtocolErrors();
  auto result = flood(port(), frame(kFramePing, 0, 0, "floodpng"), 500000);
  EXPECT_TRUE(result.closed) << "connection still open after " << result.sent_units << " PINGs";
  EXPECT_TRUE(result.goaway) << "closed without a GOAWAY after " << result.sent_units << " PINGs";
  EXPECT_EQ(uint32_t{NGHTTP2_PROTOCOL_ERROR}, result.goaway_code);
  EXPECT_TRUE(waitForMetric(
      bulwark_->adminPort(), kProtocolErrors, {{"listener", "public"}},
      [&](double v) { return v >= before + 1; }, deadlineIn(2s)))
      << "the flood was not counted";
  ASSERT_TRUE(bulwark_->process().running()) << "bulwark crashed under a PING flood";
  auto rss_after = readRssBytes(pid);
  ASSERT_TRUE(rss_before && rss_after);
  EXPECT_LT(static_cast<int64_t>(*rss_after) - static_cast<int64_t>(*rss_before), 16ll << 20);
  expectStillServing();
}

// The same for SETTINGS: each ACK is only 9 bytes, so the flood is made large enough (18 MB of
// ACKs) to outgrow the kernel's socket buffers (4 MiB at most here) before the ACK queue fills.
TEST_F(HostileHttp2Test, SettingsFloodFromNonReaderGetsGoAway) {
  const pid_t pid = bulwark_->process().pid();
  auto rss_before = readRssBytes(pid);
  auto result = flood(port(), frame(kFrameSettings, 0, 0), 2000000);
  EXPECT_TRUE(result.closed) << "connection still open after " << result.sent_units << " SETTINGS";
  EXPECT_TRUE(result.goaway) << "closed without a GOAWAY after " << result.sent_units
                             << " SETTINGS";
  EXPECT_EQ(uint32_t{NGHTTP2_PROTOCOL_ERROR}, result.goaway_code);
  ASSERT_TRUE(bulwark_->process().running()) << "bulwark crashed under a SETTINGS flood";
  auto rss_after = readRssBytes(pid);
  ASSERT_TRUE(rss_before && rss_after);
  EXPECT_LT(static_cast<int64_t>(*rss_after) - static_cast<int64_t>(*rss_before), 16ll << 20);
  expectStillServing();
}

TEST_F(HostileHttp2Test, SettingsWithTooManyEntriesIsRejected) {
  // nghttp2 caps one SETTINGS frame at 32 entries (CVE-2020-11080): GOAWAY + close.
  RawH2Connection conn(port());
  ASSERT_TRUE(conn.connect()) << conn.lastError();
  std::string payload;
  for (int i = 0; i < 100; ++i) {
    payload += std::string("\x00\x03", 2) + u32(100);  // MAX_CONCURRENT_STREAMS = 100, 100 times
  }
  ASSERT_TRUE(conn.send(frame(kFrameSettings, 0, 0, payload)));
  EXPECT_TRUE(conn.waitForClose(deadlineIn(3s)));
  EXPECT_TRUE(conn.goAwayReceived());
  EXPECT_EQ(uint32_t{NGHTTP2_ENHANCE_YOUR_CALM}, conn.goAwayCode());
  expectStillServing();
}

TEST_F(HostileHttp2Test, ContinuationFloodIsClosed) {
  // HEADERS without END_HEADERS followed by endless CONTINUATION frames (2024 "CONTINUATION
  // flood"): nghttp2 stops at 8 CONTINUATIONs or the header list limit.
  RawH2Connection conn(port());
  ASSERT_TRUE(conn.connect()) << conn.lastError();
  std::string block = conn.encode(RawH2Connection::get("/cont"));
  std::string out = frame(kFrameHeaders, kFlagEndStream, 1, block);
  for (int i = 0; i < 200; ++i) {
    // Literal header, not indexed, name "x-c", 1000-byte value.
    std::string field = std::string("\x00\x03x-c", 5);
    field += std::string("\x7f\xe9\x06", 3);  // length 1000 as a 7-bit prefixed integer (127 + 873)
    field += std::string(1000, 'c');
    out += frame(kFrameContinuation, 0, 1, field);
  }
  bool sent = conn.send(out, deadlineIn(3s));
  (void)sent;  // bulwark may close before the flood is fully written
  EXPECT_TRUE(conn.waitForClose(deadlineIn(3s)));
  expectUpstreamSawOnly({});
}

}  // namespace
}  // namespace bulwark::testing
