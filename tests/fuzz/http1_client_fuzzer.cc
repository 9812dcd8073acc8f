// The HTTP/1 client codec (Http1ClientConnection on llhttp) fed an upstream's byte stream in
// pieces cut where the input says, after a request was encoded: GET, HEAD, POST with a length or
// chunked (with trailers), an upgrade, a request whose body is still being sent when the answer
// comes. The upstream pool's side is played as conn_pool.cc does (close on a dispatch error, a
// new request on the same connection when it is reusable); between pieces the harness sends the
// rest of the request, read-disables, resets the attempt or sends GOAWAY. The input ends with
// the upstream closing (close-delimited bodies end there).
// Checked besides sanitizers: a final status is 200 to 599, or 101 only to an upgrade request;
// 1xx other than 101 only as interim headers; header names lower-case tokens and values without
// CR/LF/NUL (they go on to the client); no hop-by-hop header left; at most one decimal
// Content-Length, and a body of exactly that length unless the response has none (HEAD, 204,
// 304); no callback after the end or a reset; every stream ends exactly once (onStreamClosed).
// Input (codec_fuzz.h): decisions, then the response bytes. Decisions: one byte per request
// for its kind (Harness::startRequest), then per step a piece length and what happens after it
// (Harness::step).

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "proxy/http/http1_client_codec.h"
#include "tests/fuzz/codec_fuzz.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/server_sink.h"

namespace bulwark::fuzz {
namespace {

/** One response as the router's upstream request receives it. Thread: the fuzzing thread. */
class FuzzResponse : public http::ResponseDecoder, public http::StreamCallbacks {
public:
  FuzzResponse(bool head, bool upgrade) : head_(head), upgrade_(upgrade) {}

  void decode1xxHeaders(http::ResponseHeadersPtr&& headers) override {
    FUZZ_CHECK(!ended_ && !headers_seen_);
    FUZZ_CHECK(headers != nullptr);
    FUZZ_CHECK(headers->status >= 100 && headers->status < 200 && headers->status != 101);
  }
  void decodeHeaders(http::ResponseHeadersPtr&& headers, bool end_stream) override {
    FUZZ_CHECK(!ended_ && !headers_seen_);
    FUZZ_CHECK(headers != nullptr);
    headers_seen_ = true;
    status_ = headers->status;
    FUZZ_CHECK((status_ >= 200 && status_ <= 599) || (status_ == 101 && upgrade_));
    checkForwardedHeaders(headers->headers);
    for (std::string_view hop :
         {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te"}) {
      FUZZ_CHECK(!headers->headers.has(hop));
    }
    FUZZ_CHECK(status_ == 101 || !headers->headers.has("upgrade"));
    FUZZ_CHECK(headers->headers.count("content-length") <= 1);
    if (auto cl = headers->headers.get("content-length")) {
      FUZZ_CHECK(isDecimal(*cl));
      content_length_ = parseDecimal(*cl);
      has_content_length_ = true;
    }
    no_body_ = head_ || status_ == 204 || status_ == 304;
    if (no_body_) {
      FUZZ_CHECK(end_stream);
    }
    end(end_stream);
  }
  void decodeData(evbuffer* data, bool end_stream) override {
    FUZZ_CHECK(headers_seen_ && !ended_);
    const size_t len = evbuffer_get_length(data);
    evbuffer_drain(data, len);
    body_ += len;
    if (has_content_length_ && status_ != 101) {
      FUZZ_CHECK(body_ <= content_length_);
      FUZZ_CHECK(!end_stream || body_ == content_length_);
    }
    end(end_stream);
  }
  void decodeTrailers(http::HeaderMap&& trailers) override {
    FUZZ_CHECK(headers_seen_ && !ended_);
    checkForwardedHeaders(trailers);
    end(true);
  }
  void onResetStream(http::StreamResetReason, std::string_view) override {
    FUZZ_CHECK(!ended_);
    ended_ = true;
  }

  bool ended() const { return ended_; }
  void markReset() { ended_ = true; }

private:
  void end(bool end_stream) {
    if (end_stream) {
      ended_ = true;
    }
  }

  bool head_;
  bool upgrade_;
  bool headers_seen_ = false;
  bool ended_ = false;
  bool no_body_ = false;
  bool has_content_length_ = false;
  uint32_t status_ = 0;
  uint64_t content_length_ = 0;
  uint64_t body_ = 0;
};

/**
 * The codec on a FakeConnection, with the upstream pool's handling of dispatch results, reuse
 * and closes. Thread: the fuzzing thread.
 */
class Harness : public http::ClientConnectionCallbacks {
public:
  explicit Harness(CodecInput& in) : in_(in) {
    codec_ = std::make_unique<http::Http1ClientConnection>(conn_, *this);
    conn_.on_closed = [this] {
      closed_seen_ = true;
      codec_->onConnectionClosed(false);
    };
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
    runLoop();
    evbuffer_free(input_);
  }
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;

  void run() {
    startRequest();
    while (in_.streamLeft() > 0 && !conn_.closed()) {
      const std::string_view piece = in_.take(in_.nextChunk());
      evbuffer_add(input_, piece.data(), piece.size());
      onData();
      step(in_.next());
    }
    conn_.remoteClose();
    // Every stream ended once: completed, failed or reset by the harness.
    FUZZ_CHECK(closed_seen_);
    FUZZ_CHECK(codec_->activeStreams() == 0);
    for (const auto& r : responses_) {
      FUZZ_CHECK(r->ended());
    }
    FUZZ_CHECK(stream_closed_calls_ + harness_resets_ == responses_.size());
  }

