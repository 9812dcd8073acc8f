#include <gtest/gtest.h>

#include "policies/rate_limit/token_bucket.h"
#include "tests/support/simulated_time.h"

namespace bulwark::policies {
namespace {

using namespace std::chrono_literals;
using bulwark::testing::SimulatedTime;

// A new bucket holds `burst` tokens; once empty it refuses with the time to the next token.
TEST(TokenBucketTest, BurstThenDenyWithRetryAfter) {
  SimulatedTime t;
  TokenBucket bucket(10.0, 5, t.now());
  for (uint32_t i = 0; i < 5; ++i) {
    const auto d = bucket.tryConsume(t.now());
    ASSERT_TRUE(d.allowed) << i;
    EXPECT_EQ(4 - i, d.remaining);
    EXPECT_EQ(5u, d.limit);
  }
  const auto denied = bucket.tryConsume(t.now());
  EXPECT_FALSE(denied.allowed);
  EXPECT_EQ(0u, denied.remaining);
  EXPECT_EQ(100ms, denied.retry_after);  // one token at 10/s
  EXPECT_EQ(500ms, denied.reset_after);  // five tokens to full
}

// Refill is continuous and exact in simulated time, and capped at the burst.
TEST(TokenBucketTest, RefillOverTime) {
  SimulatedTime t;
  TokenBucket bucket(10.0, 5, t.now());
  for (int i = 0; i < 5; ++i) {
    bucket.tryConsume(t.now());
  }
  t.advance(99ms);
  EXPECT_FALSE(bucket.tryConsume(t.now()).allowed);
  const auto almost = bucket.tryConsume(t.now());
  EXPECT_EQ(1ms, almost.retry_after);
  t.advance(1ms);
  EXPECT_TRUE(bucket.tryConsume(t.now()).allowed);
  for (int i = 0; i < 10; ++i) {  // ten 100 ms steps: one token each, spent each time
    t.advance(100ms);
    ASSERT_TRUE(bucket.tryConsume(t.now()).allowed) << i;
    ASSERT_FALSE(bucket.tryConsume(t.now()).allowed) << i;
  }
  t.advance(1h);
  EXPECT_DOUBLE_EQ(5.0, bucket.available(t.now()));  // capped at the burst
  const auto d = bucket.tryConsume(t.now());
  EXPECT_EQ(4u, d.remaining);
  EXPECT_EQ(100ms, d.reset_after);
}

// Sustained rate over a long run equals requestsPerSecond (plus the initial burst).
TEST(TokenBucketTest, LongRunRate) {
  SimulatedTime t;
  TokenBucket bucket(3.0, 2, t.now());  // 3/s does not divide a second evenly
  int allowed = 0;
  for (int ms = 0; ms < 60'000; ++ms) {
    allowed += bucket.tryConsume(t.now()).allowed ? 1 : 0;
    t.advance(1ms);
  }
  EXPECT_GE(allowed, 2 + 180 - 1);
  EXPECT_LE(allowed, 2 + 180);
}

// burst 0 means one second's worth, at least one.
TEST(TokenBucketTest, DefaultBurst) {
  SimulatedTime t;
  EXPECT_EQ(100u, TokenBucket(100.0, 0, t.now()).capacity());
  EXPECT_EQ(3u, TokenBucket(2.5, 0, t.now()).capacity());
  EXPECT_EQ(1u, TokenBucket(0.1, 0, t.now()).capacity());
  TokenBucket slow(0.1, 0, t.now());
  EXPECT_TRUE(slow.tryConsume(t.now()).allowed);
  EXPECT_EQ(10s, slow.tryConsume(t.now()).retry_after);
}

// Keys have independent buckets.
TEST(RateLimiterTest, PerKeyBuckets) {
  SimulatedTime t;
  RateLimiter limiter({1.0, 2, 100});
  EXPECT_TRUE(limiter.tryAcquire("a", t.now()).allowed);
  EXPECT_TRUE(limiter.tryAcquire("a", t.now()).allowed);
  EXPECT_FALSE(limiter.tryAcquire("a", t.now()).allowed);
  EXPECT_TRUE(limiter.tryAcquire("b", t.now()).allowed);
  EXPECT_EQ(2u, limiter.keyCount());
  t.advance(1s);
  EXPECT_TRUE(limiter.tryAcquire("a", t.now()).allowed);
}

// Memory is bounded: the least recently used key is evicted at max_keys.
TEST(RateLimiterTest, LruEvictionBoundsMemory) {
  SimulatedTime t;
  RateLimiter limiter({1.0, 1, 3});
  for (const char* k : {"a", "b", "c"}) {
    EXPECT_TRUE(limiter.tryAcquire(k, t.now()).allowed);
  }
  EXPECT_FALSE(limiter.tryAcquire("a", t.now()).allowed);  // touches "a": LRU is now "b"
  EXPECT_TRUE(limiter.tryAcquire("d", t.now()).allowed);   // evicts "b"
  EXPECT_EQ(3u, limiter.keyCount());
  EXPECT_EQ(1u, limiter.evictedTotal());
  EXPECT_FALSE(limiter.tryAcquire("a", t.now()).allowed);  // "a" kept its empty bucket
  EXPECT_FALSE(limiter.tryAcquire("c", t.now()).allowed);
  EXPECT_TRUE(limiter.tryAcquire("b", t.now()).allowed);  // "b" came back full
  for (int i = 0; i < 1000; ++i) {
    limiter.tryAcquire("k" + std::to_string(i), t.now());
  }
  EXPECT_EQ(3u, limiter.keyCount());
}

// Draft (RateLimit-Policy / RateLimit) and legacy X-RateLimit-* header values.
TEST(RateLimitHeadersTest, DraftAndLegacy) {
  SimulatedTime t;
  TokenBucket bucket(10.0, 100, t.now());
  for (int i = 0; i < 58; ++i) {
    bucket.tryConsume(t.now());
  }
  const auto d = bucket.tryConsume(t.now());  // 41 left, 59 to refill = 5.9 s
  ASSERT_TRUE(d.allowed);
  using Headers = std::vector<std::pair<std::string, std::string>>;
  const auto render = [](const RateLimitDecision& decision, RateLimitHeaderStyle style,
                         std::string_view name, uint32_t capacity = 100) {
    Headers out;
    for (auto& [header, value] : RateLimitHeaders(style, name, 10.0, capacity).render(decision)) {
      out.emplace_back(std::string(header), value);
    }
    return out;
  };
  EXPECT_EQ((Headers{{"ratelimit-policy", "\"search\";q=100;w=10"},
                     {"ratelimit", "\"search\";r=41;t=6"}}),
            render(d, RateLimitHeaderStyle::Draft, "search"));
  EXPECT_EQ((Headers{{"x-ratelimit-limit", "100, 100;w=10"},
                     {"x-ratelimit-remaining", "41"},
                     {"x-ratelimit-reset", "6"}}),
            render(d, RateLimitHeaderStyle::Legacy, "search"));
  EXPECT_TRUE(render(d, RateLimitHeaderStyle::Off, "search").empty());
  const auto quoted = render(d, RateLimitHeaderStyle::Draft, "a\"b\\c\n");
  EXPECT_EQ("\"a\\\"b\\\\c\";q=100;w=10", quoted[0].second);
  EXPECT_EQ("\"default\";q=100;w=10", render(d, RateLimitHeaderStyle::Draft, "")[0].second);
  // A decision whose capacity is not the one kept formatted (a global bucket whose limit the
  // shared store reports) gets its own values.
  EXPECT_EQ((Headers{{"ratelimit-policy", "\"search\";q=100;w=10"},
                     {"ratelimit", "\"search\";r=41;t=6"}}),
            render(d, RateLimitHeaderStyle::Draft, "search", 30));
  EXPECT_EQ("30, 30;w=3", render(RateLimitDecision{true, 30, 29, {}, {}},
                                 RateLimitHeaderStyle::Legacy, "search")[0]
                              .second);
}

// Parsing the headers style and rounding seconds up (never a 0 s Retry-After on a 429).
TEST(RateLimitHeadersTest, StyleAndSeconds) {
  EXPECT_EQ(RateLimitHeaderStyle::Draft, parseRateLimitHeaderStyle("draft"));
  EXPECT_EQ(RateLimitHeaderStyle::Legacy, parseRateLimitHeaderStyle("legacy"));
  EXPECT_EQ(RateLimitHeaderStyle::Off, parseRateLimitHeaderStyle("off"));
  EXPECT_FALSE(parseRateLimitHeaderStyle("Draft"));
  EXPECT_EQ(1, ceilSeconds(1ns));
  EXPECT_EQ(1, ceilSeconds(1s));
  EXPECT_EQ(2, ceilSeconds(1001ms));
  EXPECT_EQ(0, ceilSeconds(0ns));
  EXPECT_EQ(1, ceilSeconds(0ns, 1));
}

}  // namespace
}  // namespace bulwark::policies
