// Http2Client against FakeUpstream speaking h2c: streams, trailers, gRPC and every fault
// behaviour, observed from a real nghttp2 peer.
#include <gtest/gtest.h>

#include "tests/support/body_pattern.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/http1_client.h"
#include "tests/support/http2_client.h"
#include "tests/support/wait.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

class FakeUpstreamH2Test : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_TRUE(upstream_.ok()) << upstream_.error();
    ASSERT_TRUE(client_.connect()) << client_.lastError();
  }
  FakeUpstream upstream_{Protocol::Http2};
  Http2Client client_{upstream_.port()};
};

// Echo over h2c: pseudo-headers become method/path/authority, headers are lower case.
TEST_F(FakeUpstreamH2Test, EchoesRequest) {
  auto r = client_.request(http2Request("POST", "/p?x=1", {{"X-Tag", "t1"}}, "body!"));
  ASSERT_TRUE(r) << client_.lastError();
  EXPECT_TRUE(r->complete);
  EXPECT_EQ(200, r->status);
  EXPECT_EQ("body!", r->body);
  EXPECT_EQ("POST", r->header("x-echo-method"));
  EXPECT_EQ("HTTP/2", r->header("x-echo-protocol"));
  EXPECT_EQ("t1", r->header("x-seen-x-tag"));
  const ReceivedRequest req = *upstream_.request(0);
  EXPECT_EQ("/p?x=1", req.path);
  EXPECT_EQ("2", req.http_version);
  EXPECT_EQ(upstream_.address(), req.authority);
  EXPECT_EQ(r->stream_id, req.stream_id);
  EXPECT_EQ("x-tag", req.headers.at(0).first);
}

// Trailers travel both ways: request trailers are logged, response trailers are read.
TEST_F(FakeUpstreamH2Test, TrailersBothWays) {
  upstream_.script().otherwise(respondWithTrailers(200, "data", {{"x-sum", "9"}}));
  Http2Request req = http2Request("POST", "/t", {}, "abc");
  req.trailers = {{"x-req-trailer", "yes"}};
  auto r = client_.request(req);
  ASSERT_TRUE(r);
  EXPECT_EQ("data", r->body);
  EXPECT_EQ("9", r->trailer("x-sum"));
  EXPECT_EQ("yes", upstream_.request(0)->trailer("x-req-trailer"));
  EXPECT_EQ("abc", upstream_.request(0)->body);
}

// Trailers with an empty body (HEADERS, then trailing HEADERS, no DATA).
TEST_F(FakeUpstreamH2Test, TrailersWithEmptyBody) {
  upstream_.script().otherwise(respondWithTrailers(200, "", {{"x-only", "1"}}));
  auto r = client_.get("/");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->complete);
  EXPECT_EQ(0u, r->body_bytes);
  EXPECT_EQ("1", r->trailer("x-only"));
}

// 100 concurrent streams share one connection and all complete.
TEST_F(FakeUpstreamH2Test, HundredConcurrentStreamsOnOneConnection) {
  upstream_.script().otherwise(hang());
  std::vector<int32_t> ids;
  for (int i = 0; i < 100; ++i) {
    ids.push_back(client_.submit(http2Get("/s/" + std::to_string(i))));
  }
  ASSERT_TRUE(client_.flush());
  // All 100 are open at the upstream at the same time: truly concurrent.
  ASSERT_TRUE(client_.runUntil([&] { return upstream_.activeStreams() == 100; }));
  upstream_.script().otherwise(respond(200, {}, "ok"));
  upstream_.clearRequests();
  for (int32_t id : ids) {
    ASSERT_TRUE(client_.resetStream(id));
  }
  std::vector<int32_t> second;
  for (int i = 0; i < 100; ++i) {
    second.push_back(client_.submit(http2Get("/r/" + std::to_string(i))));
  }
  ASSERT_TRUE(client_.waitForResponses(second));
  for (int32_t id : second) {
    EXPECT_EQ(200, client_.response(id).status);
    EXPECT_EQ("ok", client_.response(id).body);
  }
  EXPECT_EQ(1u, upstream_.totalConnections());
  EXPECT_TRUE(waitFor([&] { return upstream_.activeStreams() == 0; }));
}

