// Route `timeouts.idle` (Envoy's stream_idle_timeout) through the real binary: a stream on which
// no bytes move either way for `idle` ends — 504 before the response started, a reset after —
// well before `timeouts.request`; a slow but moving response is not cut.

#include <gtest/gtest.h>

#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/http1_client.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

// idle 200ms against a 5s request timeout: whatever ends the stream well before 5s is the idle
// timer.
constexpr char kTimeouts[] = "  timeouts: {request: 5s, idle: 200ms}\n";

class StreamIdleTimeoutTest : public ::testing::Test {
protected:
  void startProxy(const std::string& endpoint) {
    proxy_ = startBulwark(simpleConfig("http1", "http1", {endpoint}, kTimeouts));
    ASSERT_TRUE(proxy_);
  }
  uint16_t port() const { return proxy_->port("public"); }
  double idleTimeouts(const std::string& action) {
    return metricValue(proxy_->adminPort(), "bulwark_stream_idle_timeouts_total",
                       {{"route", "all"}, {"upstream", "backend"}, {"action", action}})
        .value_or(0);
  }
  std::unique_ptr<BulwarkProcess> proxy_;
};

// An upstream that never answers: 504 stream_idle_timeout after ~idle, not after the 5s request
// timeout.
TEST_F(StreamIdleTimeoutTest, NoAnswerIs504AfterIdle) {
  FakeUpstream up(Protocol::Http1);
  up.script().otherwise(hang());
  startProxy(up.address());
  Http1Client client(port());
  const auto start = Clock::now();
  auto r = client.get("/", {}, deadlineIn(4s));
  const auto elapsed = Clock::now() - start;
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(504, r->status);
  EXPECT_EQ("stream_idle_timeout", r->header("x-bulwark-reason").value_or(""));
  EXPECT_GE(elapsed, 190ms);
  EXPECT_LT(elapsed, 3s);  // the 5 s request timeout would be later
  EXPECT_EQ(1, idleTimeouts("504"));
  EXPECT_EQ(1, metricValue(proxy_->adminPort(), "bulwark_local_replies_total",
                           {{"route", "all"}, {"reason", "stream_idle_timeout"}})
                   .value_or(0));
}

// An upstream that sends its headers and then stalls: the response started, so the stream is
// reset (here: the HTTP/1.1 connection closes mid-body) after ~idle.
TEST_F(StreamIdleTimeoutTest, StallAfterHeadersResetsTheStream) {
  FakeUpstream up(Protocol::Http1);
  up.script().otherwise(respond(200, {}, "never sent in time").withBodyDelay(4s));
  startProxy(up.address());
  Http1Client client(port());
  const auto start = Clock::now();
  ASSERT_TRUE(client.sendRequest(http1Get("/")));
  auto r = client.readResponse(deadlineIn(3s));
  const auto elapsed = Clock::now() - start;
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);  // the headers went out before the stall
  EXPECT_FALSE(r->complete) << "the stalled body was delivered: " << r->body;
  EXPECT_TRUE(client.peerClosed() || client.peerReset()) << r->error;
  EXPECT_GE(elapsed, 190ms);
  EXPECT_LT(elapsed, 3s);  // the 5 s request timeout would be later
  EXPECT_TRUE(waitForMetric(
      proxy_->adminPort(), "bulwark_stream_idle_timeouts_total",
      {{"route", "all"}, {"action", "reset"}}, [](double v) { return v == 1; }, deadlineIn(2s)));
  // The reset closed the connection while its stream was finishing: bulwark must still be sound
  // and drain cleanly (this path once freed the stream after its connection manager).
  EXPECT_EQ(0, proxy_->stop(SIGTERM));
}

// A body dripped every 100ms for ~1s in total keeps the 200ms idle timer from firing: the
// timeout is about silence, not duration.
TEST_F(StreamIdleTimeoutTest, MovingResponseIsNotCut) {
  FakeUpstream up(Protocol::Http1);
  up.script().otherwise(respond(200, {}, "0123456789").withDrip(1, 100ms));
  startProxy(up.address());
  Http1Client client(port());
  auto r = client.get("/", {}, deadlineIn(4s));
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);
  EXPECT_EQ("0123456789", r->body);
  EXPECT_EQ(0, idleTimeouts("504") + idleTimeouts("reset"));
}

}  // namespace
}  // namespace bulwark::testing
