// Router unit tests: one Router per test, built from a real Route and Upstream (compiled from
// specs, as the config build does), against a FakeRouterContext whose hosts and stream pools the
// test scripts, and FakeRouterCallbacks standing for the client. Timers (backoff, per-try
// timeout, deadline, hedge delay) run on a real Dispatcher with durations of milliseconds; every
// wait is bounded and ends on an observable event.

#include "proxy/router/router.h"

#include <chrono>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "common/reload_state.h"
#include "proxy/http/grpc.h"
#include "proxy/router/route.h"
#include "proxy/stats/stats.h"
#include "proxy/upstream/upstream.h"
#include "tests/mocks/dispatcher_loop.h"
#include "tests/mocks/fake_router.h"
#include "tests/mocks/fake_stream_pool.h"
#include "tests/support/prometheus_text.h"

namespace bulwark::router {
namespace {

config::HedgingSpec fixedHedging(std::chrono::milliseconds delay, uint32_t max_requests) {
  config::HedgingSpec h;
  h.delay = delay;
  h.max_requests = max_requests;
  return h;
}

using namespace std::chrono_literals;
using mocks::FakePooledStream;
using mocks::FakeStreamPool;
using Labels = testing::Labels;

http::HeaderMap headerMap(std::initializer_list<std::pair<std::string, std::string>> entries) {
  http::HeaderMap map;
  for (const auto& [name, value] : entries) {
    map.add(name, value);
  }
  return map;
}

/**
 * Specs a test edits before start(), the compiled route and upstream, and the router under test
 * with its fake worker and client. Thread: test (the fake worker's dispatcher runs on it).
 */
class RouterTest : public ::testing::Test {
protected:
  RouterTest() {
    upstream_spec_.name = "u";
    for (int i = 0; i < 3; ++i) {
      upstream_spec_.static_endpoints.push_back({"127.0.0.1:" + std::to_string(9000 + i), 1});
    }
    route_spec_.name = "r";
    route_spec_.upstream = "u";
    config::TimeoutsSpec timeouts;
    timeouts.request = 0ms;  // no deadline unless a test sets one
    route_spec_.policies.timeouts = timeouts;
  }

  ~RouterTest() override {
    // Attempts retired by the router are deleted by the dispatcher; they reach into the fake
    // pools, so they go before the fixture's members.
    router_.reset();
    other_router_.reset();
    mocks::runReady(dispatcher_);
  }

  /** The route's retries block, created with a 1 ms backoff on first use. */
  config::RetriesSpec& retries() {
    if (!route_spec_.policies.retries) {
      config::RetriesSpec spec;
      spec.backoff.base_interval = 1ms;
      spec.backoff.max_interval = 1ms;
      route_spec_.policies.retries = spec;
    }
    return *route_spec_.policies.retries;
  }
  config::TimeoutsSpec& timeouts() { return *route_spec_.policies.timeouts; }

  /** Compiles the upstream and the route and makes the router; pools answer at once. */
  void start() {
    upstream_ = std::make_shared<upstream::Upstream>(upstream_spec_,
                                                     upstream::buildStaticHostSet(upstream_spec_));
    auto route = Route::create(route_spec_, state_);
    ASSERT_TRUE(route.isOk()) << route.error();
    entry_.route = *route;
    entry_.upstream = upstream_;
    entry_.stats = stats_.routeStats("l", "r", "u");
    router_ = std::make_unique<Router>(ctx_, callbacks_, entry_, "10.0.0.1:40000");
    hosts().setMode(FakeStreamPool::Mode::ReadyAtOnce);
  }

  static http::RequestHeadersPtr request(std::string method, http::HeaderMap headers = {}) {
    auto request = std::make_unique<http::RequestHeaders>();
    request->method = std::move(method);
    request->path = "/items/1";
    request->scheme = "http";
    request->authority = "svc";
    request->headers = std::move(headers);
    return request;
  }
  static http::RequestHeadersPtr grpcCall(std::optional<std::string> grpc_timeout) {
    auto call =
        request("POST", headerMap({{"content-type", "application/grpc"}, {"te", "trailers"}}));
    call->path = "/pkg.Ranking/Rank";
    if (grpc_timeout) {
      call->headers.add("grpc-timeout", *grpc_timeout);
    }
    return call;
  }

  void send(http::RequestHeadersPtr headers, bool end_stream = true) {
    router_->onRequestHeaders(std::move(headers), end_stream);
  }
  void sendBody(std::string_view body, bool end_stream) {
    evbuffer* data = evbuffer_new();
    evbuffer_add(data, body.data(), body.size());
    router_->onRequestData(data, end_stream);
    EXPECT_EQ(evbuffer_get_length(data), 0u) << "the router left request bytes behind";
    evbuffer_free(data);
  }

