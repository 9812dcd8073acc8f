#pragma once

// The request side of the connection manager as the server codec fuzz targets play it: one
// FuzzServerStream per request, answering it the way an ActiveStream does (a direct response
// from decodeHeaders, a response once the request ended, a response produced later as if from
// an upstream, trailers, 100-continue, a reset, read-disable while "the upstream is slow"), and
// checking what the codec delivers. Thread: the fuzzing thread.

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include <event2/buffer.h>

#include "proxy/http/codec.h"
#include "proxy/http/headers.h"
#include "tests/fuzz/codec_fuzz.h"
#include "tests/fuzz/fuzz_check.h"

namespace bulwark::fuzz {

/** RFC 9110 token characters (a header name). */
inline bool isTokenChar(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9')) {
    return true;
  }
  return c != 0 &&
         std::string_view("!#$%&'*+-.^_`|~").find(static_cast<char>(c)) != std::string_view::npos;
}

/** Forwarded headers: names are lower-case tokens, values hold no CR, LF or NUL. */
inline void checkForwardedHeaders(const http::HeaderMap& headers) {
  for (const auto& [name, value] : headers.entries()) {
    FUZZ_CHECK(!name.empty());
    for (unsigned char c : name) {
      FUZZ_CHECK(isTokenChar(c) && !(c >= 'A' && c <= 'Z'));
    }
    for (unsigned char c : value) {
      FUZZ_CHECK(c != '\r' && c != '\n' && c != 0);
    }
  }
}

/** Digits only (leading zeros allowed), no sign, no list: what a forwarded Content-Length may be.
 */
inline bool isDecimal(std::string_view v) {
  if (v.empty()) {
    return false;
  }
  for (char c : v) {
    if (c < '0' || c > '9') {
      return false;
    }
  }
  return true;
}

/** The value of a decimal string, saturating at UINT64_MAX (llhttp refuses longer lengths). */
inline uint64_t parseDecimal(std::string_view v) {
  uint64_t n = 0;
  for (char c : v) {
    const auto digit = static_cast<uint64_t>(c - '0');
    if (n > (UINT64_MAX - digit) / 10) {
      return UINT64_MAX;
    }
    n = n * 10 + digit;
  }
  return n;
}

/**
 * How one stream answers, from one decision byte (0: answer 200 with a short body at the end).
 * Thread: the fuzzing thread.
 */
struct ResponsePlan {
  enum class Mode : uint8_t {
    AtEnd,         // full response once the request ended
    Direct,        // headers with end_stream from decodeHeaders (a local reply)
    Early,         // headers and some body from decodeHeaders, the rest at the end
    Reset,         // resetStream from decodeHeaders or on the first body bytes
    Later,         // full response from a later step (an upstream answering)
    Trailers,      // at the end: headers, body, trailers
    ContinueSlow,  // 100-continue and read-disable at once, answer and read-enable later
    PieceByPiece,  // headers, body, end (or a reset) in separate later steps
  };
  Mode mode = Mode::AtEnd;
  uint32_t status = 200;
  size_t body = 5;
  bool content_length = false;  // the response carries its own Content-Length

  static ResponsePlan from(uint8_t b) {
    static constexpr uint32_t kStatus[8] = {200, 204, 304, 404, 413, 503, 101, 200};
    static constexpr size_t kBody[4] = {5, 0, 300, 20000};
    ResponsePlan p;
    p.mode = static_cast<Mode>(b & 7);
    p.status = kStatus[(b >> 3) & 7];
    p.body = kBody[(b >> 6) & 3];
    p.content_length = ((b >> 3) & 1) != 0;
    return p;
  }
};

/** What a server harness provides to its streams. Thread: the fuzzing thread. */
class ServerSinkOwner {
public:
  virtual ~ServerSinkOwner() = default;
  /** The request's HTTP version and pseudo-headers, checked per protocol. */
  virtual void checkRequest(const http::RequestHeaders& headers, bool end_stream) = 0;
};

