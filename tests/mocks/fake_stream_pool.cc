#include "tests/mocks/fake_stream_pool.h"

#include <algorithm>

#include <event2/buffer.h>
#include <gtest/gtest.h>

namespace bulwark::mocks {

FakePooledStream::FakePooledStream(upstream::HostSharedPtr host, http::ResponseDecoder& decoder,
                                   upstream::ConnPoolCallbacks& callbacks)
    : host_(std::move(host)), decoder_(decoder), pool_callbacks_(callbacks) {}

bool FakePooledStream::usable(std::string_view what) const {
  EXPECT_FALSE(abandoned()) << what << " on a stream the attempt let go of";
  EXPECT_FALSE(failed_) << what << " on a stream the pool failed";
  return !abandoned() && !failed_;
}

void FakePooledStream::ready() {
  EXPECT_TRUE(queued()) << "ready() on a stream that is not queued";
  if (!queued()) {
    return;
  }
  is_ready_ = true;
  pool_callbacks_.onPoolReady(*this, *host_);
}

void FakePooledStream::fail(upstream::PoolFailureReason reason) {
  EXPECT_TRUE(queued()) << "fail() on a stream that is not queued";
  if (!queued()) {
    return;
  }
  failed_ = true;
  pool_callbacks_.onPoolFailure(reason, "fake pool failure");
}

void FakePooledStream::respond(uint32_t status, bool end_stream, http::HeaderMap headers) {
  if (!usable("respond()")) {
    return;
  }
  auto response = std::make_unique<http::ResponseHeaders>();
  response->status = status;
  response->headers = std::move(headers);
  response_complete_ = end_stream;
  decoder_.decodeHeaders(std::move(response), end_stream);
}

void FakePooledStream::respondData(std::string_view body, bool end_stream) {
  if (!usable("respondData()")) {
    return;
  }
  evbuffer* data = evbuffer_new();
  evbuffer_add(data, body.data(), body.size());
  response_complete_ = end_stream;
  decoder_.decodeData(data, end_stream);
  evbuffer_free(data);
}

void FakePooledStream::respondTrailers(http::HeaderMap trailers) {
  if (!usable("respondTrailers()")) {
    return;
  }
  response_complete_ = true;
  decoder_.decodeTrailers(std::move(trailers));
}

void FakePooledStream::resetByPeer(http::StreamResetReason reason) {
  if (!usable("resetByPeer()")) {
    return;
  }
  ASSERT_NE(stream_callbacks_, nullptr) << "reset of a stream nobody listens to";
  stream_callbacks_->onResetStream(reason, "fake peer reset");
}

void FakePooledStream::setWriteBufferFull(bool full) {
  if (!usable("setWriteBufferFull()")) {
    return;
  }
  ASSERT_NE(stream_callbacks_, nullptr);
  if (full) {
    stream_callbacks_->onAboveWriteBufferHighWatermark();
  } else {
    stream_callbacks_->onBelowWriteBufferLowWatermark();
  }
}

void FakePooledStream::encodeHeaders(const http::RequestHeaders& headers, bool end_stream) {
  EXPECT_FALSE(request_headers_.has_value()) << "request headers sent twice";
  request_headers_ = headers;
  request_complete_ = end_stream;
}

void FakePooledStream::encodeData(evbuffer* data, bool end_stream) {
  EXPECT_FALSE(request_complete_) << "request body after the end of the request";
  const size_t len = evbuffer_get_length(data);
  std::string bytes(len, '\0');
  evbuffer_remove(data, bytes.data(), len);
  request_body_ += bytes;
  request_complete_ = end_stream;
}

void FakePooledStream::encodeTrailers(const http::HeaderMap& trailers) {
  EXPECT_FALSE(request_complete_) << "request trailers after the end of the request";
  request_trailers_ = trailers;
  request_complete_ = true;
}

FakeStreamPool::FakeStreamPool(upstream::HostSharedPtr host,
                               std::function<void(FakePooledStream&)> on_new)
    : host_(std::move(host)), on_new_(std::move(on_new)) {}

upstream::Cancellable* FakeStreamPool::newStream(http::ResponseDecoder& decoder,
                                                 upstream::ConnPoolCallbacks& callbacks) {
  streams.push_back(std::make_unique<FakePooledStream>(host_, decoder, callbacks));
  FakePooledStream& stream = *streams.back();
  if (on_new_) {
    on_new_(stream);
  }
  switch (mode) {
    case Mode::Queue: return &stream;
    case Mode::ReadyAtOnce: stream.ready(); return nullptr;
    case Mode::FailAtOnce: stream.fail(failure); return nullptr;
  }
  return &stream;
}

FakeWorkerUpstream::FakeWorkerUpstream(std::vector<upstream::HostSharedPtr> hosts)
    : hosts_(std::move(hosts)) {
  for (const auto& host : hosts_) {
    pools_.emplace(host.get(), std::make_unique<FakeStreamPool>(
                                   host, [this](FakePooledStream& s) { started_.push_back(&s); }));
  }
}

upstream::HostSharedPtr FakeWorkerUpstream::pickHost(std::mt19937_64&,
                                                     const upstream::LbContext& ctx) {
  if (no_host || hosts_.empty()) {
    return nullptr;
  }
  for (const auto& host : hosts_) {
    if (std::find(ctx.attempted.begin(), ctx.attempted.end(), host.get()) == ctx.attempted.end()) {
      return host;
    }
  }
  return hosts_.front();
}

FakeStreamPool& FakeWorkerUpstream::poolFor(const upstream::HostSharedPtr& host) {
  // Throws (the test fails) for a host this upstream does not have.
  return *pools_.at(host.get());
}

void FakeWorkerUpstream::setMode(FakeStreamPool::Mode mode) {
  for (auto& [host, pool] : pools_) {
    pool->mode = mode;
  }
}

}  // namespace bulwark::mocks
