#pragma once

// Upstream side of router tests: a pool that hands out streams the test answers by hand, and a
// per-worker upstream that picks hosts in order. Nothing here touches a socket.

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "proxy/http/codec.h"
#include "proxy/upstream/host.h"
#include "proxy/upstream/stream_pool.h"
#include "proxy/upstream/worker_upstream.h"

namespace bulwark::mocks {

/**
 * One stream an attempt asked a FakeStreamPool for. First it is queued (the attempt holds it as
 * a Cancellable); the test then plays the pool (ready() or fail()), and once ready the attempt
 * writes its request into it (RequestEncoder) and the test plays the host (respond*(),
 * resetByPeer()). Records what the attempt did to it. Owned by its pool, so it outlives the
 * attempt. Thread: test.
 */
class FakePooledStream : public upstream::Cancellable,
                         public http::RequestEncoder,
                         public http::Stream {
public:
  FakePooledStream(upstream::HostSharedPtr host, http::ResponseDecoder& decoder,
                   upstream::ConnPoolCallbacks& callbacks);

  // The pool's side.
  /** A connection is ready: the attempt gets this stream as its encoder. */
  void ready();
  void fail(upstream::PoolFailureReason reason = upstream::PoolFailureReason::ConnectFailure);

  // The host's side.
  void respond(uint32_t status, bool end_stream, http::HeaderMap headers = {});
  void respondData(std::string_view body, bool end_stream);
  void respondTrailers(http::HeaderMap trailers);
  /** The peer reset the stream (or the connection went away under it). */
  void resetByPeer(http::StreamResetReason reason);
  /** The stream's send buffer crossed its high (true) or low (false) watermark. */
  void setWriteBufferFull(bool full);

  /** Neither handed out by the pool, failed nor cancelled yet. */
  bool queued() const { return !is_ready_ && !failed_ && !cancelled_; }
  bool isReady() const { return is_ready_; }
  /** The attempt let go of it: cancelled while queued or reset by us once ready. */
  bool abandoned() const { return cancelled_ || local_reset_.has_value(); }
  bool cancelled() const { return cancelled_; }
  std::optional<http::StreamResetReason> localReset() const { return local_reset_; }
  /** The request the attempt sent: headers, body so far, trailers. */
  const std::optional<http::RequestHeaders>& requestHeaders() const { return request_headers_; }
  const std::string& requestBody() const { return request_body_; }
  const std::optional<http::HeaderMap>& requestTrailers() const { return request_trailers_; }
  bool requestComplete() const { return request_complete_; }
  /** readDisable(true) calls minus readDisable(false) calls. */
  int readDisableCount() const { return read_disable_count_; }
  const upstream::Host& host() const { return *host_; }

  // upstream::Cancellable
  void cancel() override { cancelled_ = true; }
  // http::RequestEncoder
  void encodeHeaders(const http::RequestHeaders& headers, bool end_stream) override;
  void encodeData(evbuffer* data, bool end_stream) override;
  void encodeTrailers(const http::HeaderMap& trailers) override;
  http::Stream& stream() override { return *this; }
  // http::Stream
  void setCallbacks(http::StreamCallbacks* callbacks) override { stream_callbacks_ = callbacks; }
  void resetStream(http::StreamResetReason reason) override { local_reset_ = reason; }
  void readDisable(bool disable) override { read_disable_count_ += disable ? 1 : -1; }
  size_t bufferedBytes() const override { return 0; }

private:
  /** Fails the test when the attempt already let go of this stream (a test bug). */
  bool usable(std::string_view what) const;

  const upstream::HostSharedPtr host_;
  http::ResponseDecoder& decoder_;
  upstream::ConnPoolCallbacks& pool_callbacks_;
  http::StreamCallbacks* stream_callbacks_ = nullptr;
  bool is_ready_ = false;
  bool failed_ = false;
  bool cancelled_ = false;
  std::optional<http::StreamResetReason> local_reset_;
  std::optional<http::RequestHeaders> request_headers_;
  std::string request_body_;
  std::optional<http::HeaderMap> request_trailers_;
  bool request_complete_ = false;
  bool response_complete_ = false;
  int read_disable_count_ = 0;
};

/** A pool to one host that records every stream asked of it. Thread: test. */
class FakeStreamPool : public upstream::StreamPool {
public:
  /** What newStream() does before returning. */
  enum class Mode { Queue, ReadyAtOnce, FailAtOnce };

  FakeStreamPool(upstream::HostSharedPtr host, std::function<void(FakePooledStream&)> on_new);

  upstream::Cancellable* newStream(http::ResponseDecoder& decoder,
                                   upstream::ConnPoolCallbacks& callbacks) override;

  Mode mode = Mode::Queue;
  upstream::PoolFailureReason failure = upstream::PoolFailureReason::ConnectFailure;
  std::vector<std::unique_ptr<FakePooledStream>> streams;

private:
  upstream::HostSharedPtr host_;
  std::function<void(FakePooledStream&)> on_new_;
};

/**
 * A worker's view of one upstream with a fixed host list: picks the first host the attempt has
 * not tried yet (the first host when all were tried) and gives each host a FakeStreamPool.
 * Thread: test.
 */
class FakeWorkerUpstream : public upstream::WorkerUpstream {
public:
  explicit FakeWorkerUpstream(std::vector<upstream::HostSharedPtr> hosts);

  upstream::HostSharedPtr pickHost(std::mt19937_64& rng, const upstream::LbContext& ctx) override;
  FakeStreamPool& poolFor(const upstream::HostSharedPtr& host) override;

  FakeStreamPool& pool(size_t host_index) { return poolFor(hosts_.at(host_index)); }
  /** Every pool's mode at once. */
  void setMode(FakeStreamPool::Mode mode);
  /** Every stream asked of any pool, in order: stream(0) is the first attempt's. */
  FakePooledStream& stream(size_t index) const { return *started_.at(index); }
  size_t streamCount() const { return started_.size(); }
  /** When true, pickHost() finds no host. */
  bool no_host = false;

private:
  std::vector<upstream::HostSharedPtr> hosts_;
  std::map<const upstream::Host*, std::unique_ptr<FakeStreamPool>> pools_;
  std::vector<FakePooledStream*> started_;
};

}  // namespace bulwark::mocks
