// Retries, backoff, pushback, deadlines and hedging through the real bulwark binary: the router
// owns attempts; upstreams are scripted fakes on loopback.

#include <atomic>
#include <cstdio>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/http1_client.h"
#include "tests/support/http2_client.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

class RetryTest : public ::testing::Test {
protected:
  void startProxy(const std::string& listener_protocol, const std::string& upstream_protocol,
                  const std::vector<std::string>& endpoints, const std::string& route_extra) {
    proxy_ =
        startBulwark(simpleConfig(listener_protocol, upstream_protocol, endpoints, route_extra));
    ASSERT_TRUE(proxy_);
  }
  uint16_t port() const { return proxy_->port("public"); }
  double metric(const std::string& name, const std::map<std::string, std::string>& labels) {
    return metricValue(proxy_->adminPort(), name, labels).value_or(0);
  }
  std::unique_ptr<BulwarkProcess> proxy_;
};

// Proves a 503 then 200 reaches the client as 200 after two attempts on different hosts.
TEST_F(RetryTest, Retries503OnAnotherHost) {
  auto hosts = FakeUpstreamGroup::start(2, Protocol::Http1);
  hosts.script().nthRequest(1, respond(503, {}, "busy")).otherwise(respond(200, {}, "ok"));
  startProxy("http1", "http1", hosts.addresses(),
             "  retries: {attempts: 2, retryOn: [5xx], backoff: {baseInterval: 5ms, maxInterval: "
             "20ms}}\n");
  Http1Client client(port());
  auto r = client.get("/");
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);
  EXPECT_EQ("ok", r->body);
  auto seen = hosts.requests();
  ASSERT_EQ(2u, seen.size());
  EXPECT_NE(seen[0].upstream, seen[1].upstream);  // the retry avoided the host that failed
  EXPECT_EQ("1", seen[0].header("x-bulwark-attempt").value_or(""));
  EXPECT_EQ("2", seen[1].header("x-bulwark-attempt").value_or(""));
  // The retry carries the same headers as the first attempt, its attempt number aside: one of
  // each, in the same order.
  auto without_attempt = [](Headers headers) {
    std::erase_if(headers, [](const auto& h) { return h.first == "x-bulwark-attempt"; });
    return headers;
  };
  EXPECT_EQ(without_attempt(seen[0].headers), without_attempt(seen[1].headers));
  EXPECT_EQ(1, metric("bulwark_retries_total", {{"route", "all"}, {"reason", "gateway-error"}}));
}

// Proves attempts are bounded: a permanently failing upstream answers the last 503 as is.
TEST_F(RetryTest, AttemptsExhaustedReturnsUpstreamAnswer) {
  FakeUpstream up(Protocol::Http1);
  up.script().otherwise(respond(503, {}, "down"));
  startProxy(
      "http1", "http1", {up.address()},
      "  retries: {attempts: 3, retryOn: [5xx], backoff: {baseInterval: 1ms, maxInterval: 5ms}}\n");
  Http1Client client(port());
  auto r = client.get("/");
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(503, r->status);
  EXPECT_EQ("down", r->body);
  EXPECT_EQ(3u, up.requestCount());
  EXPECT_EQ(1, metric("bulwark_retry_limit_exceeded_total", {{"route", "all"}}));
}

// Proves a trailers-only gRPC UNAVAILABLE is retried and OK reaches the client.
TEST_F(RetryTest, GrpcUnavailableRetried) {
  auto hosts = FakeUpstreamGroup::start(2, Protocol::Http2);
  hosts.script()
      .nthRequest(1, respondGrpc(GrpcStatus::Unavailable))
      .otherwise(respondGrpc(GrpcStatus::Ok, "ranked"));
  startProxy("h2c", "grpc", hosts.addresses(),
             "  retries: {attempts: 2, retryOn: [unavailable], backoff: {baseInterval: 5ms, "
             "maxInterval: 10ms}}\n");
  Http2Client client(port());
  ASSERT_TRUE(client.connect()) << client.lastError();
  auto rpc = client.grpcUnary("/ranking.v1.RankingService/Rank", "req", deadlineIn(3s));
  EXPECT_EQ(GrpcStatus::Ok, rpc.grpcStatus());
  EXPECT_EQ("ranked", rpc.message());
  auto seen = hosts.requests();
  ASSERT_EQ(2u, seen.size());
  EXPECT_EQ("1", seen[1].header("grpc-previous-rpc-attempts").value_or(""));
}

