#pragma once

// The codec seam (Envoy's Http::Connection / StreamEncoder / StreamDecoder, reduced). A codec
// turns bytes on one network::CodecConnection (a network::Connection in production) into streams
// and back. Server codecs face downstream, client codecs face one upstream host. HTTP/1.1 codecs
// are in http1_*.cc, HTTP/2 in http2_*.cc.
// Thread: every object here lives on one worker thread.

#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include <event2/buffer.h>

#include "common/result.h"
#include "proxy/event/dispatcher.h"
#include "proxy/http/headers.h"
#include "proxy/network/codec_connection.h"

namespace bulwark::http {

enum class StreamResetReason {
  LocalReset,             // we reset it (timeout, cancelled attempt, ...)
  RemoteReset,            // peer sent RST_STREAM (not REFUSED_STREAM) or closed mid-stream
  RefusedStream,          // peer refused before processing (RST_STREAM REFUSED_STREAM)
  ConnectionFailure,      // connect failed / connection closed before any response byte
  ConnectionTermination,  // connection closed while the stream was active
  ConnectTimeout,
  ProtocolError,           // peer violated the protocol
  GoAwayBeforeProcessing,  // stream id above GOAWAY's last-stream-id: never processed
  TlsFailure,              // the upstream's TLS session failed before any response byte
};
std::string_view toString(StreamResetReason reason);

/** Per-stream events a codec reports to the stream's owner. */
class StreamCallbacks {
public:
  virtual ~StreamCallbacks() = default;
  /** The stream is gone (reset by either side or by connection loss). No more calls follow. */
  virtual void onResetStream(StreamResetReason reason, std::string_view detail) = 0;
  /** This stream's outbound buffer is full: stop producing body for it. */
  virtual void onAboveWriteBufferHighWatermark() {}
  /** This stream's outbound buffer drained: producing may resume. */
  virtual void onBelowWriteBufferLowWatermark() {}
};

/** A codec's per-stream handle. */
class Stream {
public:
  virtual ~Stream() = default;
  /** One owner per stream; set before any event can be raised. */
  virtual void setCallbacks(StreamCallbacks* callbacks) = 0;
  /** Resets the stream (H2: RST_STREAM; H1: closes the connection). Calls no callback. */
  virtual void resetStream(StreamResetReason reason) = 0;
  /**
   * Stops (disable=true) or resumes delivery of inbound body for this stream. H2: withholds
   * WINDOW_UPDATE; H1: stops reading the socket. Calls nest (counted).
   */
  virtual void readDisable(bool disable) = 0;
  /** Bytes queued for this stream that the peer has not taken yet (for watermarks). */
  virtual size_t bufferedBytes() const = 0;
};

// ---------------------------------------------------------------------------------------------
// Server side (downstream).

/** Sends one response. The data passed to encodeData is moved out (left empty). */
class ResponseEncoder {
public:
  virtual ~ResponseEncoder() = default;
  virtual void encode100Continue() = 0;
  virtual void encodeHeaders(const ResponseHeaders& headers, bool end_stream) = 0;
  virtual void encodeData(evbuffer* data, bool end_stream) = 0;
  virtual void encodeTrailers(const HeaderMap& trailers) = 0;
  virtual Stream& stream() = 0;
  /** HTTP/2 or HTTP/1.x, for access logs and X-Forwarded-Proto style decisions. */
  virtual std::string_view protocol() const = 0;
};

/** Receives one request. Implemented by the connection manager's active stream. */
class RequestDecoder {
public:
  virtual ~RequestDecoder() = default;
  virtual void decodeHeaders(RequestHeadersPtr&& headers, bool end_stream) = 0;
  /** Drain what you take from data; a codec never calls again with undrained bytes pending. */
  virtual void decodeData(evbuffer* data, bool end_stream) = 0;
  virtual void decodeTrailers(HeaderMap&& trailers) = 0;
};

/** Why a server codec answers a request itself before any decoder sees it. */
struct ProtocolErrorReply {
  uint32_t status;      // 400, 413, 431, 505, ...
  std::string details;  // response detail for logs and metrics, e.g. "http1.invalid_header_value"
};

class ServerConnectionCallbacks {
public:
  virtual ~ServerConnectionCallbacks() = default;
  /** A new request stream starts; the returned decoder must outlive the stream. */
  virtual RequestDecoder& newStream(ResponseEncoder& encoder) = 0;
  /** The codec rejected malformed input (it already replied or sent GOAWAY). For stats. */
  virtual void onProtocolError(std::string_view details) = 0;
};

/** Limits a server codec enforces (from ListenerLimitsSpec). */
struct ServerCodecLimits {
  uint32_t max_request_headers_bytes = 60 * 1024;
  uint32_t max_headers_count = 100;
  uint64_t max_request_body_bytes = 0;  // 0 = unlimited
  uint32_t max_concurrent_streams = 100;
  // HTTP/2: stream errors the peer caused (resets nghttp2 sends, 4xx rejections of a stream)
  // refill at this rate into a bucket of this size; when it is empty: GOAWAY ENHANCE_YOUR_CALM.
  uint32_t stream_error_burst = 100;
  uint32_t stream_errors_per_second = 10;
};

/** Deferred-deletable: the connection manager drops an HTTP/1 codec between requests while its
 *  own calls may still be on the stack. */
class ServerConnection : public event::DeferredDeletable {
public:
  /** Consumes bytes from input. An error Status means: the codec already answered or sent
   *  GOAWAY and the caller must close the connection (after flushing). */
  virtual Status dispatch(evbuffer* input) = 0;
  /** Graceful drain: HTTP/2 GOAWAY; HTTP/1.1 `Connection: close` on the next response. */
  virtual void shutdownNotice() = 0;
  /** Streams currently open. */
  virtual size_t activeStreams() const = 0;
  /** The connection's output drained or filled: forward to each stream's callbacks. */
  virtual void onUnderlyingConnectionAboveWriteBufferHighWatermark() = 0;
  virtual void onUnderlyingConnectionBelowWriteBufferLowWatermark() = 0;
  /** The connection closed: reset every active stream with ConnectionTermination. */
  virtual void onConnectionClosed() = 0;
  /** True when the codec wants the connection closed once output is flushed. */
  virtual bool wantsClose() const = 0;
  /**
   * True when nothing of a request is in progress (no stream, no byte of the next request parsed,
   * nothing paused or held), so a codec made afresh would carry on exactly as this one: the
   * connection manager then frees it and an idle keep-alive connection holds no codec. HTTP/2
   * never is: its session keeps header-compression and settings state between streams.
   */
  virtual bool betweenRequests() const { return false; }
};
using ServerConnectionPtr = std::unique_ptr<ServerConnection>;

// ---------------------------------------------------------------------------------------------
// Client side (upstream).

class RequestEncoder {
public:
  virtual ~RequestEncoder() = default;
  virtual void encodeHeaders(const RequestHeaders& headers, bool end_stream) = 0;
  virtual void encodeData(evbuffer* data, bool end_stream) = 0;
  virtual void encodeTrailers(const HeaderMap& trailers) = 0;
  virtual Stream& stream() = 0;
};

class ResponseDecoder {
public:
  virtual ~ResponseDecoder() = default;
  /** 1xx informational responses (100 Continue). */
  virtual void decode1xxHeaders(ResponseHeadersPtr&& headers) = 0;
  virtual void decodeHeaders(ResponseHeadersPtr&& headers, bool end_stream) = 0;
  virtual void decodeData(evbuffer* data, bool end_stream) = 0;
  virtual void decodeTrailers(HeaderMap&& trailers) = 0;
};

class ClientConnectionCallbacks {
public:
  virtual ~ClientConnectionCallbacks() = default;
  /** Peer sent GOAWAY (H2) or `Connection: close` (H1): no new streams on this connection. */
  virtual void onGoAway() = 0;
  /** A stream finished (completed or reset): capacity for a new stream may be free. */
  virtual void onStreamClosed() = 0;
};

class ClientConnection {
public:
  virtual ~ClientConnection() = default;
  /** Opens a stream. Precondition: canCreateStream(). */
  virtual RequestEncoder& newStream(ResponseDecoder& decoder) = 0;
  virtual bool canCreateStream() const = 0;
  virtual size_t activeStreams() const = 0;
  /** Consumes bytes; an error Status means the connection is unusable and must be closed. */
  virtual Status dispatch(evbuffer* input) = 0;
  virtual void onUnderlyingConnectionAboveWriteBufferHighWatermark() = 0;
  virtual void onUnderlyingConnectionBelowWriteBufferLowWatermark() = 0;
  /** The connection closed: reset every active stream (ConnectionTermination, or
   *  ConnectionFailure when nothing was received yet). */
  virtual void onConnectionClosed(bool connect_failed) = 0;
  /**
   * The TLS session failed before any response byte although the handshake had finished on our
   * side (TLS 1.3: the server refuses our certificate after our Finished): reset every active
   * stream with TlsFailure. The connection close follows.
   */
  virtual void onTlsFailure() = 0;
  /** Graceful close: GOAWAY (H2) / no reuse (H1). */
  virtual void goAway() = 0;
};
using ClientConnectionPtr = std::unique_ptr<ClientConnection>;

}  // namespace bulwark::http
