// ConnectionManager's stream bookkeeping on a real worker context and a socketpair whose other
// end is the client: streams are created per request and dropped when they finish, their objects
// deleted on a later loop turn (never under the codec's feet), and drain and close end the
// connection at the right moment. Every route holds its requests in a filter until the test
// answers them, so no upstream is involved.

#include "proxy/server/connection_manager.h"

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "common/reload_state.h"
#include "proxy/router/route.h"
#include "proxy/stats/stats.h"
#include "proxy/upstream/upstream.h"
#include "tests/mocks/dispatcher_loop.h"
#include "tests/mocks/socket_pair.h"
#include "tests/support/prometheus_text.h"

namespace bulwark::server {
namespace {

using namespace std::chrono_literals;

/** Requests held by HoldingFilter, answered by the test. Thread: test. */
struct HeldRequests {
  std::vector<http::FilterCallbacks*> held;
  std::vector<http::StreamInfo> completed;
};

/**
 * Holds every request at its headers; the test answers it through its callbacks. A request with
 * a body is held while its body is read (as the idempotency filter does), so the connection
 * keeps reading and sees the client leave. Thread: the manager's worker (the test's).
 */
class HoldingFilter : public http::HttpFilter {
public:
  explicit HoldingFilter(HeldRequests& requests) : requests_(requests) {}
  http::FilterStatus onRequestHeaders(http::RequestHeaders&, bool end_stream) override {
    requests_.held.push_back(callbacks_);
    return end_stream ? http::FilterStatus::StopIteration
                      : http::FilterStatus::StopIterationAndBuffer;
  }
  http::FilterStatus onRequestData(evbuffer*, bool) override {
    return http::FilterStatus::StopIterationAndBuffer;
  }
  void onStreamComplete(const http::StreamInfo& info) override {
    requests_.completed.push_back(info);
  }

private:
  HeldRequests& requests_;
};

/**
 * A ConnectionManager on a socketpair whose peer is the client, with one route through
 * HoldingFilter. Thread: test (the manager's worker dispatcher runs on it).
 */
class ConnectionManagerTest : public ::testing::Test {
protected:
  ConnectionManagerTest() {
    listener_.name = "edge";
    listener_.protocol = config::ListenerProtocol::Http1;
  }
  ~ConnectionManagerTest() override {
    manager_.reset();
    mocks::runReady(dispatcher_);
  }

  /** Builds the snapshot (one route "/held" through HoldingFilter) and the manager. */
  void start() {
    auto snapshot = std::make_shared<ConfigSnapshot>();
    config::UpstreamSpec upstream_spec;
    upstream_spec.name = "u";
    auto upstream = std::make_shared<upstream::Upstream>(
        upstream_spec, upstream::buildStaticHostSet(upstream_spec));
    snapshot->upstreams["u"] = upstream;
    config::RouteSpec route_spec;
    route_spec.name = "held";
    route_spec.upstream = "u";
    route_spec.match.path = {config::PathMatchSpec::Kind::Prefix, "/held"};
    auto route = router::Route::create(route_spec, state_);
    ASSERT_TRUE(route.isOk());
    router::RouteEntry entry;
    entry.route = *route;
    entry.upstream = upstream;
    entry.stats = stats_.routeStats("edge", "held", "u");
    entry.filters.push_back([this] { return std::make_unique<HoldingFilter>(requests_); });
    router::ListenerConfig listener;
    listener.spec = listener_;
    listener.routes.push_back(std::move(entry));
    snapshot->listeners.emplace("edge", std::move(listener));
    ctx_.snapshot = snapshot;
    manager_ = std::make_unique<ConnectionManager>(
        ctx_, pair_.releaseConnection(), "edge", [this](ConnectionManager& closed) {
          EXPECT_EQ(&closed, manager_.get());
          ++close_callbacks_;
          // As the worker does: the manager may be on the stack, so it goes later.
          dispatcher_.deferredDelete(std::move(manager_));
        });
  }