// Proves a gRPC call answered normally (HEADERS, message, grpc-status in the trailers) is not
// re-sent on a route that may re-send sent calls: its response headers carry no grpc-status yet
// and are not a protocol error. The first call's trailers-only UNAVAILABLE shows that retries are
// live on this route.
TEST_F(RetryTest, GrpcOkNotRetriedWithNonIdempotentAlways) {
  auto hosts = FakeUpstreamGroup::start(2, Protocol::Http2);
  hosts.script()
      .nthRequest(1, respondGrpc(GrpcStatus::Unavailable))
      .otherwise(respondGrpc(GrpcStatus::Ok, "ranked"));
  startProxy(
      "h2c", "grpc", hosts.addresses(),
      "  retries: {attempts: 2, perTryTimeout: 1s, retryOn: [unavailable, reset, "
      "connect-failure],\n"
      "            nonIdempotent: always, backoff: {baseInterval: 1ms, maxInterval: 5ms}}\n");
  Http2Client client(port());
  ASSERT_TRUE(client.connect()) << client.lastError();
  constexpr int kCalls = 6;
  for (int i = 0; i < kCalls; ++i) {
    auto rpc = client.grpcUnary("/ranking.v1.RankingService/Rank", "req", deadlineIn(3s));
    EXPECT_EQ(GrpcStatus::Ok, rpc.grpcStatus()) << "call " << i;
    EXPECT_EQ("ranked", rpc.message()) << "call " << i;
  }
  EXPECT_EQ(kCalls + 1u, hosts.requests().size());  // one retry: the UNAVAILABLE, nothing else
  EXPECT_EQ(1, metric("bulwark_retries_total", {{"route", "all"}, {"reason", "unavailable"}}));
  EXPECT_EQ(0, metric("bulwark_retries_total", {{"route", "all"}, {"reason", "protocol-error"}}));
  EXPECT_EQ(1, metric("bulwark_upstream_attempts_total", {{"route", "all"}, {"kind", "retry"}}));
}

// Proves a POST that reached the host is not retried without an Idempotency-Key...
TEST_F(RetryTest, PostWithoutKeyNotRetriedAfterReachingHost) {
  FakeUpstream up(Protocol::Http1);
  up.script().nthRequest(1, closeBeforeHeaders()).otherwise(respond(201, {}, "created"));
  startProxy("http1", "http1", {up.address()},
             "  retries: {attempts: 3, retryOn: [reset, 5xx], nonIdempotent: withIdempotencyKey,\n"
             "            backoff: {baseInterval: 1ms, maxInterval: 5ms}}\n");
  Http1Client client(port());
  auto r = client.request(http1Request("POST", "/v1/tasks", {}, "{}"));
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(502, r->status);
  EXPECT_EQ(1u, up.requestCount());
}

// ...and is retried when it carries one (nonIdempotent: withIdempotencyKey).
TEST_F(RetryTest, PostWithKeyRetried) {
  FakeUpstream up(Protocol::Http1);
  up.script().nthRequest(1, closeBeforeHeaders()).otherwise(respond(201, {}, "created"));
  startProxy("http1", "http1", {up.address()},
             "  retries: {attempts: 3, retryOn: [reset, 5xx], nonIdempotent: withIdempotencyKey,\n"
             "            backoff: {baseInterval: 1ms, maxInterval: 5ms}}\n");
  Http1Client client(port());
  auto r =
      client.request(http1Request("POST", "/v1/tasks", {{"Idempotency-Key", "k-1"}}, "{\"a\":1}"));
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(201, r->status);
  ASSERT_EQ(2u, up.requestCount());
  EXPECT_EQ("{\"a\":1}", up.request(1)->body);  // the body was replayed
}

