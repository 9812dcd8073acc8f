#include "tests/mocks/recording_streams.h"

#include <event2/buffer.h>
#include <gtest/gtest.h>

namespace bulwark::mocks {
namespace {

std::string drain(evbuffer* data) {
  std::string bytes(evbuffer_get_length(data), '\0');
  evbuffer_remove(data, bytes.data(), bytes.size());
  return bytes;
}

}  // namespace

void RecordingRequestDecoder::decodeHeaders(http::RequestHeadersPtr&& request, bool end_stream) {
  EXPECT_EQ(headers, nullptr) << "request headers delivered twice";
  headers = std::move(request);
  if (end_stream) {
    ended();
  }
}

void RecordingRequestDecoder::decodeData(evbuffer* data, bool end_stream) {
  EXPECT_NE(headers, nullptr) << "request body before its headers";
  EXPECT_FALSE(complete) << "request body after the end of the request";
  body += drain(data);
  if (end_stream) {
    ended();
  }
}

void RecordingRequestDecoder::decodeTrailers(http::HeaderMap&& request_trailers) {
  EXPECT_FALSE(complete) << "request trailers after the end of the request";
  trailers = std::move(request_trailers);
  ended();
}

void RecordingRequestDecoder::onResetStream(http::StreamResetReason reason, std::string_view) {
  EXPECT_FALSE(reset.has_value()) << "stream reset twice";
  reset = reason;
}

void RecordingRequestDecoder::respond(uint32_t status, std::string_view response_body) {
  http::ResponseHeaders response;
  response.status = status;
  response.headers.add("content-length", std::to_string(response_body.size()));
  encoder.encodeHeaders(response, response_body.empty());
  if (!response_body.empty()) {
    evbuffer* data = evbuffer_new();
    evbuffer_add(data, response_body.data(), response_body.size());
    encoder.encodeData(data, true);
    evbuffer_free(data);
  }
}

void RecordingRequestDecoder::ended() {
  complete = true;
  if (on_complete) {
    on_complete(*this);
  }
}

void RecordingResponseDecoder::decode1xxHeaders(http::ResponseHeadersPtr&& response) {
  EXPECT_EQ(headers, nullptr) << "1xx after the final response headers";
  informational.push_back(response->status);
}

void RecordingResponseDecoder::decodeHeaders(http::ResponseHeadersPtr&& response, bool end_stream) {
  EXPECT_EQ(headers, nullptr) << "response headers delivered twice";
  headers = std::move(response);
  complete = end_stream;
}

void RecordingResponseDecoder::decodeData(evbuffer* data, bool end_stream) {
  EXPECT_NE(headers, nullptr) << "response body before its headers";
  EXPECT_FALSE(complete) << "response body after the end of the response";
  body += drain(data);
  complete = end_stream;
}

void RecordingResponseDecoder::decodeTrailers(http::HeaderMap&& response_trailers) {
  EXPECT_FALSE(complete) << "response trailers after the end of the response";
  trailers = std::move(response_trailers);
  complete = true;
}

void RecordingResponseDecoder::onResetStream(http::StreamResetReason reason,
                                             std::string_view detail) {
  EXPECT_FALSE(reset.has_value()) << "stream reset twice";
  reset = reason;
  reset_detail = std::string(detail);
}

}  // namespace bulwark::mocks
