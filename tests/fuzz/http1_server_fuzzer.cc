// The HTTP/1 server codec (Http1ServerConnection on llhttp) fed a client's byte stream in pieces
// cut where the input says, with the connection manager's side played by FuzzServerStream
// (server_sink.h): direct replies, answers at the end or from later steps, trailers,
// 100-continue, resets, read-disable. Pipelined requests, chunked bodies and trailers, upgrades
// and every smuggling shape the seeds hold go through the real parser and its checks.
// Checked besides sanitizers: each request handed on has a method and an origin-form path
// (or OPTIONS), HTTP/1.x, a Host when HTTP/1.1, lower-case token header names, no CR/LF/NUL in
// values, no Transfer-Encoding and at most one decimal Content-Length, and a body of exactly
// that length; no callback after a stream's end or reset; one request at a time; and the bytes
// written back parse as a sequence of HTTP/1.1 responses (llhttp, response mode).
// Input (codec_fuzz.h): decisions, then the request bytes. Decisions: limits (one byte), a drain
// notice before the first byte (bit 0), then per step a piece length and what happens after it
// (Harness::step), and one byte per request for how it is answered (ResponsePlan).

#include <cstdint>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include <llhttp.h>

#include "proxy/http/http1_server_codec.h"
#include "tests/fuzz/codec_fuzz.h"
#include "tests/fuzz/fuzz_check.h"
#include "tests/fuzz/server_sink.h"

namespace bulwark::fuzz {
namespace {

/**
 * Parses what the codec wrote as HTTP/1.1 responses. Stops checking at a 101 (the tunnel
 * follows) and at the response to a HEAD request (which this parser cannot tell from its
 * position alone when an error reply for the same request follows). Thread: the fuzzing thread.
 */
class ResponseStreamChecker {
public:
  explicit ResponseStreamChecker(const std::vector<bool>& head_requests)
      : head_requests_(head_requests) {
    llhttp_settings_init(&settings_);
    settings_.on_headers_complete = &ResponseStreamChecker::onHeadersComplete;
    llhttp_init(&parser_, HTTP_RESPONSE, &settings_);
    parser_.data = this;
  }

  void check(const std::string& output) {
    if (output.empty()) {
      return;
    }
    FUZZ_CHECK(output.rfind("HTTP/1.1 ", 0) == 0);
    const llhttp_errno_t err = llhttp_execute(&parser_, output.data(), output.size());
    if (stopped_ || err == HPE_PAUSED_UPGRADE) {
      return;
    }
    if (err != HPE_OK) {
      std::fprintf(stderr, "response stream does not parse: %s (%s)\n", llhttp_errno_name(err),
                   llhttp_get_error_reason(&parser_));
    }
    FUZZ_CHECK(err == HPE_OK);
  }

private:
  static int onHeadersComplete(llhttp_t* p) {
    auto* self = static_cast<ResponseStreamChecker*>(p->data);
    if (p->status_code < 200 && p->status_code != 101) {
      return 0;  // 100 Continue: the final response follows
    }
    const size_t index = self->final_responses_++;
    if (p->status_code == 101 ||
        (index < self->head_requests_.size() && self->head_requests_[index])) {
      self->stopped_ = true;
      return HPE_PAUSED;
    }
    return 0;
  }

  const std::vector<bool>& head_requests_;
  llhttp_settings_t settings_{};
  llhttp_t parser_{};
  size_t final_responses_ = 0;
  bool stopped_ = false;
};

/**
 * The codec on a FakeConnection, fed and answered as the input says, with the connection
 * manager's handling of dispatch results and closes. Thread: the fuzzing thread.
 */
class Harness : public http::ServerConnectionCallbacks, public ServerSinkOwner {
public:
  Harness(CodecInput& in, const http::ServerCodecLimits& limits) : in_(in) {
    codec_ = std::make_unique<http::Http1ServerConnection>(conn_, *this, limits);
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
    runLoop();
    evbuffer_free(input_);
  }
  Harness(const Harness&) = delete;
  Harness& operator=(const Harness&) = delete;