// Proves a non-idempotent request is retried when it provably never reached a host.
TEST_F(RetryTest, PostRetriedOnConnectFailure) {
  RefusingPort dead;
  FakeUpstream up(Protocol::Http1);
  std::string dead_address = dead.address();
  std::string yaml = simpleConfig("http1", "http1", {dead_address, up.address()},
                                  "  retries: {attempts: 2, retryOn: [connect-failure],"
                                  " backoff: {baseInterval: 1ms, maxInterval: 2ms}}\n");
  // Round robin per worker starts at the first host; one of two requests hits the dead host first.
  proxy_ = startBulwark(yaml);
  ASSERT_TRUE(proxy_);
  Http1Client client(port());
  for (int i = 0; i < 4; ++i) {
    auto r = client.request(http1Request("POST", "/p", {}, "x"));
    ASSERT_TRUE(r) << client.lastError();
    EXPECT_EQ(200, r->status);
  }
  EXPECT_EQ(4u, up.requestCount());
}

// Proves Retry-After: 1 delays the retry by at least a second.
TEST_F(RetryTest, RetryAfterHonored) {
  FakeUpstream up(Protocol::Http1);
  up.script()
      .nthRequest(1, respond(503, {{"retry-after", "1"}}, "later"))
      .otherwise(respond(200, {}, "ok"));
  startProxy(
      "http1", "http1", {up.address()},
      "  timeouts: {request: 5s}\n"
      "  retries: {attempts: 2, retryOn: [5xx], respectRetryAfter: true, maxRetryAfter: 2s}\n");
  Http1Client client(port());
  auto start = Clock::now();
  auto r = client.get("/", {}, deadlineIn(5s));
  auto elapsed = Clock::now() - start;
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);
  EXPECT_GE(elapsed, 1s);
  EXPECT_EQ(1, metric("bulwark_retry_pushback_honored_total", {{"route", "all"}}));
}

// Proves a Retry-After beyond maxRetryAfter stops retrying and returns the upstream answer now.
TEST_F(RetryTest, LongRetryAfterNotWaited) {
  FakeUpstream up(Protocol::Http1);
  up.script().otherwise(respond(503, {{"retry-after", "30"}}, "come back later"));
  startProxy(
      "http1", "http1", {up.address()},
      "  retries: {attempts: 3, retryOn: [5xx], respectRetryAfter: true, maxRetryAfter: 2s}\n");
  Http1Client client(port());
  auto start = Clock::now();
  auto r = client.get("/");
  auto elapsed = Clock::now() - start;
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(503, r->status);
  EXPECT_EQ("30", r->header("retry-after").value_or(""));
  // Not retried at all (one request upstream), and not even held for maxRetryAfter.
  EXPECT_EQ(1u, up.requestCount());
  EXPECT_LT(elapsed, 2s);
}

// Proves a per-try timeout moves on to another host before the request deadline: the first
// host never answers, so without the per-try timeout the client would get the 504 of the 5 s
// request timeout.
TEST_F(RetryTest, PerTryTimeoutRetriesElsewhere) {
  auto hosts = FakeUpstreamGroup::start(2, Protocol::Http1);
  hosts.script().nthRequest(1, hang()).otherwise(respond(200, {}, "ok"));
  startProxy("http1", "http1", hosts.addresses(),
             "  timeouts: {request: 5s}\n"
             "  retries: {attempts: 2, perTryTimeout: 100ms, retryOn: [gateway-error, reset],"
             " backoff: {baseInterval: 1ms, maxInterval: 2ms}}\n");
  Http1Client client(port());
  auto start = Clock::now();
  auto r = client.get("/", {}, deadlineIn(10s));
  auto elapsed = Clock::now() - start;
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);
  EXPECT_LT(elapsed, 5s);
  ASSERT_EQ(2u, hosts.requestCount());
  auto seen = hosts.requests();
  EXPECT_NE(seen[0].upstream, seen[1].upstream);
  // The retry left after the per-try timeout, not before it.
  EXPECT_GE(seen[1].arrival_time - seen[0].arrival_time, 90ms);
  EXPECT_TRUE(waitFor([&] { return hosts.requests()[0].cancelled_by_peer; }, deadlineIn(2s)))
      << "the timed-out attempt was not cancelled at its host";
}

