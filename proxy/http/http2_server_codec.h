#pragma once

#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <nghttp2/nghttp2.h>

#include "policies/rate_limit/token_bucket.h"
#include "proxy/http/codec.h"
#include "proxy/http/http2_common.h"

namespace bulwark::http {

/**
 * HTTP/2 server codec (downstream) on nghttp2, h2c with prior knowledge: the client preface is
 * expected at the start of the input (the `auto` listener sniffs it and hands the connection
 * over with the preface still buffered). nghttp2's HTTP messaging checks stay on; header count,
 * header bytes and body size limits are enforced here with 431/413 replies when no response has
 * started, RST_STREAM otherwise.
 *
 * Graceful drain (shutdownNotice): a GOAWAY with last-stream-id 2^31-1 plus a PING go out at
 * once; when the PING's ACK comes back (one RTT, so every stream the client sent before seeing
 * the notice has arrived) or after kDrainFinalGoAwayDelay at the latest, the final GOAWAY with
 * the last processed stream id follows. Once it is sent and no stream remains, wantsClose() is
 * true; when that happens outside dispatch() (a response finishing on the flush timer) the codec
 * closes the connection itself with FlushWrite, because no caller is on the stack to ask.
 * Thread: owning worker.
 */
class Http2ServerConnection : public ServerConnection, public Http2ConnectionBase {
public:
  /** Longest wait for the drain PING's ACK before the final GOAWAY. */
  static constexpr std::chrono::milliseconds kDrainFinalGoAwayDelay{1000};

  /**
   * Sends the server SETTINGS at once. connection and callbacks must outlive this codec.
   * initial_window is the per-stream receive window advertised (bounds each upload in flight).
   */
  Http2ServerConnection(network::CodecConnection& connection, ServerConnectionCallbacks& callbacks,
                        const ServerCodecLimits& limits,
                        uint32_t initial_window = kHttp2DefaultInitialWindow);
  ~Http2ServerConnection() override;

  // ServerConnection
  Status dispatch(evbuffer* input) override;
  void shutdownNotice() override;
  size_t activeStreams() const override { return streamCount(); }
  void onUnderlyingConnectionAboveWriteBufferHighWatermark() override {
    onAboveHighWatermarkImpl();
  }
  void onUnderlyingConnectionBelowWriteBufferLowWatermark() override { onBelowLowWatermarkImpl(); }
  void onConnectionClosed() override;
  bool wantsClose() const override;

private:
  class ServerStream;

  // Http2ConnectionBase
  void afterFlush() override;
  /** Reports a session-level error to the callbacks once. */
  void onSessionError(std::string_view details);
  int onBeginHeaders(const nghttp2_frame* frame) override;
  void onConnectionFrame(const nghttp2_frame* frame) override;
  void onInvalidFrame(const nghttp2_frame* frame, int lib_error_code) override;
  void onPeerCausedReset() override { chargeStreamError(); }

  void sendFinalGoAway();
  /**
   * One stream error the peer caused, against the connection's budget. Past it the peer is
   * abusing resets it provokes from us ("MadeYouReset", a malformed-request flood): GOAWAY
   * ENHANCE_YOUR_CALM and close, counted as http2.stream_error_budget.
   */
  void chargeStreamError();

  ServerConnectionCallbacks& callbacks_;
  ServerCodecLimits limits_;
  std::optional<policies::TokenBucket> stream_errors_;  // created with the first error
  event::TimerPtr drain_timer_;
  bool drain_started_ = false;
  bool final_goaway_submitted_ = false;
  bool session_error_reported_ = false;
};

}  // namespace bulwark::http
