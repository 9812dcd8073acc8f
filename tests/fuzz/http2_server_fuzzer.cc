// The HTTP/2 server codec (Http2ServerConnection: nghttp2 with bulwark's callbacks, limits,
// flow control, drain and deferred resets) fed a client's frames, with the connection manager's
// side played by FuzzServerStream (server_sink.h) as for HTTP/1. The input is not raw bytes but
// a list of frame operations, so that header blocks are HPACK-encoded by a real encoder (one
// deflater for the connection, as a client keeps) and valid requests stay common while every
// frame type, flag and ordering is still reachable; raw bytes remain one of the operations.
// Checked besides sanitizers: each request handed on is HTTP/2 with a method, a path starting
// with '/' (or OPTIONS "*"), lower-case token names, no CR/LF/NUL, no connection-specific
// header, at most one decimal Content-Length and exactly that much body, :authority or a
// single Host; no callback after a stream's end or reset; at most the advertised number of
// concurrent streams; and what the codec writes is a sequence of well-formed frames (after the
// SETTINGS that opens it) whose header blocks decode with an HPACK decoder and start with a
// three-digit :status.
// Input: byte 0 configures (bit 0 no client preface, bit 1 small limits, bit 2 small initial
// window, bit 3 drain at once); then operations, each a byte (low 4 bits the kind, bit 7: send
// with the next operation instead of now) and its operands (Harness::op).

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <nghttp2/nghttp2.h>

#include "proxy/http/http2_server_codec.h"
#include "tests/fuzz/codec_fuzz.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/server_sink.h"

namespace bulwark::fuzz {
namespace {

constexpr std::string_view kPreface = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";

/** The input read front to back; 0 once it is used up. Thread: the fuzzing thread. */
class Reader {
public:
  Reader(const uint8_t* data, size_t size) : data_(data), size_(size) {}
  bool empty() const { return pos_ >= size_; }
  uint8_t byte() { return pos_ < size_ ? data_[pos_++] : 0; }
  uint32_t u32() {
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      v = (v << 8) | byte();
    }
    return v;
  }
  std::string_view bytes(size_t len) {
    const size_t n = len < size_ - pos_ ? len : size_ - pos_;
    std::string_view out(reinterpret_cast<const char*>(data_) + pos_, n);
    pos_ += n;
    return out;
  }

private:
  const uint8_t* data_;
  size_t size_;
  size_t pos_ = 0;
};

void appendFrameHeader(std::string& out, size_t length, uint8_t type, uint8_t flags,
                       uint32_t stream_id) {
  out.push_back(static_cast<char>((length >> 16) & 0xff));
  out.push_back(static_cast<char>((length >> 8) & 0xff));
  out.push_back(static_cast<char>(length & 0xff));
  out.push_back(static_cast<char>(type));
  out.push_back(static_cast<char>(flags));
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((stream_id >> shift) & 0xff));
  }
}

void appendU32(std::string& out, uint32_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) {
    out.push_back(static_cast<char>((v >> shift) & 0xff));
  }
}

/**
 * Checks the server's output: frames with a 9-byte header each, within the largest frame size
 * the client allowed, header blocks (HEADERS then CONTINUATIONs) decoded by one HPACK inflater
 * and starting with :status of three digits. Input that is not yet a whole frame waits.
 * Thread: the fuzzing thread.
 */
class OutputChecker {
public:
  OutputChecker() { FUZZ_CHECK(nghttp2_hd_inflate_new(&inflater_) == 0); }
  ~OutputChecker() { nghttp2_hd_inflate_del(inflater_); }
  OutputChecker(const OutputChecker&) = delete;
  OutputChecker& operator=(const OutputChecker&) = delete;

  void allowFrameSize(uint32_t size) {
    if (size > max_frame_size_) {
      max_frame_size_ = size;
    }
  }