// Proves the gRPC deadline is propagated (rewritten smaller) and enforced with DEADLINE_EXCEEDED.
TEST_F(RetryTest, GrpcDeadlinePropagatedAndEnforced) {
  FakeUpstream up(Protocol::Http2);
  up.script().otherwise(hang());
  startProxy("h2c", "grpc", {up.address()},
             "  timeouts: {request: 5s, grpc: {honorDeadline: true, deadlineOffset: 10ms}}\n");
  Http2Client client(port());
  ASSERT_TRUE(client.connect()) << client.lastError();
  auto start = Clock::now();
  auto rpc = client.grpcUnary("/ranking.v1.RankingService/Rank", "req", deadlineIn(3s), {}, 200ms);
  auto elapsed = Clock::now() - start;
  EXPECT_EQ(GrpcStatus::DeadlineExceeded, rpc.grpcStatus());
  // The call's 190 ms (200 ms less the offset) ended it, not the route's 5 s.
  EXPECT_GE(elapsed, 180ms);
  EXPECT_LT(elapsed, 2s);
  ASSERT_TRUE(up.waitForRequests(1, deadlineIn(1s)));
  auto timeout = up.request(0)->header("grpc-timeout").value_or("");
  ASSERT_FALSE(timeout.empty());
  EXPECT_EQ('u', timeout.back());
  EXPECT_LE(std::stoll(timeout.substr(0, timeout.size() - 1)), 190000);
  EXPECT_EQ(1, metric("bulwark_deadline_exceeded_total", {{"route", "all"}}));
}

// Proves a hedged GET against one slow host returns at the fast host's latency.
TEST_F(RetryTest, HedgedRequestWinsOnFastHost) {
  auto hosts = FakeUpstreamGroup::start(2, Protocol::Http1);
  hosts.script()
      .nthRequest(1, respond(200, {}, "slow").withDelay(4s))
      .otherwise(respond(200, {}, "fast"));
  startProxy("http1", "http1", hosts.addresses(),
             "  timeouts: {request: 6s}\n"
             "  retries: {attempts: 1}\n"
             "  hedging: {delay: 50ms, maxRequests: 2}\n");
  Http1Client client(port());
  auto start = Clock::now();
  auto r = client.get("/");
  auto elapsed = Clock::now() - start;
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ("fast", r->body);
  // Answered by the hedge, long before the slow host's 4 s.
  EXPECT_LT(elapsed, 3s);
  EXPECT_EQ(1, metric("bulwark_hedges_total", {{"route", "all"}, {"result", "won"}}));
  // The losing attempt was cancelled at its host.
  EXPECT_TRUE(waitFor(
      [&] {
        for (const auto& req : hosts.requests()) {
          if (req.cancelled_by_peer)
            return true;
        }
        return false;
      },
      deadlineIn(2s)));
}