  void run() {
    if (in_.next() & 1) {
      codec_->shutdownNotice();
    }
    while (in_.streamLeft() > 0 && !conn_.closed()) {
      const std::string_view piece = in_.take(in_.nextChunk());
      if (!conn_.closing()) {
        evbuffer_add(input_, piece.data(), piece.size());
        onData();
      }
      step(in_.next());
    }
    // The input ended: let later answers finish and the peer read them, then the peer closes.
    for (int i = 0; i < 6 && !conn_.closed(); ++i) {
      step(0);
    }
    conn_.takeOutput(0, seen_);
    conn_.remoteClose();
    std::vector<bool> head;
    head.reserve(streams_.size());
    for (const auto& s : streams_) {
      head.push_back(s->isHead());
    }
    ResponseStreamChecker(head).check(seen_);
  }

  // ServerConnectionCallbacks
  http::RequestDecoder& newStream(http::ResponseEncoder& encoder) override {
    // One request at a time: the previous one was answered (or reset) before this one starts.
    for (const auto& s : streams_) {
      FUZZ_CHECK(s->responseDone());
    }
    FUZZ_CHECK(codec_->activeStreams() == 1);
    streams_.push_back(
        std::make_unique<FuzzServerStream>(encoder, ResponsePlan::from(in_.next()), *this));
    return *streams_.back();
  }
  void onProtocolError(std::string_view details) override { FUZZ_CHECK(!details.empty()); }

  // ServerSinkOwner
  void checkRequest(const http::RequestHeaders& h, bool end_stream) override {
    FUZZ_CHECK(h.http_major == 1 && (h.http_minor == 0 || h.http_minor == 1));
    FUZZ_CHECK(h.path[0] == '/' || h.method == "OPTIONS");
    FUZZ_CHECK(h.http_minor == 0 || h.headers.count("host") == 1);
    FUZZ_CHECK(h.authority == h.headers.get("host").value_or(""));
    if (!h.upgrade.empty()) {
      FUZZ_CHECK(!end_stream);  // the tunnel is its body
    }
  }

private:
  /** What ConnectionManager::onData does with the codec's answer. */
  void onData() {
    if (conn_.readDisabled() || conn_.closed()) {
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

  /**
   * After a piece of input: bits 0-1 how much output the peer reads (all, none, 100 bytes,
   * 1 byte), bit 2 no later answers this time, bit 3 turn the event loop, bit 4 a drain notice.
   */
  void step(uint8_t d) {
    static constexpr size_t kRead[4] = {0, SIZE_MAX, 100, 1};
    const size_t read = kRead[d & 3];
    if (read != SIZE_MAX) {
      conn_.takeOutput(read, seen_);
    }
    if ((d & 4) == 0) {
      for (size_t i = 0; i < streams_.size() && !conn_.closed(); ++i) {
        streams_[i]->later();
      }
    }
    if ((d & 8) != 0) {
      runLoop();
    }
    if ((d & 16) != 0 && !conn_.closed()) {
      codec_->shutdownNotice();
    }
    // dispatchBufferedLater(), and bytes held back while reading was disabled.
    const bool redispatch = conn_.takeRedispatch();
    if ((redispatch || (was_read_disabled_ && !conn_.readDisabled())) &&
        evbuffer_get_length(input_) > 0) {
      onData();
    }
    was_read_disabled_ = conn_.readDisabled();
  }

  CodecInput& in_;
  FakeConnection conn_;
  std::unique_ptr<http::Http1ServerConnection> codec_;
  std::vector<std::unique_ptr<FuzzServerStream>> streams_;
  evbuffer* input_;
  std::string seen_;
  bool was_read_disabled_ = false;
};

}  // namespace
}  // namespace bulwark::fuzz

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace bulwark;
  fuzz::CodecInput in(data, size);
  // Limits: the listener defaults, or small ones so each limit's reply is reachable.
  const uint8_t l = in.next();
  http::ServerCodecLimits limits;
  if ((l & 1) != 0) {
    limits.max_request_headers_bytes = 256;
  }
  if ((l & 2) != 0) {
    limits.max_headers_count = 4;
  }
  if ((l & 4) != 0) {
    limits.max_request_body_bytes = 64;
  }
  fuzz::Harness harness(in, limits);
  harness.run();
  return 0;
}
