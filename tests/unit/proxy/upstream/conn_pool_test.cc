// ConnPool against a real HTTP/1.1 or h2c FakeUpstream (its own thread): connection reuse,
// maxRequestsPerConnection, the upstream-wide connection and pending limits, HTTP/2
// multiplexing, drain and idle close. The pool runs on the test thread's Dispatcher; every wait
// is bounded and ends on an observable event.

#include "proxy/upstream/conn_pool.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "proxy/event/dispatcher.h"
#include "proxy/upstream/upstream.h"
#include "tests/mocks/dispatcher_loop.h"
#include "tests/mocks/recording_streams.h"
#include "tests/support/fake_upstream.h"

namespace bulwark::upstream {
namespace {

using namespace std::chrono_literals;
using testing::FakeUpstream;
using testing::Protocol;

/** One request through the pool: sends GET `path` once a stream is ready. Thread: test. */
class PoolRequest : public ConnPoolCallbacks {
public:
  explicit PoolRequest(std::string path) : path_(std::move(path)) {}

  void onPoolReady(http::RequestEncoder& encoder, const Host&) override {
    encoder_ = &encoder;
    encoder.stream().setCallbacks(&response);
    http::RequestHeaders headers;
    headers.method = "GET";
    headers.path = path_;
    headers.scheme = "http";
    headers.authority = "svc";
    encoder.encodeHeaders(headers, true);
  }
  void onPoolFailure(PoolFailureReason reason, std::string_view detail) override {
    failure = reason;
    failure_detail = std::string(detail);
  }

  bool started() const { return encoder_ != nullptr; }
  bool finished() const { return response.complete || response.reset || failure; }

  mocks::RecordingResponseDecoder response;
  Cancellable* handle = nullptr;
  std::optional<PoolFailureReason> failure;
  std::string failure_detail;

private:
  std::string path_;
  http::RequestEncoder* encoder_ = nullptr;
};

/**
 * A ConnPool to one FakeUpstream on loopback. Thread: test (the pool's dispatcher); the fake
 * upstream runs on its own thread.
 */
class ConnPoolTest : public ::testing::Test {
protected:
  void startUpstream(Protocol protocol) {
    fake_ = FakeUpstream::start(protocol);
    ASSERT_NE(fake_, nullptr);
    spec_.static_endpoints = {{fake_->address(), 1}};
    settings_.protocol = protocol == Protocol::Http2 ? PoolProtocol::Http2 : PoolProtocol::Http1;
  }
  void makePool() {
    spec_.name = "u";
    upstream_ = std::make_shared<Upstream>(spec_, buildStaticHostSet(spec_));
    pool_ = std::make_unique<ConnPool>(dispatcher_, upstream_->hosts()->hosts.at(0), *upstream_,
                                       settings_);
  }
  ~ConnPoolTest() override {
    pool_.reset();
    mocks::runReady(dispatcher_);
  }

  PoolRequest& request(std::string path = "/") {
    requests_.push_back(std::make_unique<PoolRequest>(std::move(path)));
    PoolRequest& r = *requests_.back();
    r.handle = pool_->newStream(r.response, r);
    return r;
  }
  bool waitFinished(const PoolRequest& r) {
    return mocks::runUntil(dispatcher_, [&] { return r.finished(); });
  }
  /** The connection id the upstream saw for its i-th request (completion order). */
  uint64_t connectionOf(size_t i) { return fake_->request(i).value().connection_id; }