// A delayed response arrives after the delay; others on the same connection are not held up.
TEST_F(FakeUpstreamH2Test, DelayDoesNotBlockOtherStreams) {
  upstream_.script().forPath("/slow", respond(200, {}, "slow").withDelay(1s));
  upstream_.script().otherwise(respond(200, {}, "fast"));
  const auto start = Clock::now();
  const int32_t slow = client_.submit(http2Get("/slow"));
  const int32_t fast = client_.submit(http2Get("/fast"));
  ASSERT_TRUE(client_.waitForResponse(fast));
  // Answered while the slow stream had nothing yet.
  EXPECT_FALSE(client_.response(slow).headers_received);
  EXPECT_FALSE(client_.response(slow).closed);
  ASSERT_TRUE(client_.waitForResponse(slow));
  EXPECT_EQ("slow", client_.response(slow).body);
  EXPECT_GE(Clock::now() - start, 1s);
}

// Reset after headers: the client sees headers, then RST_STREAM with the scripted code.
TEST_F(FakeUpstreamH2Test, ResetAfterHeaders) {
  upstream_.script().otherwise(
      respond(200, {}, "never").withResetAfterHeaders(h2_error::kInternalError));
  auto r = client_.get("/");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->headers_received);
  EXPECT_FALSE(r->complete);
  EXPECT_TRUE(r->reset_by_peer);
  EXPECT_EQ(h2_error::kInternalError, r->error_code);
  EXPECT_EQ(0u, r->body_bytes);
}

// Reset mid-body after exactly N bytes.
TEST_F(FakeUpstreamH2Test, ResetAfterBodyBytes) {
  upstream_.script().otherwise(
      respondGenerated(200, 1 << 20).withResetAfterBodyBytes(5000, h2_error::kCancel));
  auto r = client_.get("/");
  ASSERT_TRUE(r);
  EXPECT_TRUE(r->reset_by_peer);
  EXPECT_EQ(h2_error::kCancel, r->error_code);
  EXPECT_EQ(5000u, r->body_bytes);
  EXPECT_TRUE(r->body_matches_pattern);
}

// Closing the connection mid-body: stream ends without END_STREAM, socket closed.
TEST_F(FakeUpstreamH2Test, CloseMidBody) {
  upstream_.script().otherwise(respondGenerated(200, 1 << 20).withCloseAfterBodyBytes(3000));
  auto r = client_.get("/");
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->complete);
  EXPECT_EQ(3000u, r->body_bytes);
  EXPECT_TRUE(client_.peerClosed());
}

// Refuse answers RST_STREAM(REFUSED_STREAM) before any header.
TEST_F(FakeUpstreamH2Test, RefuseSendsRefusedStream) {
  upstream_.script().otherwise(refuse());
  auto r = client_.get("/");
  ASSERT_TRUE(r);
  EXPECT_FALSE(r->headers_received);
  EXPECT_TRUE(r->reset_by_peer);
  EXPECT_EQ(h2_error::kRefusedStream, r->error_code);
}

// goAway(): GOAWAY excludes the stream, which the client sees as refused; then the
// connection closes.
TEST_F(FakeUpstreamH2Test, GoAwayLeavesStreamUnprocessed) {
  upstream_.script().otherwise(goAway());
  auto r = client_.get("/");
  ASSERT_TRUE(r);
  EXPECT_TRUE(client_.goAwayReceived());
  EXPECT_EQ(0, client_.goAwayLastStreamId());
  EXPECT_FALSE(r->headers_received);
  EXPECT_EQ(h2_error::kRefusedStream, r->error_code);
  EXPECT_TRUE(client_.waitForClose());
}

// withGoAway(): the stream is still answered, then the connection drains and closes.
TEST_F(FakeUpstreamH2Test, GoAwayAfterLastStreamDrains) {
  upstream_.script().otherwise(respond(200, {}, "last").withGoAway());
  auto r = client_.get("/");
  ASSERT_TRUE(r);
  EXPECT_EQ("last", r->body);
  EXPECT_TRUE(client_.goAwayReceived());
  EXPECT_EQ(r->stream_id, client_.goAwayLastStreamId());
  EXPECT_TRUE(client_.waitForClose());
}

// goAwayAll() from the test thread reaches an idle connection.
TEST_F(FakeUpstreamH2Test, GoAwayAllFromTestThread) {
  ASSERT_TRUE(client_.get("/"));
  upstream_.goAwayAll(h2_error::kNoError);
  EXPECT_TRUE(client_.waitForGoAway());
  EXPECT_EQ(1, client_.goAwayLastStreamId());
}