  // ClientConnectionCallbacks
  void onGoAway() override {}
  void onStreamClosed() override {
    ++stream_closed_calls_;
    FUZZ_CHECK(stream_closed_calls_ + harness_resets_ <= responses_.size());
  }

private:
  /**
   * Kind (bits 0-2): GET, HEAD, POST with Content-Length, POST chunked, POST chunked with
   * trailers, an upgrade to websocket, a PUT whose second half of the body comes later, DELETE.
   */
  void startRequest() {
    const uint8_t kind = in_.next() & 7;
    http::RequestHeaders h;
    static constexpr const char* kMethod[8] = {"GET",  "HEAD", "POST", "POST",
                                               "POST", "GET",  "PUT",  "DELETE"};
    h.method = kMethod[kind];
    h.path = "/r";
    h.authority = "upstream";
    h.headers.add("x-req", std::to_string(responses_.size()));
    if (kind == 5) {
      h.upgrade = "websocket";
    }
    if (kind == 2) {
      h.headers.add("content-length", "5");
    }
    if (kind == 6) {
      h.headers.add("content-length", "10");
    }
    responses_.push_back(std::make_unique<FuzzResponse>(kind == 1, kind == 5));
    FuzzResponse& response = *responses_.back();
    FUZZ_CHECK(codec_->canCreateStream());
    http::RequestEncoder& encoder = codec_->newStream(response);
    encoder.stream().setCallbacks(&response);
    encoder_ = &encoder;
    current_ = &response;
    read_disabled_ = false;
    const bool has_body = kind == 2 || kind == 3 || kind == 4 || kind == 6;
    encoder.encodeHeaders(h, !has_body && kind != 5);
    pending_body_ = 0;
    if (kind == 2) {
      sendBody("hello", true);
    } else if (kind == 3 || kind == 4 || kind == 6) {
      sendBody("abcde", false);
      pending_body_ = kind;
    }
  }

  void sendBody(std::string_view bytes, bool end_stream) {
    evbuffer* buf = evbuffer_new();
    evbuffer_add(buf, bytes.data(), bytes.size());
    encoder_->encodeData(buf, end_stream);
    FUZZ_CHECK(evbuffer_get_length(buf) == 0);
    evbuffer_free(buf);
  }

  /** The rest of the request (what the router sends once the downstream body arrives). */
  void finishRequest() {
    const int kind = pending_body_;
    pending_body_ = 0;
    if (kind == 3) {
      sendBody("", true);
    } else if (kind == 4) {
      http::HeaderMap trailers;
      trailers.add("x-trailer", "1");
      encoder_->encodeTrailers(trailers);
    } else if (kind == 6) {
      sendBody("fghij", true);
    }
  }

  /** What conn_pool.cc's ActiveClient::onData does. */
  void onData() {
    if (conn_.readDisabled() || conn_.closed()) {
      return;
    }
    if (!codec_->dispatch(input_).isOk()) {
      conn_.close(network::CodecConnection::CloseType::NoFlush);
    }
  }

  /**
   * After a piece of response: bit 0 toggles read-disable on the stream, bit 1 holds the rest
   * of the request back, bits 2-3 both set reset the attempt, bit 4 GOAWAY, bit 5 the upstream
   * closes now. Then a new request when the connection can take one.
   */
  void step(uint8_t d) {
    std::string ignored;
    conn_.takeOutput(0, ignored);  // the upstream reads the request
    const bool active = current_ != nullptr && !current_->ended();
    if (active && (d & 1) != 0) {
      read_disabled_ = !read_disabled_;
      encoder_->stream().readDisable(read_disabled_);
    }
    if (active && (d & 2) == 0 && pending_body_ != 0) {
      finishRequest();
    }
    if (current_ != nullptr && !current_->ended() && (d & 12) == 12) {
      // The router gives up on the attempt (per-try timeout): no callback for the one who asks.
      current_->markReset();
      ++harness_resets_;
      encoder_->stream().resetStream(http::StreamResetReason::LocalReset);
    }
    if ((d & 16) != 0) {
      codec_->goAway();
    }
    if ((d & 32) != 0) {
      conn_.remoteClose();
      return;
    }
    const bool was_disabled = was_read_disabled_;
    was_read_disabled_ = conn_.readDisabled();
    if (was_disabled && !conn_.readDisabled() && evbuffer_get_length(input_) > 0) {
      onData();
    }
    if (!conn_.closed() && codec_->activeStreams() == 0 && codec_->canCreateStream() &&
        in_.streamLeft() > 0) {
      startRequest();
    }
  }

  CodecInput& in_;
  FakeConnection conn_;
  std::unique_ptr<http::Http1ClientConnection> codec_;
  std::vector<std::unique_ptr<FuzzResponse>> responses_;
  http::RequestEncoder* encoder_ = nullptr;
  FuzzResponse* current_ = nullptr;
  evbuffer* input_;
  int pending_body_ = 0;
  bool read_disabled_ = false;
  bool was_read_disabled_ = false;
  bool closed_seen_ = false;
  size_t stream_closed_calls_ = 0;
  size_t harness_resets_ = 0;
};

}  // namespace
}  // namespace bulwark::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  bulwark::fuzz::CodecInput in(data, size);
  bulwark::fuzz::Harness harness(in);
  harness.run();
  return 0;
}