  event::Dispatcher dispatcher_;
  std::unique_ptr<FakeUpstream> fake_;
  config::UpstreamSpec spec_;
  ConnPoolSettings settings_;
  UpstreamSharedPtr upstream_;
  std::unique_ptr<ConnPool> pool_;
  std::vector<std::unique_ptr<PoolRequest>> requests_;
};

TEST_F(ConnPoolTest, Http1ReusesAnIdleKeepAliveConnection) {
  startUpstream(Protocol::Http1);
  makePool();
  auto& first = request("/1");
  ASSERT_TRUE(waitFinished(first));
  ASSERT_TRUE(first.response.complete);
  // The connection becomes reusable once the pool saw the stream close (a posted callback).
  mocks::runReady(dispatcher_);
  auto& second = request("/2");
  ASSERT_TRUE(waitFinished(second));
  ASSERT_TRUE(second.response.complete);
  EXPECT_EQ(fake_->totalConnections(), 1u);
  EXPECT_EQ(connectionOf(0), connectionOf(1));
  EXPECT_EQ(pool_->connectionCount(), 1u);
}

TEST_F(ConnPoolTest, Http1OpensAConnectionPerConcurrentRequest) {
  startUpstream(Protocol::Http1);
  makePool();
  auto& a = request("/a");
  auto& b = request("/b");
  EXPECT_NE(a.handle, nullptr) << "no connection was ready: the request must be queued";
  EXPECT_EQ(pool_->pendingCount(), 2u);
  ASSERT_TRUE(waitFinished(a));
  ASSERT_TRUE(waitFinished(b));
  EXPECT_EQ(fake_->totalConnections(), 2u);
  EXPECT_NE(connectionOf(0), connectionOf(1));
}

TEST_F(ConnPoolTest, MaxRequestsPerConnectionRetiresTheConnection) {
  startUpstream(Protocol::Http1);
  settings_.max_requests_per_connection = 1;
  makePool();
  auto& first = request("/1");
  ASSERT_TRUE(waitFinished(first));
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return pool_->connectionCount() == 0; }))
      << "a spent connection stayed in the pool";
  auto& second = request("/2");
  ASSERT_TRUE(waitFinished(second));
  ASSERT_TRUE(second.response.complete);
  EXPECT_EQ(fake_->totalConnections(), 2u);
  EXPECT_NE(connectionOf(0), connectionOf(1));
}

TEST_F(ConnPoolTest, AtMaxConnectionsRequestsQueueThenOverflow) {
  startUpstream(Protocol::Http1);
  fake_->script().nthRequest(1, testing::respond(200).withDelay(100ms));
  spec_.connection_pool.max_connections = 1;
  spec_.connection_pool.max_pending_requests = 2;
  makePool();
  auto& first = request("/1");
  auto& second = request("/2");  // waits for the one connection
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return first.started(); }));
  auto& third = request("/3");
  auto& fourth = request("/4");  // the pending limit is 2: over it
  EXPECT_EQ(pool_->pendingCount(), 2u);
  ASSERT_TRUE(fourth.failure.has_value());
  EXPECT_EQ(*fourth.failure, PoolFailureReason::Overflow);
  EXPECT_EQ(fourth.failure_detail, "upstream pending requests overflow");

  ASSERT_TRUE(waitFinished(third));
  EXPECT_TRUE(first.response.complete);
  EXPECT_TRUE(second.response.complete);
  EXPECT_TRUE(third.response.complete);
  EXPECT_EQ(fake_->totalConnections(), 1u) << "maxConnections was exceeded";
}

TEST_F(ConnPoolTest, WithoutPendingRoomARequestOverflowsAtOnce) {
  startUpstream(Protocol::Http1);
  spec_.connection_pool.max_pending_requests = 0;
  makePool();
  auto& r = request();
  ASSERT_TRUE(r.failure.has_value());
  EXPECT_EQ(*r.failure, PoolFailureReason::Overflow);
  EXPECT_EQ(r.handle, nullptr);
}

TEST_F(ConnPoolTest, CancelledPendingRequestIsNeverServedAndFreesItsSlot) {
  startUpstream(Protocol::Http1);
  spec_.connection_pool.max_connections = 1;
  spec_.connection_pool.max_pending_requests = 1;
  makePool();
  auto& first = request("/1");
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return first.started(); }));
  auto& cancelled = request("/cancelled");
  ASSERT_NE(cancelled.handle, nullptr);
  cancelled.handle->cancel();
  EXPECT_EQ(pool_->pendingCount(), 0u);
  auto& next = request("/next");  // the cancelled request's pending slot is free again
  EXPECT_FALSE(next.failure.has_value());
  ASSERT_TRUE(waitFinished(next));
  EXPECT_TRUE(next.response.complete);
  EXPECT_FALSE(cancelled.started());
  EXPECT_FALSE(cancelled.failure.has_value());
  EXPECT_EQ(fake_->requestCount(), 2u);
}

