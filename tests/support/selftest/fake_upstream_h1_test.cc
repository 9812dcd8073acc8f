// Http1Client against FakeUpstream speaking HTTP/1.1: each scripted behaviour observed from a real
// socket peer.
#include <gtest/gtest.h>

#include "tests/support/body_pattern.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/http1_client.h"
#include "tests/support/process.h"
#include "tests/support/wait.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

// Echo mode reflects method, path and request headers, and the log keeps header order.
TEST(FakeUpstreamH1Test, EchoesRequestAndLogsHeadersInOrder) {
  FakeUpstream upstream(Protocol::Http1);
  ASSERT_TRUE(upstream.ok()) << upstream.error();
  Http1Client client(upstream.port());
  auto r = client.request(
      http1Request("POST", "/echo?q=1", {{"X-B", "2"}, {"X-A", "1"}, {"X-A", "3"}}, "hello"));
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);
  EXPECT_EQ("hello", r->body);
  EXPECT_EQ("POST", r->header("x-echo-method"));
  EXPECT_EQ("/echo?q=1", r->header("x-echo-path"));
  EXPECT_EQ("1, 3", r->header("x-seen-x-a"));
  EXPECT_EQ(upstream.address(), r->header("x-upstream"));

  ASSERT_TRUE(upstream.waitForRequests(1));
  const ReceivedRequest req = *upstream.request(0);
  EXPECT_EQ("POST", req.method);
  EXPECT_EQ("/echo?q=1", req.path);
  EXPECT_EQ("1.1", req.http_version);
  EXPECT_EQ("hello", req.body);
  EXPECT_EQ(5u, req.body_bytes);
  EXPECT_TRUE(req.complete);
  ASSERT_GE(req.headers.size(), 4u);
  EXPECT_EQ("Host", req.headers[0].first);  // client adds Host first
  EXPECT_EQ("X-B", req.headers[1].first);
  EXPECT_EQ("X-A", req.headers[2].first);
  EXPECT_EQ("3", req.headers[3].second);
  EXPECT_TRUE(waitFor([&] { return upstream.request(0)->response_finished; }));
}

// Keep-alive: two requests share one connection, indexed 0 and 1 on it.
TEST(FakeUpstreamH1Test, KeepAliveReusesConnection) {
  FakeUpstream upstream(Protocol::Http1);
  upstream.script().otherwise(respond(200, {{"x-k", "v"}}, "ok"));
  Http1Client client(upstream.port());
  ASSERT_TRUE(client.get("/a"));
  auto second = client.get("/b");
  ASSERT_TRUE(second) << client.lastError();
  EXPECT_EQ("ok", second->body);
  EXPECT_EQ("v", second->header("x-k"));
  const auto log = upstream.requests();
  ASSERT_EQ(2u, log.size());
  EXPECT_EQ(log[0].connection_id, log[1].connection_id);
  EXPECT_EQ(0u, log[0].request_index_on_connection);
  EXPECT_EQ(1u, log[1].request_index_on_connection);
  EXPECT_EQ(1u, upstream.totalConnections());
}

// Pipelined requests are answered in order even when the first one is delayed.
TEST(FakeUpstreamH1Test, PipelinedResponsesStayInOrder) {
  FakeUpstream upstream(Protocol::Http1);
  upstream.script().forPath("/slow", respond(200, {}, "slow").withDelay(30ms));
  upstream.script().otherwise(respond(200, {}, "fast"));
  Http1Client client(upstream.port());
  const auto responses = client.pipeline({http1Get("/slow"), http1Get("/fast"), http1Get("/fast")});
  ASSERT_EQ(3u, responses.size()) << client.lastError();
  EXPECT_EQ("slow", responses[0].body);
  EXPECT_EQ("fast", responses[1].body);
  EXPECT_EQ("fast", responses[2].body);
  EXPECT_EQ(1u, upstream.totalConnections());
}