  /** Answers held request `i` locally (429), which completes its stream. */
  void answer(size_t i) {
    requests_.held.at(i)->sendLocalReply(http::LocalReply(http::LocalReplyKind::RateLimited));
  }
  bool waitForHeld(size_t n) {
    return mocks::runUntil(dispatcher_, [&] { return requests_.held.size() >= n; });
  }
  bool waitForOutput(std::string_view text) {
    return mocks::runUntil(dispatcher_,
                           [&] { return pair_.received().find(text) != std::string::npos; });
  }
  size_t responsesReceived() {
    size_t count = 0;
    const std::string& out = pair_.received();
    for (size_t at = out.find("HTTP/1.1 "); at != std::string::npos;
         at = out.find("HTTP/1.1 ", at + 1)) {
      ++count;
    }
    return count;
  }
  double metric(std::string_view name, const testing::Labels& labels) {
    auto text = testing::PrometheusText::parse(stats_.serialize());
    return text ? text->sum(name, labels) : -1;
  }

  event::Dispatcher dispatcher_;
  stats::Stats stats_{{0.1, 1}};
  WorkerContext ctx_{dispatcher_, stats_, 0};
  ReloadableState state_;
  config::ListenerSpec listener_;
  mocks::SocketPair pair_{dispatcher_};
  HeldRequests requests_;
  std::unique_ptr<ConnectionManager> manager_;
  int close_callbacks_ = 0;
};

TEST_F(ConnectionManagerTest, AStreamLivesFromItsRequestToItsResponseAndIsDeletedLater) {
  start();
  pair_.peerWrite("GET /held/1 HTTP/1.1\r\nHost: svc\r\n\r\n");
  ASSERT_TRUE(waitForHeld(1));
  EXPECT_EQ(manager_->activeStreams(), 1u);
  EXPECT_EQ(ctx_.active_streams, 1u);

  answer(0);
  EXPECT_EQ(manager_->activeStreams(), 0u) << "a finished stream is still counted as active";
  EXPECT_EQ(ctx_.active_streams, 1u) << "the stream object was deleted inside its own callback";
  mocks::runReady(dispatcher_);
  EXPECT_EQ(ctx_.active_streams, 0u) << "the finished stream was never deleted";
  ASSERT_EQ(requests_.completed.size(), 1u);
  EXPECT_EQ(requests_.completed[0].status, 429u);
  ASSERT_TRUE(waitForOutput("HTTP/1.1 429 "));
  EXPECT_EQ(close_callbacks_, 0) << "a keep-alive connection closed after its response";
}

TEST_F(ConnectionManagerTest, KeepAliveRequestsGetAStreamEach) {
  start();
  pair_.peerWrite("GET /held/1 HTTP/1.1\r\nHost: svc\r\n\r\n");
  ASSERT_TRUE(waitForHeld(1));
  answer(0);
  ASSERT_TRUE(waitForOutput("HTTP/1.1 429 "));
  pair_.peerWrite("GET /held/2 HTTP/1.1\r\nHost: svc\r\n\r\n");
  ASSERT_TRUE(waitForHeld(2));
  EXPECT_EQ(manager_->activeStreams(), 1u);
  answer(1);
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return responsesReceived() == 2; }));
  EXPECT_EQ(requests_.completed.size(), 2u);
  EXPECT_EQ(metric("bulwark_downstream_connections_total", {{"listener", "edge"}}), 1);
}

TEST_F(ConnectionManagerTest, PipelinedRequestsWaitForTheStreamBeforeThem) {
  start();
  pair_.peerWrite(
      "GET /held/1 HTTP/1.1\r\nHost: svc\r\n\r\nGET /held/2 HTTP/1.1\r\nHost: svc\r\n\r\n");
  ASSERT_TRUE(waitForHeld(1));
  mocks::runReady(dispatcher_);
  EXPECT_EQ(requests_.held.size(), 1u) << "the second request started before the first ended";
  EXPECT_EQ(manager_->activeStreams(), 1u);
  answer(0);
  ASSERT_TRUE(waitForHeld(2));
  answer(1);
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return responsesReceived() == 2; }));
}

