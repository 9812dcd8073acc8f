#pragma once

#include <llhttp.h>

#include "proxy/http/codec.h"
#include "proxy/http/http1_common.h"

namespace bulwark::http {

/**
 * HTTP/1.1 client codec on llhttp: one stream at a time on one upstream connection, request
 * body framed with Content-Length or chunked, response bodies by length, chunks or close. An
 * Upgrade request answered 101 turns the connection into a tunnel: bytes flow unframed both ways
 * as the stream's body until either side closes, and the connection is never reused.
 * Thread: owning worker.
 */
class Http1ClientConnection : public ClientConnection, private RequestEncoder, private Stream {
public:
  Http1ClientConnection(network::CodecConnection& connection, ClientConnectionCallbacks& callbacks);
  ~Http1ClientConnection() override;

  // ClientConnection
  RequestEncoder& newStream(ResponseDecoder& decoder) override;
  bool canCreateStream() const override { return !stream_active_ && !go_away_ && !dead_; }
  size_t activeStreams() const override { return stream_active_ ? 1 : 0; }
  Status dispatch(evbuffer* input) override;
  void onUnderlyingConnectionAboveWriteBufferHighWatermark() override;
  void onUnderlyingConnectionBelowWriteBufferLowWatermark() override;
  void onConnectionClosed(bool connect_failed) override;
  void onTlsFailure() override;
  void goAway() override { go_away_ = true; }

  /** True when the last response allowed the connection to be reused. */
  bool reusable() const { return !go_away_ && !dead_ && !stream_active_; }
  uint64_t completedStreams() const { return completed_streams_; }

private:
  // RequestEncoder
  void encodeHeaders(const RequestHeaders& headers, bool end_stream) override;
  void encodeData(evbuffer* data, bool end_stream) override;
  void encodeTrailers(const HeaderMap& trailers) override;
  Stream& stream() override { return *this; }
  // Stream
  void setCallbacks(StreamCallbacks* callbacks) override { stream_callbacks_ = callbacks; }
  void resetStream(StreamResetReason reason) override;
  void readDisable(bool disable) override;
  size_t bufferedBytes() const override { return connection_.outputLength(); }

  static int onMessageBegin(llhttp_t* p);
  static int onStatus(llhttp_t* p, const char* at, size_t len);
  static int onHeaderField(llhttp_t* p, const char* at, size_t len);
  static int onHeaderValue(llhttp_t* p, const char* at, size_t len);
  static int onHeadersComplete(llhttp_t* p);
  static int onBody(llhttp_t* p, const char* at, size_t len);
  static int onMessageComplete(llhttp_t* p);
  void finishHeader();
  /** A 101 arrived: HPE_USER unless this request asked to switch. */
  int switchProtocols();
  void flushBody(bool end_stream);
  void completeStream();
  void failStream(StreamResetReason reason, std::string_view detail);

  network::CodecConnection& connection_;
  ClientConnectionCallbacks& callbacks_;
  llhttp_t parser_;
  llhttp_settings_t settings_;
  ResponseDecoder* decoder_ = nullptr;
  StreamCallbacks* stream_callbacks_ = nullptr;
  ResponseHeadersPtr response_;
  Http1HeaderReader header_reader_;
  bool in_trailers_ = false;
  HeaderMap trailers_;
  evbuffer* body_buffer_;
  bool stream_active_ = false;
  bool request_chunked_ = false;
  bool request_complete_ = false;
  bool response_headers_seen_ = false;
  bool response_without_body_ = false;
  bool any_response_bytes_ = false;
  bool head_request_ = false;
  bool upgrade_request_ = false;
  bool tunnel_ = false;  // a 101 arrived: input is the switched-to protocol
  bool go_away_ = false;
  bool dead_ = false;
  Http1ReadDisable read_disable_;
  uint64_t completed_streams_ = 0;
};

}  // namespace bulwark::http