// A delay is a timer: while one response waits, another connection is answered at once.
TEST(FakeUpstreamH1Test, DelayIsATimerNotASleep) {
  FakeUpstream upstream(Protocol::Http1);
  upstream.script().forPath("/slow", respond(200, {}, "slow").withDelay(1s));
  upstream.script().otherwise(respond(200, {}, "fast"));
  Http1Client slow(upstream.port());
  Http1Client fast(upstream.port());
  const auto start = Clock::now();
  ASSERT_TRUE(slow.sendRequest(http1Get("/slow")));
  ASSERT_TRUE(upstream.waitForRequests(1));
  auto f = fast.get("/fast");
  ASSERT_TRUE(f);
  // Answered while the slow response was still held back.
  EXPECT_FALSE(upstream.request(0)->response_finished);
  auto s = slow.readResponse();
  ASSERT_TRUE(s);
  EXPECT_EQ("slow", s->body);
  EXPECT_GE(Clock::now() - start, 1s);
}

// Chunked bodies keep their chunks and carry trailers.
TEST(FakeUpstreamH1Test, ChunkedResponseWithTrailers) {
  FakeUpstream upstream(Protocol::Http1);
  upstream.script().otherwise(respondChunked(200, {"ab", "", "cde"}, {{"x-checksum", "42"}}));
  Http1Client client(upstream.port());
  auto r = client.get("/");
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_TRUE(r->chunked);
  EXPECT_TRUE(r->complete);
  EXPECT_EQ("abcde", r->body);
  EXPECT_EQ("42", r->trailer("x-checksum"));
}

// Chunked uploads with trailers are decoded and the trailers logged.
TEST(FakeUpstreamH1Test, ChunkedUploadWithTrailersIsLogged) {
  FakeUpstream upstream(Protocol::Http1);
  upstream.script().otherwise(respond(204));
  Http1Client client(upstream.port());
  Http1Request req = http1Request("POST", "/up", {}, "0123456789");
  req.chunked = true;
  req.trailers = {{"x-t", "done"}};
  auto r = client.request(req);
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(204, r->status);
  ASSERT_TRUE(upstream.waitForRequests(1));
  EXPECT_EQ("0123456789", upstream.request(0)->body);
  EXPECT_EQ("done", upstream.request(0)->trailer("x-t"));
}

// Closing mid-body leaves a truncated response the client reports as incomplete.
TEST(FakeUpstreamH1Test, CloseMidBodyIsSeenAsTruncation) {
  FakeUpstream upstream(Protocol::Http1);
  upstream.script().otherwise(respondGenerated(200, 1 << 20).withCloseAfterBodyBytes(1000));
  Http1Client client(upstream.port());
  auto r = client.get("/");
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);
  EXPECT_FALSE(r->complete);
  EXPECT_EQ(1000u, r->body_bytes);
  EXPECT_TRUE(r->body_matches_pattern);
  EXPECT_TRUE(client.peerClosed());
  EXPECT_TRUE(waitFor([&] { return upstream.activeStreams() == 0; }));
}

// Reset before headers shows up as a TCP RST and no response at all.
TEST(FakeUpstreamH1Test, ResetBeforeHeadersSendsTcpRst) {
  FakeUpstream upstream(Protocol::Http1);
  upstream.script().otherwise(resetBeforeHeaders());
  Http1Client client(upstream.port());
  EXPECT_FALSE(client.get("/"));
  EXPECT_TRUE(client.peerClosed());
  EXPECT_TRUE(client.peerReset());
}

// Refuse and goAway close an HTTP/1.1 connection without a response (FIN, not RST).
TEST(FakeUpstreamH1Test, RefuseClosesWithoutResponse) {
  FakeUpstream upstream(Protocol::Http1);
  upstream.script().nthRequest(1, refuse()).nthRequest(2, goAway());
  for (int i = 0; i < 2; ++i) {
    Http1Client client(upstream.port());
    EXPECT_FALSE(client.get("/"));
    EXPECT_TRUE(client.peerClosed());
    EXPECT_FALSE(client.peerReset());
  }
  EXPECT_EQ(2u, upstream.requestCount());
}