  void feed(std::string_view bytes) {
    pending_.append(bytes);
    size_t at = 0;
    while (pending_.size() - at >= 9) {
      const auto* h = reinterpret_cast<const uint8_t*>(pending_.data() + at);
      const size_t length = (size_t{h[0]} << 16) | (size_t{h[1]} << 8) | h[2];
      FUZZ_CHECK(length <= max_frame_size_);
      if (pending_.size() - at < 9 + length) {
        break;
      }
      onFrame(h[3], h[4], std::string_view(pending_.data() + at + 9, length));
      at += 9 + length;
    }
    pending_.erase(0, at);
  }

private:
  void onFrame(uint8_t type, uint8_t flags, std::string_view payload) {
    if (frames_++ == 0) {
      FUZZ_CHECK(type == NGHTTP2_SETTINGS && (flags & NGHTTP2_FLAG_ACK) == 0);
    }
    if (type == NGHTTP2_HEADERS) {
      FUZZ_CHECK(!in_block_);
      size_t skip = 0;
      size_t pad = 0;
      if ((flags & NGHTTP2_FLAG_PADDED) != 0) {
        FUZZ_CHECK(!payload.empty());
        pad = static_cast<uint8_t>(payload[0]);
        skip = 1;
      }
      if ((flags & NGHTTP2_FLAG_PRIORITY) != 0) {
        skip += 5;
      }
      FUZZ_CHECK(skip + pad <= payload.size());
      in_block_ = true;
      block_headers_ = 0;
      inflate(payload.substr(skip, payload.size() - skip - pad),
              (flags & NGHTTP2_FLAG_END_HEADERS) != 0);
    } else if (type == NGHTTP2_CONTINUATION) {
      FUZZ_CHECK(in_block_);
      inflate(payload, (flags & NGHTTP2_FLAG_END_HEADERS) != 0);
    } else {
      FUZZ_CHECK(!in_block_);  // nothing may interleave with a header block
    }
  }

  void inflate(std::string_view block, bool final) {
    const auto* in = reinterpret_cast<const uint8_t*>(block.data());
    size_t left = block.size();
    for (;;) {
      nghttp2_nv nv;
      int flags = 0;
      const ssize_t rv = nghttp2_hd_inflate_hd2(inflater_, &nv, &flags, in, left, final ? 1 : 0);
      FUZZ_CHECK(rv >= 0);
      in += rv;
      left -= static_cast<size_t>(rv);
      if ((flags & NGHTTP2_HD_INFLATE_EMIT) != 0) {
        const std::string_view name(reinterpret_cast<const char*>(nv.name), nv.namelen);
        const std::string_view value(reinterpret_cast<const char*>(nv.value), nv.valuelen);
        // A response block starts with :status; trailers have no pseudo-header at all.
        if (!name.empty() && name[0] == ':') {
          FUZZ_CHECK(name == ":status" && block_headers_ == 0);
          FUZZ_CHECK(value.size() == 3 && value[0] >= '1' && value[0] <= '5');
        }
        ++block_headers_;
        for (char c : name) {
          FUZZ_CHECK(!(c >= 'A' && c <= 'Z'));
        }
      }
      if ((flags & NGHTTP2_HD_INFLATE_FINAL) != 0) {
        nghttp2_hd_inflate_end_headers(inflater_);
        in_block_ = false;
        break;
      }
      if ((flags & NGHTTP2_HD_INFLATE_EMIT) == 0 && left == 0) {
        break;
      }
    }
  }

  nghttp2_hd_inflater* inflater_ = nullptr;
  std::string pending_;
  uint32_t max_frame_size_ = 16384;
  size_t frames_ = 0;
  bool in_block_ = false;
  size_t block_headers_ = 0;
};

/** A header field a request may be made of (kFields). */
struct Field {
  std::string_view name;
  std::string_view value;
};
constexpr Field kFields[] = {
    {":method", "GET"},
    {":method", "POST"},
    {":method", "HEAD"},
    {":method", "CONNECT"},
    {":method", "OPTIONS"},
    {":scheme", "http"},
    {":scheme", "https"},
    {":path", "/"},
    {":path", "/a/b?c=d"},
    {":path", "*"},
    {":path", ""},
    {":authority", "svc"},
    {":authority", "other:8080"},
    {":protocol", "websocket"},
    {"content-length", "0"},
    {"content-length", "5"},
    {"content-length", "x"},
    {"host", "svc"},
    {"host", "evil"},
    {"cookie", "a=1"},
    {"cookie", "b=2"},
    {"te", "trailers"},
    {"te", "gzip"},
    {"connection", "close"},
    {"transfer-encoding", "chunked"},
    {"expect", "100-continue"},
    {"X-Upper", "v"},
    {"x-crlf", "a\r\nb"},
    {"x-nul", std::string_view("a\0b", 3)},
    {"grpc-timeout", "1S"},
    {"content-type", "application/grpc"},
    {":status", "200"},
};
constexpr size_t kFieldCount = sizeof(kFields) / sizeof(kFields[0]);

