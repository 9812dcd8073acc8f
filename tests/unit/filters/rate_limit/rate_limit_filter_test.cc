#include "filters/rate_limit/rate_limit_filter.h"

#include <gtest/gtest.h>

#include "tests/mocks/fake_filter_callbacks.h"
#include "tests/support/simulated_time.h"

namespace bulwark::filters::rate_limit {
namespace {

using namespace std::chrono_literals;
using mocks::FakeFactoryContext;
using mocks::FilterUnderTest;

config::RouteSpec routeWith(config::RateLimitSpec spec) {
  config::RouteSpec route;
  route.name = "api";
  route.upstream = "backend";
  route.policies.rate_limit = std::move(spec);
  return route;
}

config::RateLimitSpec limit(double rps, uint32_t burst, std::string headers = "draft") {
  config::RateLimitSpec spec;
  spec.requests_per_second = rps;
  spec.burst = burst;
  spec.headers = std::move(headers);
  return spec;
}

class RateLimitFilterTest : public ::testing::Test {
protected:
  /** Builds the route's filter factory with the simulated clock installed. */
  http::FilterFactoryCb build(FakeFactoryContext& ctx) {
    auto cb = mocks::createOrFail(*factory_, ctx);
    ctx.onlyState<RateLimitState>()->clock.setNowForTest([this] { return time_.now(); });
    return cb;
  }
  /** Runs one request with `headers`/`peer`; @return true when it passed the filter. */
  bool pass(const http::FilterFactoryCb& cb, http::HeaderMap headers = {},
            std::string peer = "10.0.0.1:40000") {
    last_ = std::make_unique<FilterUnderTest>(dispatcher_, cb);
    last_->callbacks->headers.headers = std::move(headers);
    last_->callbacks->peer = std::move(peer);
    return last_->start() == http::FilterStatus::Continue && last_->callbacks->replies.empty();
  }
  double limited(FakeFactoryContext& ctx) {
    return counterFamily(ctx.stats().registry(), "bulwark_rate_limited_total", "")
        .Add({{"route", "api"}})
        .Value();
  }