// A hanging request stays active until the peer gives up, and the log records the cancel.
TEST(FakeUpstreamH1Test, HangUntilPeerCloses) {
  FakeUpstream upstream(Protocol::Http1);
  upstream.script().otherwise(hang());
  Http1Client client(upstream.port());
  ASSERT_TRUE(client.sendRequest(http1Get("/")));
  EXPECT_FALSE(client.readResponse(deadlineIn(50ms)));
  EXPECT_EQ(1u, upstream.activeStreams());
  client.close();
  EXPECT_TRUE(
      waitFor([&] { return upstream.activeStreams() == 0 && upstream.connectionCount() == 0; }));
  EXPECT_TRUE(upstream.request(0)->cancelled_by_peer);
  EXPECT_FALSE(upstream.request(0)->response_finished);
}

// A request cut off mid-body is logged as incomplete with the bytes that did arrive.
TEST(FakeUpstreamH1Test, IncompleteUploadIsLogged) {
  FakeUpstream upstream(Protocol::Http1);
  Http1Client client(upstream.port());
  ASSERT_TRUE(client.sendRaw("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 10\r\n\r\nabc"));
  ASSERT_TRUE(waitFor([&] { return upstream.bodyBytesReceived() == 3; }));
  client.close();
  ASSERT_TRUE(upstream.waitForRequests(1));
  EXPECT_FALSE(upstream.request(0)->complete);
  EXPECT_EQ("abc", upstream.request(0)->body);
}

// Hostile bytes: CL + TE together is rejected by the upstream's strict parser (400 + close).
TEST(FakeUpstreamH1Test, RawSmugglingProbeIsRejected) {
  FakeUpstream upstream(Protocol::Http1);
  Http1Client client(upstream.port());
  ASSERT_TRUE(
      client.sendRaw("POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: "
                     "chunked\r\n\r\n0\r\n\r\n"));
  auto r = client.readResponse();
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(400, r->status);
  EXPECT_TRUE(client.waitForClose());
  EXPECT_EQ(1u, upstream.parseErrors());
  EXPECT_EQ(0u, upstream.requestCount());
}

// Raw responses go out verbatim, so the client's parser sees exactly those bytes.
TEST(FakeUpstreamH1Test, RawResponseIsWrittenVerbatim) {
  FakeUpstream upstream(Protocol::Http1);
  upstream.script().otherwise(respondRaw("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi"));
  Http1Client client(upstream.port());
  ASSERT_TRUE(client.sendRequest(http1Get("/")));
  EXPECT_EQ("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nhi", client.readUntilClose());
}

// Drip: a body sent in pieces with pauses arrives whole and takes at least the pauses.
TEST(FakeUpstreamH1Test, DripSendsBodySlowly) {
  FakeUpstream upstream(Protocol::Http1);
  upstream.script().otherwise(respond(200, {}, "abcdef").withDrip(2, 20ms));
  Http1Client client(upstream.port());
  const auto start = Clock::now();
  auto r = client.get("/");
  ASSERT_TRUE(r);
  EXPECT_EQ("abcdef", r->body);
  EXPECT_GE(Clock::now() - start, 40ms);
}

// Blackhole: the connection is accepted but nothing is ever read or answered.
TEST(FakeUpstreamH1Test, BlackholeAcceptsButNeverAnswers) {
  FakeUpstream upstream(Protocol::Http1);
  upstream.setBlackhole(true);
  Http1Client client(upstream.port());
  ASSERT_TRUE(client.sendRequest(http1Get("/")));
  EXPECT_FALSE(client.readResponse(deadlineIn(50ms)));
  EXPECT_EQ(1u, upstream.totalConnections());
  EXPECT_EQ(0u, upstream.requestCount());
}

// goAwayAll closes idle keep-alive connections.
TEST(FakeUpstreamH1Test, GoAwayAllClosesIdleConnections) {
  FakeUpstream upstream(Protocol::Http1);
  Http1Client client(upstream.port());
  ASSERT_TRUE(client.get("/"));
  upstream.goAwayAll();
  EXPECT_TRUE(client.waitForClose());
  EXPECT_TRUE(waitFor([&] { return upstream.connectionCount() == 0; }));
}