TEST_F(ConnectionManagerTest, UnmatchedRequestIsAnsweredAndItsStreamFinished) {
  start();
  pair_.peerWrite("GET /nowhere HTTP/1.1\r\nHost: svc\r\n\r\n");
  ASSERT_TRUE(waitForOutput("HTTP/1.1 404 "));
  EXPECT_EQ(manager_->activeStreams(), 0u);
  mocks::runReady(dispatcher_);
  EXPECT_EQ(ctx_.active_streams, 0u);
}

TEST_F(ConnectionManagerTest, BetweenRequestsAConnectionHoldsNoCodecNorBuffer) {
  listener_.limits.header_read_timeout = 30ms;  // shorter than the idle timeout
  start();
  pair_.peerWrite("GET /held/1 HTTP/1.1\r\nHost: svc\r\n\r\n");
  ASSERT_TRUE(waitForHeld(1));
  EXPECT_TRUE(manager_->holdsCodec());
  answer(0);
  ASSERT_TRUE(waitForOutput("HTTP/1.1 429 "));
  mocks::runReady(dispatcher_);
  EXPECT_FALSE(manager_->holdsCodec()) << "an idle keep-alive connection kept its codec";
  EXPECT_FALSE(manager_->connection().holdsBuffers());

  // Idle between requests is not a slow request: the header-read deadline must not apply.
  bool waited = false;
  auto timer = dispatcher_.createTimer([&] { waited = true; });
  timer->enableTimer(100ms);
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return waited || pair_.peerSawClose(); }));
  EXPECT_FALSE(pair_.peerSawClose()) << "the header-read timeout closed an idle connection";

  // The next request gets a new codec; an HTTP/2 preface on it is not a protocol switch.
  pair_.peerWrite("GET /held/2 HTTP/1.1\r\nHost: svc\r\n\r\n");
  ASSERT_TRUE(waitForHeld(2));
  answer(1);
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return responsesReceived() == 2; }));
  mocks::runReady(dispatcher_);
  EXPECT_FALSE(manager_->holdsCodec());
  EXPECT_EQ(close_callbacks_, 0);
}

TEST_F(ConnectionManagerTest, APipelinedRequestKeepsTheCodec) {
  start();
  pair_.peerWrite(
      "GET /held/1 HTTP/1.1\r\nHost: svc\r\n\r\nGET /held/2 HTTP/1.1\r\nHost: svc\r\n\r\n");
  ASSERT_TRUE(waitForHeld(1));
  answer(0);
  ASSERT_TRUE(waitForHeld(2));
  EXPECT_TRUE(manager_->holdsCodec());
  answer(1);
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return responsesReceived() == 2; }));
  mocks::runReady(dispatcher_);
  EXPECT_FALSE(manager_->holdsCodec());
}

TEST_F(ConnectionManagerTest, DrainClosesAnIdleConnectionAtOnce) {
  start();
  pair_.peerWrite("GET /held/1 HTTP/1.1\r\nHost: svc\r\n\r\n");
  ASSERT_TRUE(waitForHeld(1));
  answer(0);
  ASSERT_TRUE(waitForOutput("HTTP/1.1 429 "));
  manager_->shutdownNotice();
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return pair_.peerSawClose(); }));
  EXPECT_EQ(close_callbacks_, 1);
}

TEST_F(ConnectionManagerTest, DrainServesTheFirstRequestOfAConnectionThatHasNotSpokenYet) {
  // Accepted just before (or while) the worker drains: the client is about to send its request.
  start();
  manager_->shutdownNotice();
  mocks::runReady(dispatcher_);
  EXPECT_FALSE(pair_.peerSawClose()) << "a new connection was closed before its request came";
  pair_.peerWrite("GET /held/1 HTTP/1.1\r\nHost: svc\r\n\r\n");
  ASSERT_TRUE(waitForHeld(1));
  answer(0);
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return pair_.peerSawClose(); }));
  EXPECT_NE(pair_.received().find("HTTP/1.1 429 "), std::string::npos);
  EXPECT_NE(pair_.received().find("connection: close\r\n"), std::string::npos);
  EXPECT_EQ(close_callbacks_, 1);
}