/**
 * The codec on a FakeConnection, with a client's HPACK encoder, fed frame operations and
 * answered by FuzzServerStreams, dispatch results and closes handled as the connection manager
 * does. Thread: the fuzzing thread.
 */
class Harness : public http::ServerConnectionCallbacks, public ServerSinkOwner {
public:
  Harness(Reader& in, const http::ServerCodecLimits& limits, uint32_t initial_window)
      : in_(in), limits_(limits) {
    FUZZ_CHECK(nghttp2_hd_deflate_new(&deflater_, 4096) == 0);
    codec_ = std::make_unique<http::Http2ServerConnection>(conn_, *this, limits, initial_window);
    conn_.on_closed = [this] { codec_->onConnectionClosed(); };
    conn_.on_watermark = [this](bool above) {
      if (above) {
        codec_->onUnderlyingConnectionAboveWriteBufferHighWatermark();
      } else {
        codec_->onUnderlyingConnectionBelowWriteBufferLowWatermark();
      }
    };
    input_ = evbuffer_new();
  }
  ~Harness() override {
    conn_.on_closed = nullptr;
    conn_.on_watermark = nullptr;
    codec_.reset();
    runLoop();  // streams the codec removed are deleted on the loop
    evbuffer_free(input_);
    nghttp2_hd_deflate_del(deflater_);
  }
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;

  void run(bool preface, bool drain) {
    if (preface) {
      out_.append(kPreface);
      appendFrameHeader(out_, 0, NGHTTP2_SETTINGS, 0, 0);
    }
    if (drain) {
      codec_->shutdownNotice();
    }
    while (!in_.empty() && !conn_.closed()) {
      const uint8_t b = in_.byte();
      op(b & 15);
      if ((b & 0x80) == 0) {
        send();
      }
    }
    send();
    // The input ended: answers due later go out, the client reads everything, then leaves.
    for (int i = 0; i < 4 && !conn_.closed(); ++i) {
      step(0);
    }
    readOutput(0);
    conn_.remoteClose();
    runLoop();
  }

  // ServerConnectionCallbacks
  http::RequestDecoder& newStream(http::ResponseEncoder& encoder) override {
    FUZZ_CHECK(encoder.protocol() == "HTTP/2");
    streams_.push_back(
        std::make_unique<FuzzServerStream>(encoder, ResponsePlan::from(in_.byte()), *this));
    return *streams_.back();
  }
  void onProtocolError(std::string_view details) override { FUZZ_CHECK(!details.empty()); }

  // ServerSinkOwner
  void checkRequest(const http::RequestHeaders& h, bool) override {
    FUZZ_CHECK(h.http_major == 2 && h.http_minor == 0);
    FUZZ_CHECK(h.upgrade.empty());
    FUZZ_CHECK(h.path[0] == '/' || (h.method == "OPTIONS" && h.path == "*"));
    FUZZ_CHECK(!h.headers.has("te") || h.headers.get("te") == "trailers");
    FUZZ_CHECK(h.headers.count("host") <= 1);
    if (auto host = h.headers.get("host")) {
      FUZZ_CHECK(h.authority == *host);
    }
    FUZZ_CHECK(h.headers.count("cookie") <= 1);
    // Never more requests at once than the SETTINGS the codec sent allow.
    size_t open = 0;
    for (const auto& s : streams_) {
      open += s->responseDone() ? 0 : 1;
    }
    FUZZ_CHECK(open <= limits_.max_concurrent_streams);
  }

private:
  /** The next client stream id, or an earlier or even one now and then. */
  uint32_t streamId() {
    const uint8_t b = in_.byte();
    if (b < 0xc0) {
      // Most operations name the stream opened last, or open the next one.
      if (b < 0x80 && last_stream_ != 0) {
        return last_stream_;
      }
      last_stream_ = last_stream_ == 0 ? 1 : last_stream_ + 2;
      return last_stream_;
    }
    return b == 0xff ? 0 : (b & 0x3f);
  }