  event::Dispatcher dispatcher_;
  testing::SimulatedTime time_;
  http::FilterFactoryPtr factory_ = makeFactory();
  std::unique_ptr<FilterUnderTest> last_;
};

// The factory is named after its block and only enabled by it.
TEST_F(RateLimitFilterTest, EnabledOnlyByRateLimitBlock) {
  EXPECT_EQ(factory_->name(), "rate_limit");
  EXPECT_TRUE(factory_->enabledFor(routeWith(limit(1, 1))));
  EXPECT_FALSE(factory_->enabledFor(config::RouteSpec{}));
}

// A route bucket lets `burst` requests through, then answers 429 with Retry-After, the draft
// RateLimit headers, reason rate_limited and fallback trigger rateLimited, and counts it.
TEST_F(RateLimitFilterTest, BurstThen429WithHeaders) {
  FakeFactoryContext ctx(routeWith(limit(1, 2)));
  auto cb = build(ctx);
  EXPECT_TRUE(pass(cb));
  EXPECT_TRUE(pass(cb));
  EXPECT_FALSE(pass(cb));
  const http::LocalReply& reply = last_->callbacks->reply();
  EXPECT_EQ(reply.httpStatus(), 429u);
  EXPECT_EQ(reply.reason(), "rate_limited");
  EXPECT_EQ(reply.info().fallback_trigger, config::FallbackTrigger::RateLimited);
  EXPECT_EQ(last_->callbacks->replyHeader("retry-after"), "1");
  EXPECT_EQ(last_->callbacks->replyHeader("ratelimit-policy"), "\"api\";q=2;w=2");
  EXPECT_EQ(last_->callbacks->replyHeader("ratelimit"), "\"api\";r=0;t=2");
  EXPECT_FALSE(last_->callbacks->replyHeader("grpc-retry-pushback-ms"));
  EXPECT_EQ(limited(ctx), 1);
}

// Tokens come back with time: after 1 s at 1 rps one more request passes, then 429 again.
TEST_F(RateLimitFilterTest, RefillsOverTime) {
  FakeFactoryContext ctx(routeWith(limit(1, 1)));
  auto cb = build(ctx);
  EXPECT_TRUE(pass(cb));
  EXPECT_FALSE(pass(cb));
  time_.advance(500ms);
  EXPECT_FALSE(pass(cb));
  time_.advance(500ms);
  EXPECT_TRUE(pass(cb));
  EXPECT_FALSE(pass(cb));
}

// With key.header each value has its own bucket; requests without the header share one.
TEST_F(RateLimitFilterTest, HeaderKeysHaveIndependentBuckets) {
  auto spec = limit(1, 1);
  spec.key_header = "x-tenant";
  FakeFactoryContext ctx(routeWith(spec));
  auto cb = build(ctx);
  http::HeaderMap a;
  a.add("x-tenant", "a");
  http::HeaderMap b;
  b.add("x-tenant", "b");
  EXPECT_TRUE(pass(cb, a));
  EXPECT_FALSE(pass(cb, a));
  EXPECT_TRUE(pass(cb, b));
  EXPECT_TRUE(pass(cb));   // no header: the "" bucket
  EXPECT_FALSE(pass(cb));  // ... which is shared by every request without it
}

// With key.clientIp the bucket is the peer's IP, whatever its port.
TEST_F(RateLimitFilterTest, ClientIpKeyIgnoresPort) {
  auto spec = limit(1, 1);
  spec.key_client_ip = true;
  FakeFactoryContext ctx(routeWith(spec));
  auto cb = build(ctx);
  EXPECT_TRUE(pass(cb, {}, "10.0.0.1:1000"));
  EXPECT_FALSE(pass(cb, {}, "10.0.0.1:2000"));
  EXPECT_TRUE(pass(cb, {}, "10.0.0.2:1000"));
  EXPECT_TRUE(pass(cb, {}, "[::1]:1000"));
  EXPECT_FALSE(pass(cb, {}, "[::1]:1001"));
}

// Allowed responses carry the RateLimit headers in the configured style; `off` adds none.
TEST_F(RateLimitFilterTest, AllowedResponsesCarryHeadersInStyle) {
  {
    FakeFactoryContext ctx(routeWith(limit(10, 10, "legacy")));
    auto cb = build(ctx);
    ASSERT_TRUE(pass(cb));
    http::ResponseHeaders response;
    last_->filter->onResponseHeaders(response, false);
    EXPECT_EQ(response.headers.get("x-ratelimit-limit"), "10, 10;w=1");
    EXPECT_EQ(response.headers.get("x-ratelimit-remaining"), "9");
    EXPECT_FALSE(response.headers.has("ratelimit"));
  }
  {
    FakeFactoryContext ctx(routeWith(limit(10, 10, "off")));
    auto cb = build(ctx);
    ASSERT_TRUE(pass(cb));
    http::ResponseHeaders response;
    last_->filter->onResponseHeaders(response, false);
    EXPECT_TRUE(response.headers.empty());
    ASSERT_TRUE(pass(cb, {}));
  }
}

// gRPC calls get UNAVAILABLE with grpc-retry-pushback-ms (the connection manager turns the
// reply into a trailers-only response).
TEST_F(RateLimitFilterTest, GrpcRejectionCarriesPushback) {
  FakeFactoryContext ctx(routeWith(limit(2, 1)));
  auto cb = build(ctx);
  EXPECT_TRUE(pass(cb));
  last_ = std::make_unique<FilterUnderTest>(dispatcher_, cb);
  last_->callbacks->grpc = true;
  EXPECT_EQ(last_->start(), http::FilterStatus::StopIteration);
  EXPECT_EQ(last_->callbacks->reply().grpcStatus(), GrpcStatus::Unavailable);
  EXPECT_EQ(last_->callbacks->replyHeader("grpc-retry-pushback-ms"), "500");
}

// A reload with the same block keeps the buckets (no free burst); a changed block starts anew.
TEST_F(RateLimitFilterTest, ReloadKeepsBucketsWhileBlockUnchanged) {
  FakeFactoryContext ctx(routeWith(limit(1, 1)));
  auto first = build(ctx);
  EXPECT_TRUE(pass(first));
  auto second = mocks::createOrFail(*factory_, ctx);
  EXPECT_FALSE(pass(second));
  ctx.setRoute(routeWith(limit(1, 3)));
  auto changed = mocks::createOrFail(*factory_, ctx);
  EXPECT_EQ(ctx.stateCount(), 2u);
  EXPECT_TRUE(pass(changed));
}

// Registering a metric family again returns the existing one (prometheus-cpp Merge behaviour),
// which is what lets every factory call counterFamily()/gaugeFamily() per route and reload.
TEST_F(RateLimitFilterTest, MetricFamiliesAreRegisteredOnce) {
  FakeFactoryContext ctx(routeWith(limit(1, 1)));
  auto& a = counterFamily(ctx.stats().registry(), "bulwark_rate_limited_total", "x");
  auto& b = counterFamily(ctx.stats().registry(), "bulwark_rate_limited_total", "x");
  EXPECT_EQ(&a, &b);
  auto& g1 = gaugeFamily(ctx.stats().registry(), "bulwark_bulkhead_active", "x");
  auto& g2 = gaugeFamily(ctx.stats().registry(), "bulwark_bulkhead_active", "x");
  EXPECT_EQ(&g1, &g2);
}

// peerIp() strips ports and IPv6 brackets and leaves bare addresses alone.
TEST(PeerIpTest, StripsPortAndBrackets) {
  EXPECT_EQ(peerIp("10.1.2.3:80"), "10.1.2.3");
  EXPECT_EQ(peerIp("[2001:db8::1]:443"), "2001:db8::1");
  EXPECT_EQ(peerIp("2001:db8::1"), "2001:db8::1");
  EXPECT_EQ(peerIp("10.1.2.3"), "10.1.2.3");
  EXPECT_EQ(retryAfterValue(std::chrono::milliseconds(1)), "1");
  EXPECT_EQ(retryAfterValue(std::chrono::milliseconds(1001)), "2");
  EXPECT_EQ(pushbackMillisValue(std::chrono::microseconds(1500)), "2");
}

}  // namespace
}  // namespace bulwark::filters::rate_limit
