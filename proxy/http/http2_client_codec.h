#pragma once

#include <cstdint>

#include <nghttp2/nghttp2.h>

#include "proxy/http/codec.h"
#include "proxy/http/http2_common.h"

namespace bulwark::http {

/** What the client codec advertises and allows (from the upstream's pool settings). */
struct Http2ClientSettings {
  /** Our cap on concurrent streams; the peer's SETTINGS_MAX_CONCURRENT_STREAMS caps it further. */
  uint32_t max_concurrent_streams = 100;
  /** Per-stream receive window advertised (bounds each download in flight). */
  uint32_t initial_window = kHttp2DefaultInitialWindow;
};

/**
 * HTTP/2 client codec (upstream) on nghttp2 with prior knowledge (h2c). Construct it once the
 * connection is up: the client preface and SETTINGS are written at once. Many streams share the
 * connection; canCreateStream() says whether one more fits.
 *
 * How a stream ends, as StreamResetReason: RST_STREAM(REFUSED_STREAM) -> RefusedStream; a stream
 * above the last-stream-id of a received GOAWAY (or a request that never left because of it) ->
 * GoAwayBeforeProcessing (both never processed: safe to retry); a stream nghttp2 reset because
 * the peer broke a stream rule -> ProtocolError; any other RST_STREAM -> RemoteReset; the
 * connection closing -> ConnectionFailure (nothing ever received) or ConnectionTermination. A
 * response that completed is not a reset, even when the server then cancels the rest of the
 * request body with RST_STREAM(NO_ERROR).
 * Thread: owning worker.
 */
class Http2ClientConnection : public ClientConnection, public Http2ConnectionBase {
public:
  /** connection and callbacks must outlive this codec. */
  Http2ClientConnection(network::CodecConnection& connection, ClientConnectionCallbacks& callbacks,
                        const Http2ClientSettings& settings);
  ~Http2ClientConnection() override;

  // ClientConnection
  RequestEncoder& newStream(ResponseDecoder& decoder) override;
  bool canCreateStream() const override;
  size_t activeStreams() const override { return streamCount(); }
  Status dispatch(evbuffer* input) override;
  void onUnderlyingConnectionAboveWriteBufferHighWatermark() override {
    onAboveHighWatermarkImpl();
  }
  void onUnderlyingConnectionBelowWriteBufferLowWatermark() override { onBelowLowWatermarkImpl(); }
  void onConnectionClosed(bool connect_failed) override;
  void onTlsFailure() override;
  void goAway() override;

  /** True once the peer sent GOAWAY (new streams are not allowed any more). */
  bool goAwayReceived() const { return goaway_received_; }

private:
  class ClientStream;

  // Http2ConnectionBase
  void afterFlush() override;
  int onBeginHeaders(const nghttp2_frame* frame) override;
  void onConnectionFrame(const nghttp2_frame* frame) override;
  void onStreamRemoved() override;

  ClientConnectionCallbacks& callbacks_;
  Http2ClientSettings settings_;
  bool goaway_notified_ = false;
  bool local_goaway_ = false;
};

}  // namespace bulwark::http