  std::string encodeBlock(const std::vector<nghttp2_nv>& nva) {
    std::string block(nghttp2_hd_deflate_bound(deflater_, nva.data(), nva.size()), '\0');
    const ssize_t n = nghttp2_hd_deflate_hd(deflater_, reinterpret_cast<uint8_t*>(block.data()),
                                            block.size(), nva.data(), nva.size());
    FUZZ_CHECK(n >= 0);
    block.resize(static_cast<size_t>(n));
    return block;
  }

  static nghttp2_nv nv(std::string_view name, std::string_view value) {
    return nghttp2_nv{reinterpret_cast<uint8_t*>(const_cast<char*>(name.data())),
                      reinterpret_cast<uint8_t*>(const_cast<char*>(value.data())), name.size(),
                      value.size(), NGHTTP2_NV_FLAG_NONE};
  }

  /** A request's fields: a valid GET or POST, then up to 7 fields from kFields or the input. */
  std::vector<nghttp2_nv> requestFields(bool valid_base, std::vector<std::string>& storage) {
    std::vector<nghttp2_nv> nva;
    if (valid_base) {
      nva.push_back(nv(":method", (in_.byte() & 1) != 0 ? "POST" : "GET"));
      nva.push_back(nv(":scheme", "http"));
      nva.push_back(nv(":authority", "svc"));
      nva.push_back(nv(":path", "/p"));
    }
    const size_t extra = in_.byte() & 7;
    storage.reserve(2 * extra);
    for (size_t i = 0; i < extra; ++i) {
      const uint8_t f = in_.byte();
      if (f < 0xe0) {
        const Field& field = kFields[f % kFieldCount];
        nva.push_back(nv(field.name, field.value));
      } else {
        // A field from the input: name and value of up to 15 bytes each.
        storage.emplace_back(in_.bytes(f & 15));
        storage.emplace_back(in_.bytes(in_.byte() & 15));
        nva.push_back(nv(storage[storage.size() - 2], storage.back()));
      }
    }
    return nva;
  }

  /**
   * A header block on `sid` as HEADERS (flags from the input: END_STREAM, PADDED, PRIORITY),
   * split into CONTINUATIONs where the input says.
   */
  void headers(uint32_t sid, const std::string& block, uint8_t flags_in) {
    uint8_t flags =
        flags_in & (NGHTTP2_FLAG_END_STREAM | NGHTTP2_FLAG_PADDED | NGHTTP2_FLAG_PRIORITY);
    const size_t split = (flags_in & 0x40) != 0 ? in_.byte() : block.size();
    const size_t first = split < block.size() ? split : block.size();
    if (first == block.size() && (flags_in & 0x80) == 0) {
      flags |= NGHTTP2_FLAG_END_HEADERS;  // else a block left open, for CONTINUATION floods
    }
    std::string payload;
    if ((flags & NGHTTP2_FLAG_PADDED) != 0) {
      payload.push_back(2);
    }
    if ((flags & NGHTTP2_FLAG_PRIORITY) != 0) {
      appendU32(payload, in_.byte() & 7);
      payload.push_back(static_cast<char>(in_.byte()));
    }
    payload.append(block, 0, first);
    if ((flags & NGHTTP2_FLAG_PADDED) != 0) {
      payload.append(2, '\0');
    }
    appendFrameHeader(out_, payload.size(), NGHTTP2_HEADERS, flags, sid);
    out_.append(payload);
    if (first < block.size()) {
      appendFrameHeader(out_, block.size() - first, NGHTTP2_CONTINUATION, NGHTTP2_FLAG_END_HEADERS,
                        sid);
      out_.append(block, first, std::string::npos);
    }
  }