// The client cancelling a hanging stream is visible upstream as a cancel.
TEST_F(FakeUpstreamH2Test, ClientResetIsLoggedAsCancel) {
  upstream_.script().otherwise(hang());
  const int32_t id = client_.submit(http2Get("/hang"));
  ASSERT_TRUE(client_.flush());
  ASSERT_TRUE(upstream_.waitForRequests(1));
  EXPECT_EQ(1u, upstream_.activeStreams());
  ASSERT_TRUE(client_.resetStream(id));
  EXPECT_TRUE(waitFor([&] { return upstream_.request(0)->cancelled_by_peer; }));
  EXPECT_EQ(0u, upstream_.activeStreams());
}

// gRPC OK with a message, and Trailers-Only UNAVAILABLE.
TEST_F(FakeUpstreamH2Test, GrpcUnaryOkAndTrailersOnly) {
  upstream_.script().nthRequest(1, respondGrpc(GrpcStatus::Ok, "ranked"));
  upstream_.script().nthRequest(2, respondGrpc(GrpcStatus::Unavailable, "", "try again 100%"));
  auto ok = client_.grpcUnary("/ranking.v1.Ranker/Rank", "req");
  EXPECT_EQ(GrpcStatus::Ok, ok.grpcStatus());
  EXPECT_EQ("ranked", ok.message());
  EXPECT_FALSE(ok.trailers_only);
  auto unavailable = client_.grpcUnary("/ranking.v1.Ranker/Rank", "req");
  EXPECT_EQ(GrpcStatus::Unavailable, unavailable.grpcStatus());
  EXPECT_TRUE(unavailable.trailers_only);
  EXPECT_EQ("try again 100%", unavailable.grpc_message);
  const ReceivedRequest req = *upstream_.request(0);
  EXPECT_EQ("application/grpc", req.header("content-type"));
  EXPECT_EQ(encodeGrpcMessage("req"), req.body);
}

// 256 MiB downloaded over h2 with flow control, counted not stored.
TEST_F(FakeUpstreamH2Test, LargeDownloadIsCountedNotStored) {
  constexpr uint64_t kSize = uint64_t{256} << 20;
  upstream_.script().otherwise(respondGenerated(200, kSize));
  Http2Request req = http2Get("/big");
  req.discard_body = true;
  auto r = client_.request(req, deadlineIn(20s));
  ASSERT_TRUE(r) << client_.lastError();
  EXPECT_TRUE(r->complete);
  EXPECT_EQ(kSize, r->body_bytes);
  EXPECT_TRUE(r->body.empty());
  EXPECT_TRUE(r->body_matches_pattern);
}

// Zero window: with manual flow control the upstream stalls at the window, then resumes.
TEST(FakeUpstreamH2FlowTest, ManualFlowControlStallsTheUpstream) {
  FakeUpstream upstream(Protocol::Http2);
  upstream.script().otherwise(respondGenerated(200, 200000));
  Http2Client client(upstream.port(), Http2ClientOptions()
                                          .withInitialWindowSize(65535)
                                          .withConnectionWindowSize(65535)
                                          .withManualFlowControl());
  ASSERT_TRUE(client.connect());
  const int32_t id = client.submit(http2Get("/"));
  ASSERT_TRUE(client.runUntil([&] { return client.response(id).body_bytes == 65535; }));
  EXPECT_FALSE(
      client.runUntil([&] { return client.response(id).body_bytes > 65535; }, deadlineIn(50ms)));
  ASSERT_TRUE(client.consume(id, 65535));
  EXPECT_TRUE(client.runUntil([&] { return client.response(id).body_bytes > 65535; }));
}

// Auto mode serves HTTP/1.1 and h2c on the same port by sniffing the preface.
TEST(FakeUpstreamAutoTest, SniffsBothProtocols) {
  FakeUpstream upstream(Protocol::Auto);
  Http1Client h1(upstream.port());
  Http2Client h2(upstream.port());
  auto r1 = h1.get("/one");
  ASSERT_TRUE(r1) << h1.lastError();
  ASSERT_TRUE(h2.connect()) << h2.lastError();
  auto r2 = h2.get("/two");
  ASSERT_TRUE(r2);
  EXPECT_EQ("HTTP/1.1", r1->header("x-echo-protocol"));
  EXPECT_EQ("HTTP/2", r2->header("x-echo-protocol"));
}

}  // namespace
}  // namespace bulwark::testing