TEST_F(ConnPoolTest, Http2MultiplexesConcurrentStreamsOnOneConnection) {
  startUpstream(Protocol::Http2);
  makePool();
  std::vector<PoolRequest*> all;
  for (int i = 0; i < 5; ++i) {
    all.push_back(&request("/" + std::to_string(i)));
  }
  for (auto* r : all) {
    ASSERT_TRUE(waitFinished(*r));
    EXPECT_TRUE(r->response.complete);
  }
  EXPECT_EQ(fake_->totalConnections(), 1u);
  std::set<int32_t> stream_ids;
  for (const auto& received : fake_->requests()) {
    stream_ids.insert(received.stream_id);
    EXPECT_EQ(received.connection_id, connectionOf(0));
  }
  EXPECT_EQ(stream_ids.size(), 5u);
}

TEST_F(ConnPoolTest, Http2OpensAnotherConnectionAtTheStreamLimit) {
  startUpstream(Protocol::Http2);
  fake_->script().otherwise(testing::respond(200).withDelay(50ms));
  settings_.max_concurrent_streams = 2;
  makePool();
  auto& a = request("/a");
  auto& b = request("/b");
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return a.started() && b.started(); }));
  auto& c = request("/c");
  for (auto* r : {&a, &b, &c}) {
    ASSERT_TRUE(waitFinished(*r));
    EXPECT_TRUE(r->response.complete);
  }
  EXPECT_EQ(fake_->totalConnections(), 2u);
}

TEST_F(ConnPoolTest, DrainClosesIdleConnectionsAndBusyOnesOnceIdle) {
  startUpstream(Protocol::Http1);
  // Slow enough to stay in flight through the drain steps below, even on a loaded machine.
  fake_->script().forPath("/slow", testing::respond(200).withDelay(500ms));
  makePool();
  auto& quick = request("/quick");
  auto& slow = request("/slow");
  ASSERT_TRUE(waitFinished(quick));
  mocks::runReady(dispatcher_);
  ASSERT_FALSE(slow.finished());
  pool_->drainConnections();
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return pool_->connectionCount() == 1; }))
      << "the idle connection was not closed";
  EXPECT_FALSE(slow.finished()) << "drain cut a request in flight";
  ASSERT_TRUE(waitFinished(slow));
  EXPECT_TRUE(slow.response.complete);
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return pool_->connectionCount() == 0; }));
  ASSERT_TRUE(testing::waitFor([&] { return fake_->connectionCount() == 0; }, 3s));

  auto& after = request("/after");
  ASSERT_TRUE(after.failure.has_value()) << "a drained pool opened a new connection";
  EXPECT_EQ(*after.failure, PoolFailureReason::Overflow);
}

TEST_F(ConnPoolTest, IdleTimeoutClosesAnIdleConnection) {
  startUpstream(Protocol::Http1);
  settings_.idle_timeout = 20ms;
  makePool();
  auto& r = request();
  ASSERT_TRUE(waitFinished(r));
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return pool_->connectionCount() == 0; }));
  EXPECT_TRUE(testing::waitFor([&] { return fake_->connectionCount() == 0; }, 3s));
}

/** A loopback port nothing listens on (bound, then closed). */
uint16_t closedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

TEST_F(ConnPoolTest, ConnectFailureFailsTheWaitingRequest) {
  spec_.static_endpoints = {{"127.0.0.1:" + std::to_string(closedPort()), 1}};
  makePool();
  auto& r = request();
  ASSERT_NE(r.handle, nullptr);
  ASSERT_TRUE(waitFinished(r));
  ASSERT_TRUE(r.failure.has_value());
  EXPECT_EQ(*r.failure, PoolFailureReason::ConnectFailure);
  EXPECT_EQ(pool_->host().connect_failures_total.load(), 1u);
  EXPECT_EQ(upstream_->connect_failures_total.load(), 1u);
}

}  // namespace
}  // namespace bulwark::upstream