  /**
   * One operation. 0 a request (valid base plus fields), 1 a header block of fields only,
   * 2 DATA, 3 RST_STREAM, 4 SETTINGS, 5 WINDOW_UPDATE, 6 PING, 7 PRIORITY, 8 a lone
   * CONTINUATION, 9 GOAWAY, 10 raw bytes, 11 a step (Harness::step), 12 trailers, 13 a frame of
   * an unknown type, 14 a large DATA (up to 32 KiB), 15 a SETTINGS ACK.
   */
  void op(uint8_t kind) {
    switch (kind) {
      case 0:
      case 1:
      case 12: {
        const uint32_t sid = kind == 12 ? (last_stream_ != 0 ? last_stream_ : 1) : streamId();
        const uint8_t flags = in_.byte();
        std::vector<std::string> storage;
        const auto nva = kind == 12 ? trailerFields() : requestFields(kind == 0, storage);
        headers(sid, encodeBlock(nva), kind == 12 ? (flags | NGHTTP2_FLAG_END_STREAM) : flags);
        break;
      }
      case 2:
      case 14: {
        const uint32_t sid = streamId();
        uint8_t flags = in_.byte() & (NGHTTP2_FLAG_END_STREAM | NGHTTP2_FLAG_PADDED);
        // Up to 32 KiB: past the 100-byte window of the small-window configuration, and two
        // frames at the default maximum frame size. (Larger bodies only cost time: the
        // 256 KiB stream window is reached by several operations.)
        size_t left = kind == 2 ? in_.byte() : size_t{in_.byte()} * 128;
        if (left + 2 > 16384) {
          flags &= static_cast<uint8_t>(~NGHTTP2_FLAG_PADDED);  // padding only in one frame
        }
        const bool padded = (flags & NGHTTP2_FLAG_PADDED) != 0;
        do {
          const size_t n = left < 16384 ? left : 16384;
          left -= n;
          const bool last = left == 0;
          appendFrameHeader(out_, n + (padded ? 2 : 0), NGHTTP2_DATA,
                            last ? flags : static_cast<uint8_t>(flags & ~NGHTTP2_FLAG_END_STREAM),
                            sid);
          if (padded) {
            out_.push_back(1);  // pad length, then one byte of padding after the data
          }
          out_.append(n, 'd');
          if (padded) {
            out_.push_back('\0');
          }
        } while (left > 0);
        break;
      }
      case 3: {
        const uint32_t sid = streamId();
        appendFrameHeader(out_, 4, NGHTTP2_RST_STREAM, 0, sid);
        appendU32(out_, in_.byte() & 15);
        break;
      }
      case 4: {
        const size_t n = in_.byte() & 3;
        appendFrameHeader(out_, 6 * n, NGHTTP2_SETTINGS, 0, 0);
        for (size_t i = 0; i < n; ++i) {
          const uint8_t id = in_.byte() & 7;
          const uint32_t value = in_.u32();
          out_.push_back(0);
          out_.push_back(static_cast<char>(id));
          appendU32(out_, value);
          if (id == NGHTTP2_SETTINGS_MAX_FRAME_SIZE) {
            output_check_.allowFrameSize(value);
          }
        }
        break;
      }
      case 5: {
        const uint8_t b = in_.byte();
        const uint32_t sid = (b & 1) != 0 ? 0 : streamId();
        appendFrameHeader(out_, 4, NGHTTP2_WINDOW_UPDATE, 0, sid);
        appendU32(out_, (b & 2) != 0 ? in_.u32() : 65535U * (b >> 2));
        break;
      }
      case 6: {
        const uint8_t b = in_.byte();
        appendFrameHeader(out_, 8, NGHTTP2_PING, (b & 1) != 0 ? NGHTTP2_FLAG_ACK : 0, 0);
        // The codec's drain PING carries "bwdrain1": answering it finishes a drain.
        out_.append((b & 2) != 0 ? std::string_view("bwdrain1") : std::string_view("pingpong"));
        break;
      }
      case 7: {
        const uint32_t sid = streamId();
        appendFrameHeader(out_, 5, NGHTTP2_PRIORITY, 0, sid);
        appendU32(out_, streamId());
        out_.push_back(static_cast<char>(in_.byte()));
        break;
      }
      case 8: {
        const uint32_t sid = streamId();
        std::vector<std::string> storage;
        const std::string block = encodeBlock(requestFields(false, storage));
        appendFrameHeader(out_, block.size(), NGHTTP2_CONTINUATION, in_.byte() & 4, sid);
        out_.append(block);
        break;
      }
      case 9: {
        appendFrameHeader(out_, 8, NGHTTP2_GOAWAY, 0, 0);
        appendU32(out_, last_stream_);
        appendU32(out_, in_.byte() & 15);
        break;
      }
      case 10: {
        out_.append(in_.bytes(in_.byte()));
        break;
      }
      case 11: step(in_.byte()); break;
      case 13: {
        const std::string_view payload = in_.bytes(in_.byte() & 31);
        const auto type = static_cast<uint8_t>(0x20 + (in_.byte() & 7));
        const uint8_t flags = in_.byte();
        appendFrameHeader(out_, payload.size(), type, flags, streamId());
        out_.append(payload);
        break;
      }
      case 15: appendFrameHeader(out_, 0, NGHTTP2_SETTINGS, NGHTTP2_FLAG_ACK, 0); break;
      default: break;
    }
  }