TEST_F(ConnectionManagerTest, DrainWaitsForTheStreamInFlightAndTellsTheClient) {
  start();
  pair_.peerWrite("GET /held/1 HTTP/1.1\r\nHost: svc\r\n\r\n");
  ASSERT_TRUE(waitForHeld(1));
  manager_->shutdownNotice();
  mocks::runReady(dispatcher_);
  EXPECT_FALSE(pair_.peerSawClose()) << "drain cut the request in flight";
  EXPECT_EQ(close_callbacks_, 0);
  answer(0);
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return pair_.peerSawClose(); }));
  EXPECT_NE(pair_.received().find("connection: close\r\n"), std::string::npos);
  EXPECT_NE(pair_.received().find("HTTP/1.1 429 "), std::string::npos);
  EXPECT_EQ(close_callbacks_, 1);
}

TEST_F(ConnectionManagerTest, ClientGoneMidRequestEndsItsStreamAndTheConnection) {
  start();
  pair_.peerWrite("POST /held/1 HTTP/1.1\r\nHost: svc\r\nContent-Length: 10\r\n\r\nabc");
  ASSERT_TRUE(waitForHeld(1));
  pair_.closePeer();
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return close_callbacks_ == 1; }));
  ASSERT_EQ(requests_.completed.size(), 1u);
  EXPECT_EQ(requests_.completed[0].status, 0u) << "a reset stream reported a response";
  mocks::runReady(dispatcher_);
  EXPECT_EQ(manager_, nullptr);
  EXPECT_EQ(ctx_.active_streams, 0u) << "the stream outlived its connection";
  EXPECT_EQ(metric("bulwark_downstream_connections_active", {{"listener", "edge"}}), 0);
}

TEST_F(ConnectionManagerTest, IdleConnectionClosesAfterTheIdleTimeout) {
  listener_.limits.idle_timeout = 20ms;
  start();
  pair_.peerWrite("GET /held/1 HTTP/1.1\r\nHost: svc\r\n\r\n");
  ASSERT_TRUE(waitForHeld(1));
  answer(0);
  ASSERT_TRUE(waitForOutput("HTTP/1.1 429 "));
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return pair_.peerSawClose(); }));
  EXPECT_EQ(close_callbacks_, 1);
}

TEST_F(ConnectionManagerTest, AnOpenStreamIsNotIdle) {
  listener_.limits.idle_timeout = 20ms;
  listener_.limits.header_read_timeout = 5000ms;
  start();
  pair_.peerWrite("GET /held/1 HTTP/1.1\r\nHost: svc\r\n\r\n");
  ASSERT_TRUE(waitForHeld(1));
  // Three idle timeouts' worth of loop time, bounded by a timer of the test's own.
  bool waited = false;
  auto timer = dispatcher_.createTimer([&] { waited = true; });
  timer->enableTimer(60ms);
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return waited || pair_.peerSawClose(); }));
  EXPECT_FALSE(pair_.peerSawClose()) << "the idle timeout closed a connection with a stream";
  answer(0);
  ASSERT_TRUE(waitForOutput("HTTP/1.1 429 "));
}

TEST_F(ConnectionManagerTest, SlowHeadersAreCutAtTheHeaderReadTimeout) {
  listener_.limits.header_read_timeout = 30ms;
  start();
  pair_.peerWrite("GET /held/1 HTTP/1.1\r\nHost: s");
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return pair_.peerSawClose(); }));
  EXPECT_TRUE(requests_.held.empty());
  EXPECT_EQ(metric("bulwark_downstream_protocol_errors_total", {{"reason", "header_read_timeout"}}),
            1);
}

}  // namespace
}  // namespace bulwark::server