// Proves hedging delay: auto. One host of twenty (weighted round robin) answers after 2 s. A cold
// route is not hedged on a guess; once 20 attempts are known, a request stuck on the slow host is
// hedged after the recent p95 (the fast host's ~1 ms, so minDelay) and answered by the fast host,
// while requests on the fast host are never hedged: extra attempts stay at the slow host's share.
TEST_F(RetryTest, AutoHedgeDelayFollowsTheRecentLatencyOfTheRoute) {
  FakeUpstream fast(Protocol::Http1);
  fast.script().otherwise(respond(200, {}, "fast"));
  FakeUpstream slow(Protocol::Http1);
  slow.script().otherwise(respond(200, {}, "slow").withDelay(2s));
  proxy_ = startBulwark(ConfigBuilder()
                            .listener("http1")
                            .weightedUpstream("http1", {{fast.address(), 19}, {slow.address(), 1}})
                            .route("  timeouts: {request: 5s}\n"
                                   "  hedging: {delay: auto, minDelay: 30ms, maxRequests: 2}\n")
                            .yaml());
  ASSERT_TRUE(proxy_);
  Http1Client client(port());
  constexpr int kRequests = 200;
  int slow_answers = 0;
  Clock::duration worst_warm{0};
  for (int i = 0; i < kRequests; ++i) {
    const auto start = Clock::now();
    auto r = client.get("/", {}, deadlineIn(5s));
    ASSERT_TRUE(r) << client.lastError();
    ASSERT_EQ(200, r->status);
    if (r->body == "slow") {
      ++slow_answers;
    }
    if (i >= 40) {
      worst_warm = std::max(worst_warm, Clock::now() - start);
    }
  }
  // Only the cold start waited for the slow host (at most its one pick among the first 20).
  EXPECT_LE(slow_answers, 1);
  EXPECT_LT(worst_warm, 1s) << "a warm request waited for the slow host";
  const double started = metric("bulwark_hedges_total", {{"route", "all"}, {"result", "started"}});
  const double won = metric("bulwark_hedges_total", {{"route", "all"}, {"result", "won"}});
  EXPECT_GE(won, 8);
  EXPECT_LE(started, kRequests / 20 + 2) << "fast requests were hedged too";
}

// Proves retryBufferLimit: a request body larger than the limit is not kept, so its failed
// attempt is not retried; a body within it is retried and replayed whole.
TEST_F(RetryTest, BodyOverRetryBufferLimitIsNotRetried) {
  auto hosts = FakeUpstreamGroup::start(2, Protocol::Http1);
  hosts.setHandler([](const ReceivedRequest& r) {
    return r.header("x-bulwark-attempt").value_or("1") == "1" ? respond(503, {}, "")
                                                              : respond(200, {}, "retried");
  });
  startProxy("http1", "http1", hosts.addresses(),
             "  retries: {attempts: 2, retryOn: [5xx], retryBufferLimit: 1Ki,"
             " backoff: {baseInterval: 1ms, maxInterval: 2ms}}\n");
  Http1Client client(port());
  auto large = client.request(http1Request("PUT", "/large", {}, std::string(4096, 'L')));
  ASSERT_TRUE(large) << client.lastError();
  EXPECT_EQ(503, large->status);
  EXPECT_EQ(1u, hosts.requestCount());
  const std::string small_body(512, 's');
  auto small = client.request(http1Request("PUT", "/small", {}, small_body));
  ASSERT_TRUE(small) << client.lastError();
  EXPECT_EQ(200, small->status);
  ASSERT_EQ(3u, hosts.requestCount());
  auto seen = hosts.requests();
  EXPECT_EQ(small_body, seen[2].body);
  EXPECT_EQ(1, metric("bulwark_retries_total", {{"route", "all"}}));
}