  std::vector<nghttp2_nv> trailerFields() {
    std::vector<nghttp2_nv> nva;
    nva.push_back(nv("grpc-status", "0"));
    const uint8_t b = in_.byte();
    if ((b & 1) != 0) {
      nva.push_back(nv(":path", "/pseudo-in-trailers"));
    }
    if ((b & 2) != 0) {
      nva.push_back(nv("x-trailer", "1"));
    }
    return nva;
  }

  /** Hands what the client wrote so far to the codec, as ConnectionManager::onData does. */
  void send() {
    if (out_.empty() || conn_.closing()) {
      out_.clear();
      return;
    }
    evbuffer_add(input_, out_.data(), out_.size());
    out_.clear();
    if (conn_.readDisabled()) {
      return;
    }
    const Status status = codec_->dispatch(input_);
    if (!status.isOk()) {
      if (!conn_.closing()) {
        conn_.close(network::CodecConnection::CloseType::FlushWrite);
      }
      return;
    }
    if (codec_->wantsClose()) {
      conn_.close(network::CodecConnection::CloseType::FlushWrite);
    }
  }

  void readOutput(size_t len) {
    std::string seen;
    conn_.takeOutput(len, seen);
    output_check_.feed(seen);
  }

  /**
   * Between frames: bits 0-1 how much output the client reads (all, none, 100 bytes, 1 byte),
   * bit 2 no later answers, bit 3 no loop turn (flush timer, deferred resets and deletions),
   * bit 4 a drain notice.
   */
  void step(uint8_t d) {
    static constexpr size_t kRead[4] = {0, SIZE_MAX, 100, 1};
    if (kRead[d & 3] != SIZE_MAX) {
      readOutput(kRead[d & 3]);
    }
    if ((d & 4) == 0) {
      for (size_t i = 0; i < streams_.size() && !conn_.closed(); ++i) {
        streams_[i]->later();
      }
    }
    if ((d & 8) == 0) {
      runLoop();
    }
    if ((d & 16) != 0 && !conn_.closed()) {
      codec_->shutdownNotice();
    }
  }

  Reader& in_;
  http::ServerCodecLimits limits_;
  nghttp2_hd_deflater* deflater_ = nullptr;
  FakeConnection conn_;
  std::unique_ptr<http::Http2ServerConnection> codec_;
  std::vector<std::unique_ptr<FuzzServerStream>> streams_;
  OutputChecker output_check_;
  evbuffer* input_;
  std::string out_;
  uint32_t last_stream_ = 0;
};

}  // namespace
}  // namespace bulwark::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bulwark;
  fuzz::Reader in(data, size);
  const uint8_t config = in.byte();
  http::ServerCodecLimits limits;
  if ((config & 2) != 0) {
    limits.max_request_headers_bytes = 200;
    limits.max_headers_count = 4;
    limits.max_request_body_bytes = 64;
    limits.max_concurrent_streams = 3;
  }
  const uint32_t initial_window = (config & 4) != 0 ? 100 : http::kHttp2DefaultInitialWindow;
  fuzz::Harness harness(in, limits, initial_window);
  harness.run((config & 1) == 0, (config & 8) != 0);
  return 0;
}