/**
 * One request stream, answered by its plan and checked as it goes (see the file comment).
 * Thread: the fuzzing thread.
 */
class FuzzServerStream : public http::RequestDecoder, public http::StreamCallbacks {
public:
  FuzzServerStream(http::ResponseEncoder& encoder, const ResponsePlan& plan, ServerSinkOwner& owner)
      : encoder_(encoder), plan_(plan), owner_(owner) {
    encoder_.stream().setCallbacks(this);
  }

  // RequestDecoder
  void decodeHeaders(http::RequestHeadersPtr&& headers, bool end_stream) override {
    FUZZ_CHECK(!reset_ && !headers_seen_);
    FUZZ_CHECK(headers != nullptr);
    headers_seen_ = true;
    const http::RequestHeaders& h = *headers;
    FUZZ_CHECK(!h.method.empty());
    FUZZ_CHECK(!h.path.empty());
    checkForwardedHeaders(h.headers);
    // Content-Length and Transfer-Encoding never both forwarded; at most one, decimal, length.
    FUZZ_CHECK(!h.headers.has("transfer-encoding"));
    FUZZ_CHECK(h.headers.count("content-length") <= 1);
    if (auto cl = h.headers.get("content-length")) {
      FUZZ_CHECK(isDecimal(*cl));
      content_length_ = parseDecimal(*cl);
      has_content_length_ = true;
    }
    for (std::string_view hop : {"connection", "keep-alive", "proxy-connection", "upgrade"}) {
      FUZZ_CHECK(!h.headers.has(hop));
    }
    owner_.checkRequest(h, end_stream);
    head_ = h.method == "HEAD";
    upgrade_ = !h.upgrade.empty();
    request_done_ = end_stream;
    switch (plan_.mode) {
      case ResponsePlan::Mode::Direct: respond(true); break;
      case ResponsePlan::Mode::Early:
        sendHeaders(false);
        sendBody(plan_.body / 2, false);
        break;
      case ResponsePlan::Mode::Reset:
        if (end_stream || plan_.body == 0) {
          resetNow();
        }
        break;
      case ResponsePlan::Mode::ContinueSlow:
        encoder_.encode100Continue();
        if (alive()) {
          encoder_.stream().readDisable(true);
          read_disabled_ = true;
        }
        break;
      default: break;
    }
    maybeAnswerAtEnd();
  }

  void decodeData(evbuffer* data, bool end_stream) override {
    FUZZ_CHECK(headers_seen_ && !reset_ && !request_done_);
    const size_t len = evbuffer_get_length(data);
    body_received_ += len;
    evbuffer_drain(data, len);
    if (has_content_length_ && !upgrade_) {
      // Never more body than the forwarded length promised, exactly that much at the end.
      FUZZ_CHECK(body_received_ <= content_length_);
      FUZZ_CHECK(!end_stream || body_received_ == content_length_);
    }
    request_done_ = end_stream;
    if (plan_.mode == ResponsePlan::Mode::Reset && alive()) {
      resetNow();
      return;
    }
    maybeAnswerAtEnd();
  }

  void decodeTrailers(http::HeaderMap&& trailers) override {
    FUZZ_CHECK(headers_seen_ && !reset_ && !request_done_);
    checkForwardedHeaders(trailers);
    request_done_ = true;
    maybeAnswerAtEnd();
  }

  // StreamCallbacks
  void onResetStream(http::StreamResetReason, std::string_view) override {
    FUZZ_CHECK(!reset_);
    reset_ = true;
  }

