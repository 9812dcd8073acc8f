#pragma once

#include <memory>
#include <string>

#include <llhttp.h>

#include "proxy/http/codec.h"
#include "proxy/http/http1_common.h"

namespace bulwark::http {

/**
 * HTTP/1.1 server codec on llhttp (strict mode): keep-alive, pipelining (one request at a time,
 * the rest stays buffered), chunked bodies both ways, Expect: 100-continue, HEAD/204/304 without
 * bodies, and the smuggling checks llhttp leaves to us (bare LF, obs-fold, control characters).
 * An Upgrade request that its stream forwards becomes a byte tunnel: its stream stays open
 * (end_stream=false), bytes after the request go up as body, and after a 101 the response body is
 * written unframed until either side closes.
 * Thread: owning worker.
 */
class Http1ServerConnection : public ServerConnection, private ResponseEncoder, private Stream {
public:
  Http1ServerConnection(network::CodecConnection& connection, ServerConnectionCallbacks& callbacks,
                        const ServerCodecLimits& limits);
  ~Http1ServerConnection() override;

  // ServerConnection
  Status dispatch(evbuffer* input) override;
  void shutdownNotice() override { draining_ = true; }
  size_t activeStreams() const override { return stream_active_ ? 1 : 0; }
  void onUnderlyingConnectionAboveWriteBufferHighWatermark() override;
  void onUnderlyingConnectionBelowWriteBufferLowWatermark() override;
  void onConnectionClosed() override;
  bool wantsClose() const override { return close_after_response_ && !stream_active_; }
  bool betweenRequests() const override;

private:
  // ResponseEncoder
  void encode100Continue() override;
  void encodeHeaders(const ResponseHeaders& headers, bool end_stream) override;
  void encodeData(evbuffer* data, bool end_stream) override;
  void encodeTrailers(const HeaderMap& trailers) override;
  Stream& stream() override { return *this; }
  std::string_view protocol() const override { return http_minor_ == 0 ? "HTTP/1.0" : "HTTP/1.1"; }
  // Stream
  void setCallbacks(StreamCallbacks* callbacks) override { stream_callbacks_ = callbacks; }
  void resetStream(StreamResetReason reason) override;
  void readDisable(bool disable) override;
  size_t bufferedBytes() const override { return connection_.outputLength(); }

  static int onMessageBegin(llhttp_t* p);
  static int onUrl(llhttp_t* p, const char* at, size_t len);
  static int onHeaderField(llhttp_t* p, const char* at, size_t len);
  static int onHeaderValue(llhttp_t* p, const char* at, size_t len);
  static int onHeadersComplete(llhttp_t* p);
  static int onBody(llhttp_t* p, const char* at, size_t len);
  static int onChunkHeader(llhttp_t* p);
  static int onMessageComplete(llhttp_t* p);

  int headersComplete();
  void finishHeader();
  Status sendProtocolError(uint32_t status, std::string details);
  bool scanForSmuggling(const char* data, size_t len, std::string& details);
  static const llhttp_settings_t& parserSettings();
  evbuffer* bodyBuffer();
  void flushBody(bool end_stream);
  void onResponseComplete();
  void writeChunk(evbuffer* data);
  /** The upstream agreed to switch: the response head goes out and the tunnel starts. */
  void encodeSwitchingProtocols(const ResponseHeaders& headers);

  network::CodecConnection& connection_;
  ServerConnectionCallbacks& callbacks_;
  ServerCodecLimits limits_;
  llhttp_t parser_;

  // Current request being parsed.
  RequestHeadersPtr request_;
  Http1HeaderReader header_reader_;
  bool in_trailers_ = false;
  HeaderMap trailers_;
  uint64_t body_bytes_ = 0;
  evbuffer* body_buffer_ = nullptr;  // bodyBuffer()
  RequestDecoder* decoder_ = nullptr;
  StreamCallbacks* stream_callbacks_ = nullptr;
  bool request_complete_ = false;
  bool request_has_body_ = false;
  bool stream_active_ = false;
  bool expect_continue_ = false;
  bool is_head_ = false;
  int http_minor_ = 1;
  bool request_keep_alive_ = true;

  // Smuggling scan state across reads while in the header section or a chunked trailer section
  // (never over body bytes: chunk data may hold any byte, and llhttp checks chunk framing).
  char prev_byte_ = 0;
  char prev_prev_byte_ = 0;
  bool scanning_headers_ = true;
  // A byte other than CR/LF was scanned in this section: empty lines before a request line
  // (which llhttp skips) must not look like the end of the header section.
  bool scan_started_ = false;
  // llhttp was paused at the last chunk so the trailer section is scanned before it is parsed.
  bool trailer_scan_pause_ = false;

  // Response state.
  bool response_started_ = false;
  bool response_complete_ = false;
  bool response_chunked_ = false;
  bool response_no_body_ = false;
  bool close_after_response_ = false;
  // The request asks for a protocol switch (Upgrade, not a lone h2c). Its stream either answers
  // itself (403 when the route does not tunnel it) or forwards it; after a 101 both directions are
  // raw bytes of the new protocol.
  bool upgrade_requested_ = false;
  // llhttp stopped at the end of the upgrade request: every later input byte is tunnel data.
  // (After a 101 the response is unframed on its own: no length, not chunked, not bodiless.)
  bool tunnel_input_ = false;
  // Answered before the request body was read: the short rest is read and dropped (nginx's
  // discarded body) so the connection stays reusable instead of closing under a client.
  bool discard_rest_ = false;
  bool draining_ = false;
  bool paused_ = false;
  Http1ReadDisable read_disable_;
  bool dispatching_ = false;
  bool dead_ = false;
};

}  // namespace bulwark::http