// 1 GiB download streamed from a generated body, counted (and verified) without being stored.
TEST(FakeUpstreamH1Test, OneGibDownloadIsCountedNotStored) {
  constexpr uint64_t kSize = uint64_t{1} << 30;
  FakeUpstream upstream(Protocol::Http1);
  upstream.script().otherwise(respondGenerated(200, kSize));
  const auto rss_before = readRssBytes(getpid());
  Http1Client client(upstream.port());
  Http1ReadOptions discard;
  discard.discard_body = true;
  const auto start = Clock::now();
  auto r = client.request(http1Get("/big"), deadlineIn(20s), discard);
  const auto elapsed = Clock::now() - start;
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_TRUE(r->complete);
  EXPECT_EQ(kSize, r->body_bytes);
  EXPECT_TRUE(r->body.empty());
  EXPECT_TRUE(r->body_matches_pattern);
#if !defined(__SANITIZE_ADDRESS__) && !defined(__SANITIZE_THREAD__)
  EXPECT_LT(elapsed, 5s);  // sanitizer builds are several times slower; only bytes count there
#else
  (void)elapsed;
#endif
  ASSERT_TRUE(rss_before);
  const auto rss_after = readRssBytes(getpid());
  ASSERT_TRUE(rss_after);
  EXPECT_LT(*rss_after, *rss_before + (64u << 20)) << "the body must not be buffered";
}

// Streaming upload of 256 MiB into a sink that counts and verifies without storing.
TEST(FakeUpstreamH1Test, LargeUploadIntoCountingSink) {
  constexpr uint64_t kSize = uint64_t{256} << 20;
  FakeUpstream upstream(FakeUpstreamOptions().withStoreBodies(false));
  upstream.script().otherwise(respond(200));
  Http1Client client(upstream.port());
  Http1Request req = http1Request("PUT", "/upload");
  req.generated_body_bytes = kSize;
  auto r = client.request(req, deadlineIn(20s));
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);
  ASSERT_TRUE(upstream.waitForRequests(1));
  const ReceivedRequest logged = *upstream.request(0);
  EXPECT_EQ(kSize, logged.body_bytes);
  EXPECT_TRUE(logged.body.empty());
  EXPECT_TRUE(logged.body_matches_pattern);
  EXPECT_EQ(kSize, upstream.bodyBytesReceived());
}

// HEAD responses advertise a length but carry no body.
TEST(FakeUpstreamH1Test, HeadHasNoBody) {
  FakeUpstream upstream(Protocol::Http1);
  upstream.script().otherwise(respond(200, {}, "12345"));
  Http1Client client(upstream.port());
  Http1Request head = http1Get("/");
  head.method = "HEAD";
  auto r = client.request(head);
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ("5", r->header("content-length"));
  EXPECT_EQ(0u, r->body_bytes);
  EXPECT_TRUE(client.get("/"));  // the connection is still in sync
}

// A group shares one script: the first request anywhere gets the scripted 503.
TEST(FakeUpstreamGroupTest, SharedScriptAcrossHosts) {
  auto hosts = FakeUpstreamGroup::start(2, Protocol::Http1);
  ASSERT_TRUE(hosts.ok());
  hosts.script().nthRequest(1, respond(503)).otherwise(respond(200));
  Http1Client a(hosts[0].port());
  Http1Client b(hosts[1].port());
  auto first = a.get("/");
  auto second = b.get("/");
  ASSERT_TRUE(first && second);
  EXPECT_EQ(503, first->status);
  EXPECT_EQ(200, second->status);
  const auto log = hosts.requests();
  ASSERT_EQ(2u, log.size());
  EXPECT_EQ(hosts.addresses()[0], log[0].upstream);
  EXPECT_EQ(hosts.addresses()[1], log[1].upstream);
  EXPECT_EQ("upstream-1", log[1].upstream_name);
  EXPECT_EQ((std::vector<size_t>{1, 1}), hosts.requestCountsPerUpstream());
  EXPECT_EQ(1, hosts.indexOf(log[1].upstream));
}

}  // namespace
}  // namespace bulwark::testing