  /** One step of an answer "from the upstream", between two pieces of input. */
  void later() {
    if (!alive()) {
      return;
    }
    switch (plan_.mode) {
      case ResponsePlan::Mode::Later: respond(false); break;
      case ResponsePlan::Mode::ContinueSlow:
        if (read_disabled_) {
          read_disabled_ = false;
          encoder_.stream().readDisable(false);
          return;
        }
        if (request_done_) {
          respond(false);
        }
        break;
      case ResponsePlan::Mode::PieceByPiece:
        if (!headers_sent_) {
          sendHeaders(false);
        } else if (!body_sent_) {
          body_sent_ = true;
          sendBody(plan_.body, false);
        } else if (plan_.content_length) {
          resetNow();  // a response cut short: the upstream went away mid-body
        } else {
          finish();
        }
        break;
      default: break;
    }
  }

  bool responseDone() const { return response_done_ || reset_; }
  bool isHead() const { return head_; }

private:
  /** The encoder may still be used: no reset arrived and no response end was sent. */
  bool alive() const { return !reset_ && !response_done_; }

  void maybeAnswerAtEnd() {
    if (!request_done_ || !alive()) {
      return;
    }
    switch (plan_.mode) {
      case ResponsePlan::Mode::AtEnd: respond(false); break;
      case ResponsePlan::Mode::Early:
        sendBody(plan_.body - plan_.body / 2, false);
        finish();
        break;
      case ResponsePlan::Mode::Trailers:
        sendHeaders(false);
        sendBody(plan_.body, false);
        if (alive()) {
          http::HeaderMap trailers;
          trailers.add("x-fuzz-trailer", "done");
          response_done_ = true;
          encoder_.encodeTrailers(trailers);
        }
        break;
      default: break;
    }
  }

  void sendHeaders(bool end_stream) {
    if (!alive() || headers_sent_) {
      return;
    }
    headers_sent_ = true;
    http::ResponseHeaders h;
    h.status = plan_.status;
    h.headers.add("x-fuzz", "1");
    const bool bodiless = plan_.status == 204 || plan_.status == 304;
    if (plan_.content_length && !bodiless && plan_.status != 101) {
      h.headers.add("content-length", std::to_string(end_stream ? 0 : plan_.body));
    }
    if (plan_.status == 101) {
      h.headers.add("upgrade", "websocket");
    }
    response_done_ = end_stream;
    encoder_.encodeHeaders(h, end_stream);
  }

  void sendBody(size_t len, bool end_stream) {
    if (!alive()) {
      return;
    }
    evbuffer* buf = evbuffer_new();
    std::string chunk(len, 'b');
    evbuffer_add(buf, chunk.data(), chunk.size());
    response_done_ = end_stream;
    encoder_.encodeData(buf, end_stream);
    FUZZ_CHECK(evbuffer_get_length(buf) == 0);  // encodeData takes everything
    evbuffer_free(buf);
  }

  void finish() {
    if (!alive()) {
      return;
    }
    evbuffer* buf = evbuffer_new();
    response_done_ = true;
    encoder_.encodeData(buf, true);
    evbuffer_free(buf);
  }

  void respond(bool direct) {
    if (direct || plan_.body == 0) {
      sendHeaders(true);
      return;
    }
    sendHeaders(false);
    sendBody(plan_.body, false);
    finish();
  }

  void resetNow() {
    if (!alive()) {
      return;
    }
    // The stream's owner stops using it: a reset raises no callback on the one who asked.
    reset_ = true;
    encoder_.stream().resetStream(http::StreamResetReason::LocalReset);
  }

  http::ResponseEncoder& encoder_;
  ResponsePlan plan_;
  ServerSinkOwner& owner_;
  bool headers_seen_ = false;
  bool request_done_ = false;
  bool headers_sent_ = false;
  bool body_sent_ = false;
  bool response_done_ = false;
  bool reset_ = false;
  bool read_disabled_ = false;
  bool head_ = false;
  bool upgrade_ = false;
  bool has_content_length_ = false;
  uint64_t content_length_ = 0;
  uint64_t body_received_ = 0;
};

}  // namespace bulwark::fuzz
