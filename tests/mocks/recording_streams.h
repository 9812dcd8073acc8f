#pragma once

// Decoders that record what a codec delivered on one stream, for codec, pool and connection
// manager tests. Each checks the codec's contract as it records (no second header block, nothing
// after the end of the stream, one reset at most).

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/http/codec.h"

namespace bulwark::mocks {

/** One request as a server codec delivered it. Thread: the codec's. */
class RecordingRequestDecoder : public http::RequestDecoder, public http::StreamCallbacks {
public:
  explicit RecordingRequestDecoder(http::ResponseEncoder& encoder) : encoder(encoder) {}

  // http::RequestDecoder
  void decodeHeaders(http::RequestHeadersPtr&& headers, bool end_stream) override;
  void decodeData(evbuffer* data, bool end_stream) override;
  void decodeTrailers(http::HeaderMap&& trailers) override;
  // http::StreamCallbacks
  void onResetStream(http::StreamResetReason reason, std::string_view detail) override;
  void onAboveWriteBufferHighWatermark() override { ++above_high_watermark; }
  void onBelowWriteBufferLowWatermark() override { ++below_low_watermark; }

  /** Answers with `status` and `body` (content-length set), ending the stream. */
  void respond(uint32_t status, std::string_view body = {});

  http::ResponseEncoder& encoder;
  http::RequestHeadersPtr headers;
  std::string body;
  std::optional<http::HeaderMap> trailers;
  bool complete = false;
  std::optional<http::StreamResetReason> reset;
  int above_high_watermark = 0;
  int below_low_watermark = 0;
  /** Runs once the request is complete (to answer from inside the codec's callback). */
  std::function<void(RecordingRequestDecoder&)> on_complete;

private:
  void ended();
};

/** One response as a client codec delivered it. Thread: the codec's. */
class RecordingResponseDecoder : public http::ResponseDecoder, public http::StreamCallbacks {
public:
  // http::ResponseDecoder
  void decode1xxHeaders(http::ResponseHeadersPtr&& headers) override;
  void decodeHeaders(http::ResponseHeadersPtr&& headers, bool end_stream) override;
  void decodeData(evbuffer* data, bool end_stream) override;
  void decodeTrailers(http::HeaderMap&& trailers) override;
  // http::StreamCallbacks
  void onResetStream(http::StreamResetReason reason, std::string_view detail) override;
  void onAboveWriteBufferHighWatermark() override { ++above_high_watermark; }
  void onBelowWriteBufferLowWatermark() override { ++below_low_watermark; }

  std::vector<uint32_t> informational;
  http::ResponseHeadersPtr headers;
  std::string body;
  std::optional<http::HeaderMap> trailers;
  bool complete = false;
  std::optional<http::StreamResetReason> reset;
  std::string reset_detail;
  int above_high_watermark = 0;
  int below_low_watermark = 0;
};

}  // namespace bulwark::mocks