  mocks::FakeWorkerUpstream& hosts() { return ctx_.upstreamFor(upstream_); }
  FakePooledStream& attempt(size_t index) { return hosts().stream(index); }
  size_t attemptsAsked() { return hosts().streamCount(); }
  upstream::Host& host(size_t index) { return *upstream_->hosts()->hosts.at(index); }

  bool waitForAttempts(size_t count) {
    return mocks::runUntil(dispatcher_, [&] { return attemptsAsked() >= count; });
  }
  bool waitForAnswer() {
    return mocks::runUntil(dispatcher_, [&] { return callbacks_.done(); });
  }
  /** Sum of a metric's samples with these labels, from the route's registry. */
  double metric(std::string_view name, const Labels& labels = {}) {
    auto text = testing::PrometheusText::parse(stats_.serialize());
    EXPECT_TRUE(text.has_value());
    return text ? text->sum(name, labels) : -1;
  }
  static std::string header(const FakePooledStream& stream, std::string_view name) {
    if (!stream.requestHeaders()) {
      return "<no request>";
    }
    auto value = stream.requestHeaders()->headers.get(name);
    return value ? std::string(*value) : "<absent>";
  }

  event::Dispatcher dispatcher_;
  stats::Stats stats_{{0.1, 1}};
  ReloadableState state_;
  config::UpstreamSpec upstream_spec_;
  config::RouteSpec route_spec_;
  upstream::UpstreamSharedPtr upstream_;
  mocks::FakeRouterContext ctx_{dispatcher_};
  mocks::FakeRouterCallbacks callbacks_;
  RouteEntry entry_;
  std::unique_ptr<Router> router_;
  std::unique_ptr<Router> other_router_;
};

// ---------------------------------------------------------------------------------------------
// Attempts.

TEST_F(RouterTest, SendsTheRequestToOneHostAndRelaysTheResponse) {
  start();
  send(request("GET"));
  ASSERT_EQ(attemptsAsked(), 1u);
  EXPECT_EQ(header(attempt(0), "x-bulwark-attempt"), "1");
  EXPECT_TRUE(attempt(0).requestComplete());
  EXPECT_EQ(host(0).active_requests.load(), 1u);

  attempt(0).respond(200, false, headerMap({{"content-type", "text/plain"}}));
  attempt(0).respondData("ok", true);

  ASSERT_NE(callbacks_.response_headers, nullptr);
  EXPECT_EQ(callbacks_.response_headers->status, 200u);
  EXPECT_EQ(callbacks_.response_body, "ok");
  EXPECT_TRUE(callbacks_.response_complete);
  EXPECT_EQ(router_->attempts(), 1u);
  EXPECT_EQ(router_->upstreamHost(), host(0).address);
  EXPECT_EQ(host(0).active_requests.load(), 0u) << "the attempt's permit was not released";
  EXPECT_EQ(host(0).requests_total.load(), 1u);
  EXPECT_EQ(metric("bulwark_upstream_attempts_total", {{"kind", "initial"}}), 1);
}

TEST_F(RouterTest, BodyAndTrailersWaitInTheAttemptUntilTheStreamIsReady) {
  start();
  hosts().setMode(FakeStreamPool::Mode::Queue);
  send(request("POST"), false);
  sendBody("hel", false);
  sendBody("lo", false);
  router_->onRequestTrailers(headerMap({{"x-checksum", "5"}}));
  ASSERT_EQ(attemptsAsked(), 1u);
  EXPECT_FALSE(attempt(0).requestHeaders().has_value());

  attempt(0).ready();

  EXPECT_EQ(attempt(0).requestBody(), "hello");
  ASSERT_TRUE(attempt(0).requestTrailers().has_value());
  EXPECT_EQ(attempt(0).requestTrailers()->get("x-checksum"), "5");
  EXPECT_TRUE(attempt(0).requestComplete());
}

TEST_F(RouterTest, NoHostAnswersNoHealthyUpstream) {
  start();
  hosts().no_host = true;
  send(request("GET"));
  EXPECT_EQ(callbacks_.localReply().kind, http::LocalReplyKind::NoHealthyUpstream);
  EXPECT_EQ(upstream_->activeRequests(), 0u);
}

TEST_F(RouterTest, UpstreamAtMaxRequestsOverflowsAtOnce) {
  upstream_spec_.connection_pool.max_requests = 1;
  start();
  send(request("GET"));
  mocks::FakeRouterCallbacks second;
  other_router_ = std::make_unique<Router>(ctx_, second, entry_, "10.0.0.2:40000");
  other_router_->onRequestHeaders(request("GET"), true);

  EXPECT_EQ(second.localReply().kind, http::LocalReplyKind::UpstreamOverflow);
  EXPECT_EQ(attemptsAsked(), 1u);
  EXPECT_FALSE(callbacks_.done());
}

// ---------------------------------------------------------------------------------------------
// Retry decisions.

TEST_F(RouterTest, RetriesOnAnotherHostFromATimerNeverInline) {
  retries().attempts = 3;
  retries().retry_on = {"5xx"};
  retries().backoff.base_interval = 0ms;  // even a zero backoff waits for the loop
  retries().backoff.max_interval = 0ms;
  start();
  send(request("GET"));
  attempt(0).respond(503, true);

  EXPECT_EQ(attemptsAsked(), 1u) << "the retry started inline, from the failed attempt's callback";
  EXPECT_FALSE(callbacks_.done());
  ASSERT_TRUE(waitForAttempts(2));
  EXPECT_NE(&attempt(1).host(), &attempt(0).host()) << "the retry went back to the failed host";
  EXPECT_EQ(header(attempt(1), "x-bulwark-attempt"), "2");

  attempt(1).respond(200, true);
  EXPECT_EQ(callbacks_.status(), 200u);
  EXPECT_EQ(router_->attempts(), 2u);
  EXPECT_EQ(metric("bulwark_retries_total", {{"reason", "gateway-error"}}), 1);
  EXPECT_EQ(host(0).errors_total.load(), 1u);
  EXPECT_EQ(host(1).errors_total.load(), 0u);
}

TEST_F(RouterTest, AnOutcomeOutsideRetryOnGoesStraightToTheClient) {
  retries().attempts = 3;
  retries().retry_on = {"connect-failure"};
  start();
  send(request("GET"));
  attempt(0).respond(503, true);

  EXPECT_EQ(callbacks_.status(), 503u);
  EXPECT_TRUE(callbacks_.response_complete);
  EXPECT_EQ(attemptsAsked(), 1u);
}

TEST_F(RouterTest, ConnectFailureIsRetriedOnAnotherHost) {
  retries().attempts = 2;
  retries().retry_on = {"connect-failure"};
  start();
  hosts().pool(0).mode = FakeStreamPool::Mode::FailAtOnce;
  send(request("GET"));
  ASSERT_TRUE(waitForAttempts(2));
  EXPECT_EQ(&attempt(1).host(), &host(1));
  attempt(1).respond(204, true);
  EXPECT_EQ(callbacks_.status(), 204u);
  EXPECT_EQ(host(0).errors_total.load(), 1u);
}

TEST_F(RouterTest, TheLastAttemptsAnswerGoesToTheClientWhenAttemptsAreExhausted) {
  retries().attempts = 2;
  retries().retry_on = {"5xx"};
  start();
  send(request("GET"));
  attempt(0).respond(503, true);
  ASSERT_TRUE(waitForAttempts(2));
  attempt(1).respond(502, false);
  attempt(1).respondData("bad gateway", true);

  EXPECT_EQ(callbacks_.status(), 502u);
  EXPECT_EQ(callbacks_.response_body, "bad gateway");
  EXPECT_EQ(attemptsAsked(), 2u);
  EXPECT_EQ(metric("bulwark_retry_limit_exceeded_total"), 1);
}

TEST_F(RouterTest, NoRetryWhenTheRetryBudgetIsExhausted) {
  retries().attempts = 3;
  retries().retry_on = {"5xx"};
  // No ratio part: retries come only from the reserve, whose burst (minRetryConcurrency) is one.
  retries().budget.percent = 0;
  retries().budget.min_retry_concurrency = 1;
  start();
  // Spend that one retry. The reserve earns the next only after 100 ms (10 retries/s); the
  // request below runs without a loop turn, in microseconds.
  auto& budget = entry_.route->retryBudget();
  const auto now = std::chrono::steady_clock::now();
  int spent = 0;
  while (spent < 10 && budget.tryWithdraw(now)) {
    ++spent;
  }
  ASSERT_EQ(spent, 1);
  const uint64_t refused_before = budget.exhaustedTotal();

  send(request("GET"));
  attempt(0).respond(503, true);

  EXPECT_EQ(callbacks_.status(), 503u);
  EXPECT_TRUE(callbacks_.response_complete);
  EXPECT_EQ(attemptsAsked(), 1u);
  // Refused by the time-window budget itself, not by the cap on retries in flight.
  EXPECT_EQ(budget.exhaustedTotal(), refused_before + 1);
  EXPECT_EQ(metric("bulwark_retry_budget_exhausted_total"), 1);
  EXPECT_EQ(metric("bulwark_retry_limit_exceeded_total"), 0);
}

TEST_F(RouterTest, NonIdempotentRequestIsNeverRetriedOnceSent) {
  retries().attempts = 3;
  retries().retry_on = {"5xx", "reset"};
  start();
  send(request("POST"));
  ASSERT_TRUE(attempt(0).requestHeaders().has_value()) << "the request did not reach the host";
  attempt(0).resetByPeer(http::StreamResetReason::RemoteReset);

  EXPECT_EQ(callbacks_.localReply().kind, http::LocalReplyKind::UpstreamReset);
  EXPECT_EQ(callbacks_.status(), 502u);
  EXPECT_EQ(attemptsAsked(), 1u);
}

TEST_F(RouterTest, NonIdempotentRequestIsRetriedWhenItNeverReachedAHost) {
  retries().attempts = 2;
  retries().retry_on = {"connect-failure"};
  start();
  hosts().pool(0).mode = FakeStreamPool::Mode::FailAtOnce;
  send(request("POST"));
  ASSERT_TRUE(waitForAttempts(2));
  attempt(1).respond(201, true);
  EXPECT_EQ(callbacks_.status(), 201u);
}

TEST_F(RouterTest, NonIdempotentRequestWithItsKeyIsRetriedWhenTheRouteAllowsIt) {
  retries().attempts = 2;
  retries().retry_on = {"5xx"};
  retries().non_idempotent = config::NonIdempotentPolicy::WithIdempotencyKey;
  start();
  send(request("POST", headerMap({{"idempotency-key", "k-1"}})));
  attempt(0).respond(503, true);
  ASSERT_TRUE(waitForAttempts(2));
  attempt(1).respond(201, true);
  EXPECT_EQ(callbacks_.status(), 201u);
}

TEST_F(RouterTest, ResetAfterTheResponseStartedIsNotRetried) {
  retries().attempts = 3;
  retries().retry_on = {"5xx", "reset"};
  start();
  send(request("GET"));
  attempt(0).respond(200, false);
  attempt(0).resetByPeer(http::StreamResetReason::RemoteReset);

  ASSERT_EQ(callbacks_.local_replies.size(), 1u) << "the client's stream was not reset";
  EXPECT_EQ(callbacks_.localReply().kind, http::LocalReplyKind::UpstreamReset);
  EXPECT_EQ(callbacks_.response_headers->status, 200u);
  EXPECT_EQ(attemptsAsked(), 1u);
}

TEST_F(RouterTest, RetryAfterReplacesTheBackoff) {
  retries().attempts = 2;
  retries().retry_on = {"5xx"};
  retries().backoff.base_interval = 60000ms;  // the retry comes quickly only when pushback wins
  retries().backoff.max_interval = 60000ms;
  retries().backoff.jitter = config::Jitter::None;
  start();
  send(request("GET"));
  attempt(0).respond(503, true, headerMap({{"retry-after", "0"}}));
  ASSERT_TRUE(waitForAttempts(2));
  EXPECT_EQ(metric("bulwark_retry_pushback_honored_total"), 1);
}

TEST_F(RouterTest, GrpcUnavailableIsRetriedAndCountsPreviousAttempts) {
  retries().attempts = 2;
  retries().retry_on = {"unavailable"};
  start();
  send(grpcCall(std::nullopt));
  attempt(0).respond(200, true,
                     headerMap({{"content-type", "application/grpc"}, {"grpc-status", "14"}}));
  ASSERT_TRUE(waitForAttempts(2));
  EXPECT_EQ(header(attempt(1), "grpc-previous-rpc-attempts"), "1");
  EXPECT_EQ(header(attempt(0), "grpc-previous-rpc-attempts"), "<absent>");

  attempt(1).respond(200, false, headerMap({{"content-type", "application/grpc"}}));
  attempt(1).respondData("msg", false);
  attempt(1).respondTrailers(headerMap({{"grpc-status", "0"}}));
  ASSERT_TRUE(callbacks_.response_trailers.has_value());
  EXPECT_EQ(callbacks_.response_trailers->get("grpc-status"), "0");
  EXPECT_EQ(callbacks_.response_body, "msg");
}

TEST_F(RouterTest, GrpcPushbackOfDoNotRetryEndsRetries) {
  retries().attempts = 3;
  retries().retry_on = {"unavailable"};
  start();
  send(grpcCall(std::nullopt));
  attempt(0).respond(200, true,
                     headerMap({{"grpc-status", "14"}, {"grpc-retry-pushback-ms", "-1"}}));
  EXPECT_EQ(callbacks_.status(), 200u);
  EXPECT_EQ(callbacks_.response_headers->headers.get("grpc-status"), "14");
  EXPECT_EQ(attemptsAsked(), 1u);
}

TEST_F(RouterTest, AGrpcResponseWhoseStatusComesInTrailersIsNotRetried) {
  retries().attempts = 3;
  retries().retry_on = {"unavailable"};
  retries().non_idempotent = config::NonIdempotentPolicy::Always;
  start();
  send(grpcCall(std::nullopt));
  attempt(0).respond(200, false, headerMap({{"content-type", "application/grpc"}}));
  ASSERT_NE(callbacks_.response_headers, nullptr) << "200 headers without grpc-status held back";
  attempt(0).respondTrailers(headerMap({{"grpc-status", "0"}}));
  EXPECT_TRUE(callbacks_.response_complete);
  EXPECT_EQ(attemptsAsked(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Per-try timeout and request deadline.

TEST_F(RouterTest, PerTryTimeoutAbandonsTheAttemptAndRetries) {
  retries().attempts = 2;
  retries().retry_on = {"5xx"};
  retries().per_try_timeout = 20ms;
  start();
  send(request("GET"));
  ASSERT_TRUE(waitForAttempts(2));
  EXPECT_EQ(attempt(0).localReset(), http::StreamResetReason::LocalReset);
  EXPECT_EQ(host(0).errors_total.load(), 1u) << "a per-try timeout is a failure of its host";
  EXPECT_EQ(host(0).active_requests.load(), 0u);
  attempt(1).respond(200, true);
  EXPECT_EQ(callbacks_.status(), 200u);
  EXPECT_EQ(metric("bulwark_retries_total", {{"reason", "per-try-timeout"}}), 1);
}

TEST_F(RouterTest, PerTryTimeoutAlsoCoversWaitingForAConnection) {
  retries().per_try_timeout = 20ms;
  start();
  hosts().setMode(FakeStreamPool::Mode::Queue);
  send(request("GET"));
  ASSERT_TRUE(waitForAnswer());
  EXPECT_EQ(callbacks_.localReply().kind, http::LocalReplyKind::UpstreamPerTryTimeout);
  EXPECT_EQ(callbacks_.status(), 504u);
  EXPECT_TRUE(attempt(0).cancelled()) << "the queued pool request was left behind";
}

TEST_F(RouterTest, RequestTimeoutAbandonsEveryAttemptAndAnswers504) {
  timeouts().request = 30ms;
  start();
  send(request("GET"));
  ASSERT_TRUE(waitForAnswer());
  EXPECT_EQ(callbacks_.localReply().kind, http::LocalReplyKind::RequestTimeout);
  EXPECT_EQ(callbacks_.status(), 504u);
  EXPECT_EQ(callbacks_.localReply().info().fallback_trigger, config::FallbackTrigger::Timeout);
  EXPECT_TRUE(attempt(0).abandoned());
  EXPECT_EQ(metric("bulwark_deadline_exceeded_total"), 1);
  EXPECT_EQ(upstream_->activeRequests(), 0u);
}

// At the route's own timeout the request waits in the worker's deadline queue for that duration
// (no timer of its own) and leaves it when answered; a deadline cut by grpc-timeout, whose length
// varies per call, does not go there.
TEST_F(RouterTest, TheRouteTimeoutWaitsInTheWorkersDeadlineQueue) {
  timeouts().request = 10000ms;
  start();
  const event::DeadlineQueue& queue = ctx_.deadlines.forDuration(10000ms);
  send(request("GET"));
  EXPECT_FALSE(queue.empty()) << "the request's deadline is not in the queue";
  attempt(0).respond(200, true);
  ASSERT_TRUE(callbacks_.done());
  EXPECT_TRUE(queue.empty()) << "the answered request left its deadline behind";

  router_ = std::make_unique<Router>(ctx_, callbacks_, entry_, "10.0.0.1:40001");
  send(grpcCall("20m"));
  EXPECT_TRUE(queue.empty()) << "a grpc-timeout deadline went into the route timeout's queue";
}

/** The grpc-timeout the attempt sent upstream. */
std::chrono::microseconds upstreamGrpcTimeout(const FakePooledStream& stream) {
  auto value = stream.requestHeaders()->headers.get("grpc-timeout");
  EXPECT_TRUE(value.has_value()) << "no grpc-timeout sent upstream";
  auto parsed = value ? http::grpc::parseTimeout(*value) : std::nullopt;
  EXPECT_TRUE(parsed.has_value());
  return parsed.value_or(std::chrono::microseconds(-1));
}

TEST_F(RouterTest, GrpcTimeoutTightensTheDeadlineAndIsRewrittenUpstream) {
  timeouts().request = 10000ms;
  start();
  send(grpcCall("20m"));
  auto sent = upstreamGrpcTimeout(attempt(0));
  EXPECT_GT(sent.count(), 0);
  EXPECT_LE(sent, 20ms);
  ASSERT_TRUE(waitForAnswer()) << "the client's 20 ms deadline did not end the call";
  EXPECT_EQ(callbacks_.localReply().kind, http::LocalReplyKind::RequestTimeout);
  EXPECT_EQ(callbacks_.localReply().grpcStatus(), GrpcStatus::DeadlineExceeded);
}

TEST_F(RouterTest, GrpcTimeoutIsCappedByMaxDeadline) {
  timeouts().request = 0ms;
  timeouts().grpc.max_deadline = 30ms;
  start();
  send(grpcCall("10S"));
  auto sent = upstreamGrpcTimeout(attempt(0));
  EXPECT_GT(sent.count(), 0);
  EXPECT_LE(sent, 30ms);
  ASSERT_TRUE(waitForAnswer());
  EXPECT_EQ(callbacks_.localReply().kind, http::LocalReplyKind::RequestTimeout);
}

TEST_F(RouterTest, GrpcTimeoutLosesTheDeadlineOffset) {
  timeouts().request = 10000ms;
  timeouts().grpc.deadline_offset = 900ms;
  start();
  send(grpcCall("1S"));
  auto sent = upstreamGrpcTimeout(attempt(0));
  EXPECT_GT(sent.count(), 0);
  EXPECT_LE(sent, 100ms);
}

TEST_F(RouterTest, GrpcTimeoutIsIgnoredWhenTheRouteDoesNotHonourIt) {
  timeouts().request = 10000ms;
  timeouts().grpc.honor_deadline = false;
  start();
  send(grpcCall("20m"));
  auto sent = upstreamGrpcTimeout(attempt(0));
  EXPECT_GT(sent, 9000ms) << "the upstream was given the client's deadline, not the route's";
}

// ---------------------------------------------------------------------------------------------
// Hedging.

TEST_F(RouterTest, HedgeThatAnswersFirstWinsAndTheOriginalIsCancelled) {
  route_spec_.policies.hedging = fixedHedging(10ms, 2);
  start();
  send(request("GET"));
  ASSERT_TRUE(waitForAttempts(2));
  EXPECT_NE(&attempt(1).host(), &attempt(0).host());
  attempt(1).respond(200, true);

  EXPECT_EQ(callbacks_.status(), 200u);
  EXPECT_EQ(attempt(0).localReset(), http::StreamResetReason::LocalReset);
  // The loser is reported as cancelled: not a failure of its host.
  EXPECT_EQ(host(0).errors_total.load(), 0u);
  EXPECT_EQ(host(0).active_requests.load(), 0u);
  EXPECT_EQ(upstream_->activeRequests(), 0u);
  EXPECT_EQ(metric("bulwark_hedges_total", {{"result", "started"}}), 1);
  EXPECT_EQ(metric("bulwark_hedges_total", {{"result", "won"}}), 1);
}

TEST_F(RouterTest, OriginalThatAnswersFirstWinsAndTheHedgeIsCancelled) {
  route_spec_.policies.hedging = fixedHedging(10ms, 2);
  start();
  send(request("GET"));
  ASSERT_TRUE(waitForAttempts(2));
  attempt(0).respond(200, false);
  attempt(0).respondData("first", true);

  EXPECT_EQ(callbacks_.response_body, "first");
  EXPECT_EQ(attempt(1).localReset(), http::StreamResetReason::LocalReset);
  EXPECT_EQ(host(1).errors_total.load(), 0u);
  EXPECT_EQ(metric("bulwark_hedges_total", {{"result", "won"}}), 0);
}

TEST_F(RouterTest, HedgesStopAtMaxRequests) {
  route_spec_.policies.hedging = fixedHedging(5ms, 2);
  timeouts().request = 60ms;
  start();
  send(request("GET"));
  ASSERT_TRUE(waitForAnswer());
  EXPECT_EQ(callbacks_.localReply().kind, http::LocalReplyKind::RequestTimeout);
  EXPECT_EQ(attemptsAsked(), 2u);
}

TEST_F(RouterTest, NonIdempotentRequestsAreNotHedged) {
  route_spec_.policies.hedging = fixedHedging(5ms, 3);
  timeouts().request = 40ms;
  start();
  send(request("POST"));
  ASSERT_TRUE(waitForAnswer());
  EXPECT_EQ(callbacks_.localReply().kind, http::LocalReplyKind::RequestTimeout);
  EXPECT_EQ(attemptsAsked(), 1u);
}

// ---------------------------------------------------------------------------------------------
// In-flight counters. Each attempt's permit counts it on the host it went to, from its start to
// its end: what LEAST_REQUEST, PEAK_EWMA and maxRequests read.

TEST_F(RouterTest, ARetryIsCountedOnItsOwnHostAndTheFailedAttemptNoLonger) {
  retries().attempts = 2;
  retries().retry_on = {"5xx"};
  start();
  send(request("GET"));
  EXPECT_EQ(host(0).active_requests.load(), 1u);
  EXPECT_EQ(upstream_->activeRequests(), 1u);

  attempt(0).respond(503, true);
  EXPECT_EQ(host(0).active_requests.load(), 0u) << "the failed attempt still counts in flight";
  EXPECT_EQ(upstream_->activeRequests(), 0u) << "the backoff holds a request slot";

  ASSERT_TRUE(waitForAttempts(2));
  ASSERT_EQ(&attempt(1).host(), &host(1));
  EXPECT_EQ(host(0).active_requests.load(), 0u);
  EXPECT_EQ(host(1).active_requests.load(), 1u);
  EXPECT_EQ(upstream_->activeRequests(), 1u);

  attempt(1).respond(200, true);
  EXPECT_EQ(host(1).active_requests.load(), 0u);
  EXPECT_EQ(upstream_->activeRequests(), 0u);
  EXPECT_EQ(host(0).requests_total.load(), 1u);
  EXPECT_EQ(host(1).requests_total.load(), 1u);
  EXPECT_EQ(host(2).requests_total.load(), 0u);
  EXPECT_EQ(host(0).errors_total.load(), 1u);
  EXPECT_EQ(host(1).errors_total.load(), 0u);
}

TEST_F(RouterTest, AHedgeAndItsOriginalAreCountedOnTheirHostsUntilEachEnds) {
  route_spec_.policies.hedging = fixedHedging(5ms, 2);
  start();
  send(request("GET"));
  ASSERT_TRUE(waitForAttempts(2));
  ASSERT_EQ(&attempt(0).host(), &host(0));
  ASSERT_EQ(&attempt(1).host(), &host(1));
  EXPECT_EQ(host(0).active_requests.load(), 1u);
  EXPECT_EQ(host(1).active_requests.load(), 1u);
  EXPECT_EQ(upstream_->activeRequests(), 2u);

  attempt(0).respond(200, true);
  EXPECT_EQ(host(0).active_requests.load(), 0u);
  EXPECT_EQ(host(1).active_requests.load(), 0u) << "the cancelled hedge still counts in flight";
  EXPECT_EQ(upstream_->activeRequests(), 0u);
  EXPECT_EQ(host(0).requests_total.load(), 1u);
  EXPECT_EQ(host(1).requests_total.load(), 1u);
}

TEST_F(RouterTest, AnAttemptWaitingForAConnectionIsCountedAndFreedWhenTheClientLeaves) {
  start();
  hosts().setMode(FakeStreamPool::Mode::Queue);
  send(request("GET"));
  ASSERT_TRUE(attempt(0).queued());
  EXPECT_EQ(host(0).active_requests.load(), 1u);
  EXPECT_EQ(upstream_->activeRequests(), 1u);

  router_->onDownstreamReset();
  EXPECT_TRUE(attempt(0).cancelled());
  EXPECT_EQ(host(0).active_requests.load(), 0u);
  EXPECT_EQ(upstream_->activeRequests(), 0u);
  EXPECT_EQ(host(0).errors_total.load(), 0u);
}

// ---------------------------------------------------------------------------------------------
// Fallback triggers.

TEST_F(RouterTest, Upstream5xxBecomesALocalReplyWhenTheRouteFallsBackOnIt) {
  start();
  callbacks_.fallback_triggers = {config::FallbackTrigger::Upstream5xx};
  send(request("GET"));
  attempt(0).respond(503, true);

  EXPECT_EQ(callbacks_.response_headers, nullptr);
  EXPECT_EQ(callbacks_.localReply().kind, http::LocalReplyKind::Upstream5xx);
  EXPECT_EQ(callbacks_.localReply().httpStatus(), 503u);
  EXPECT_EQ(callbacks_.localReply().info().fallback_trigger, config::FallbackTrigger::Upstream5xx);
  EXPECT_EQ(host(0).errors_total.load(), 1u) << "the 5xx was not reported to the upstream";
}

TEST_F(RouterTest, Upstream5xxPassesThroughWhenTheRouteHasNoFallbackForIt) {
  start();
  callbacks_.fallback_triggers = {config::FallbackTrigger::Timeout};
  send(request("GET"));
  attempt(0).respond(503, true);
  ASSERT_NE(callbacks_.response_headers, nullptr);
  EXPECT_EQ(callbacks_.response_headers->status, 503u);
}

TEST_F(RouterTest, OpenCircuitAnswersAtOnceWithRetryAfter) {
  config::CircuitBreakerSpec breaker;
  breaker.minimum_requests = 1;
  breaker.failure_rate_threshold = 50;
  breaker.open_duration = 5000ms;
  upstream_spec_.circuit_breaker = breaker;
  start();
  send(request("GET"));
  attempt(0).respond(500, true);
  ASSERT_EQ(upstream_->breakerState(), policies::BreakerState::Open);

  mocks::FakeRouterCallbacks second;
  other_router_ = std::make_unique<Router>(ctx_, second, entry_, "10.0.0.2:40000");
  other_router_->onRequestHeaders(request("GET"), true);
  EXPECT_EQ(second.localReply().kind, http::LocalReplyKind::CircuitOpen);
  EXPECT_EQ(second.localReply().info().fallback_trigger, config::FallbackTrigger::CircuitOpen);
  auto retry_after = second.localReply().headers.get("retry-after");
  ASSERT_TRUE(retry_after.has_value());
  EXPECT_GE(std::stoi(std::string(*retry_after)), 1);
  EXPECT_LE(std::stoi(std::string(*retry_after)), 5);
  EXPECT_EQ(attemptsAsked(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Body replay.

TEST_F(RouterTest, BufferedBodyIsReplayedToTheRetry) {
  retries().attempts = 2;
  retries().retry_on = {"5xx"};
  retries().retry_buffer_limit = 16;
  start();
  send(request("PUT"), false);
  sendBody("hel", false);
  sendBody("lo", true);
  EXPECT_EQ(attempt(0).requestBody(), "hello");
  attempt(0).respond(503, true);
  ASSERT_TRUE(waitForAttempts(2));
  EXPECT_EQ(attempt(1).requestBody(), "hello");
  EXPECT_TRUE(attempt(1).requestComplete());
}

TEST_F(RouterTest, BodyArrivingDuringTheBackoffReachesTheRetry) {
  retries().attempts = 2;
  retries().retry_on = {"5xx"};
  start();
  send(request("PUT"), false);
  sendBody("ab", false);
  attempt(0).respond(503, true);
  sendBody("cd", true);  // the retry waits for the loop: these bytes arrive in between
  ASSERT_TRUE(waitForAttempts(2));
  EXPECT_EQ(attempt(1).requestBody(), "abcd");
  EXPECT_TRUE(attempt(1).requestComplete());
}

TEST_F(RouterTest, BodyOverTheRetryBufferLimitIsNotRetried) {
  retries().attempts = 2;
  retries().retry_on = {"5xx"};
  retries().retry_buffer_limit = 4;
  start();
  send(request("PUT"), false);
  sendBody("hello", true);
  EXPECT_EQ(attempt(0).requestBody(), "hello") << "the body still streams to the first attempt";
  attempt(0).respond(503, true);
  EXPECT_EQ(callbacks_.status(), 503u);
  EXPECT_EQ(attemptsAsked(), 1u);
}

// ---------------------------------------------------------------------------------------------
// Downstream events.

TEST_F(RouterTest, DownstreamResetAbandonsAttemptsWithoutBlamingTheHost) {
  retries().attempts = 3;
  retries().retry_on = {"5xx"};
  start();
  send(request("GET"));
  router_->onDownstreamReset();
  EXPECT_EQ(attempt(0).localReset(), http::StreamResetReason::LocalReset);
  EXPECT_FALSE(callbacks_.done());
  EXPECT_EQ(host(0).errors_total.load(), 0u);
  EXPECT_EQ(upstream_->activeRequests(), 0u);
}

TEST_F(RouterTest, FullUpstreamSendBufferPausesTheClientsBody) {
  start();
  send(request("POST"), false);
  attempt(0).setWriteBufferFull(true);
  attempt(0).setWriteBufferFull(false);
  EXPECT_EQ(callbacks_.read_disable_calls, (std::vector<bool>{true, false}));
}

TEST_F(RouterTest, FullDownstreamBufferPausesTheWinningResponse) {
  start();
  send(request("GET"));
  attempt(0).respond(200, false);
  router_->onDownstreamAboveWriteBufferHighWatermark();
  EXPECT_EQ(attempt(0).readDisableCount(), 1);
  router_->onDownstreamBelowWriteBufferLowWatermark();
  EXPECT_EQ(attempt(0).readDisableCount(), 0);
}

}  // namespace
}  // namespace bulwark::router
