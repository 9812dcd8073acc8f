#include "tests/mocks/fake_router.h"

#include <event2/buffer.h>
#include <gtest/gtest.h>

namespace bulwark::mocks {

void FakeRouterCallbacks::encodeHeaders(http::ResponseHeadersPtr&& headers, bool end_stream) {
  EXPECT_EQ(response_headers, nullptr) << "response headers sent twice";
  EXPECT_TRUE(local_replies.empty()) << "response headers after a local reply";
  response_headers = std::move(headers);
  response_complete = end_stream;
}

void FakeRouterCallbacks::encodeData(evbuffer* data, bool end_stream) {
  EXPECT_NE(response_headers, nullptr) << "response body before its headers";
  EXPECT_FALSE(response_complete) << "response body after the end of the response";
  const size_t len = evbuffer_get_length(data);
  std::string bytes(len, '\0');
  evbuffer_remove(data, bytes.data(), len);
  response_body += bytes;
  response_complete = end_stream;
}

void FakeRouterCallbacks::encodeTrailers(http::HeaderMap&& trailers) {
  EXPECT_NE(response_headers, nullptr) << "response trailers before its headers";
  EXPECT_FALSE(response_complete) << "response trailers after the end of the response";
  response_trailers = std::move(trailers);
  response_complete = true;
}

void FakeRouterCallbacks::sendLocalReply(http::LocalReply reply) {
  EXPECT_TRUE(local_replies.empty()) << "a second local reply";
  local_replies.push_back(std::move(reply));
}

const http::LocalReply& FakeRouterCallbacks::localReply() const {
  EXPECT_EQ(local_replies.size(), 1u);
  static const http::LocalReply kNone;
  return local_replies.empty() ? kNone : local_replies.front();
}

uint32_t FakeRouterCallbacks::status() const {
  if (response_headers) {
    return response_headers->status;
  }
  return local_replies.empty() ? 0 : local_replies.front().httpStatus();
}

FakeWorkerUpstream& FakeRouterContext::upstreamFor(const upstream::UpstreamSharedPtr& upstream) {
  auto& slot = upstreams_[upstream.get()];
  if (!slot) {
    auto hosts = upstream->hosts();
    slot = std::make_unique<FakeWorkerUpstream>(hosts ? hosts->hosts
                                                      : std::vector<upstream::HostSharedPtr>{});
  }
  return *slot;
}

}  // namespace bulwark::mocks