// Proves grpc-retry-pushback-ms is honoured: the retry of a trailers-only UNAVAILABLE that asks
// for 300 ms reaches the next host no sooner, and a negative pushback means no retry at all.
TEST_F(RetryTest, GrpcRetryPushbackHonored) {
  auto hosts = FakeUpstreamGroup::start(2, Protocol::Http2);
  hosts.setHandler([](const ReceivedRequest& r) {
    if (r.header("grpc-previous-rpc-attempts").has_value()) {
      return respondGrpc(GrpcStatus::Ok, "ranked");
    }
    const std::string pushback = r.path.find("Refuse") != std::string::npos ? "-1" : "300";
    return respondGrpc(GrpcStatus::Unavailable).withHeader("grpc-retry-pushback-ms", pushback);
  });
  startProxy("h2c", "grpc", hosts.addresses(),
             "  timeouts: {request: 5s}\n"
             "  retries: {attempts: 2, retryOn: [unavailable], respectRetryAfter: true,"
             " maxRetryAfter: 2s, backoff: {baseInterval: 1ms, maxInterval: 2ms}}\n");
  Http2Client client(port());
  ASSERT_TRUE(client.connect()) << client.lastError();
  auto rpc = client.grpcUnary("/ranking.v1.RankingService/Rank", "req", deadlineIn(3s));
  EXPECT_EQ(GrpcStatus::Ok, rpc.grpcStatus());
  ASSERT_EQ(2u, hosts.requestCount());
  auto seen = hosts.requests();
  EXPECT_GE(seen[1].arrival_time - seen[0].arrival_time, 300ms);
  EXPECT_EQ(1, metric("bulwark_retry_pushback_honored_total", {{"route", "all"}}));

  auto refused = client.grpcUnary("/ranking.v1.RankingService/Refuse", "req", deadlineIn(3s));
  EXPECT_EQ(GrpcStatus::Unavailable, refused.grpcStatus());
  EXPECT_EQ(3u, hosts.requestCount());
}

// The retry budget's bound in short (the long run is tests/fault/retry_budget_test.cc): an
// upstream failing every request with 503 under closed-loop load from eight clients sees at most
// (1 + 20 %) x the client's requests + the 10/s reserve + its burst, however many attempts the
// route allows, while retries do happen and are refused by the budget.
TEST_F(RetryTest, RetryBudgetBoundsTheLoadOnAFailingUpstream) {
  constexpr int kClients = 8;
  constexpr auto kDuration = 3s;
  FakeUpstream up(FakeUpstreamOptions().withProtocol(Protocol::Http1).withStoreBodies(false));
  up.script().otherwise(respond(503, {}, "down"));
  // maxRetries is raised out of the way: the budget alone must hold the bound.
  proxy_ = startBulwark(
      ConfigBuilder()
          .listener("http1")
          .upstream("http1", {up.address()}, "  connectionPool: {http: {maxRetries: 1000}}\n")
          .route("  retries: {attempts: 5, retryOn: [5xx], budget: {percent: 20, "
                 "minRetryConcurrency: 3},\n"
                 "            backoff: {baseInterval: 1ms, maxInterval: 5ms}}\n")
          .yaml());
  ASSERT_TRUE(proxy_);
  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> answered{0};
  const auto start = Clock::now();
  const auto end = start + kDuration;
  std::vector<std::thread> clients;
  for (int t = 0; t < kClients; ++t) {
    clients.emplace_back([&] {
      Http1Client client(port());
      while (Clock::now() < end) {
        sent.fetch_add(1);
        auto r = client.get("/", {}, deadlineIn(2s));
        if (r && r->status == 503) {
          answered.fetch_add(1);
        } else {
          client.close();
        }
      }
    });
  }
  for (auto& c : clients) {
    c.join();
  }
  const double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  const double upstream_seen = static_cast<double>(up.requestCount());
  const double bound = 1.2 * static_cast<double>(sent.load()) + 10.0 * seconds + 3.0;
  std::printf("retry budget: %lu client requests in %.1f s, upstream saw %.0f, bound %.0f\n",
              static_cast<unsigned long>(sent.load()), seconds, upstream_seen, bound);
  EXPECT_EQ(sent.load(), answered.load());
  EXPECT_GT(upstream_seen, static_cast<double>(sent.load())) << "no retry went out at all";
  EXPECT_LE(upstream_seen, bound);
  EXPECT_GT(metric("bulwark_retry_budget_exhausted_total", {{"route", "all"}}), 0);
}

}  // namespace
}  // namespace bulwark::testing
