#include "examples/recommendation/backpressure.h"

#include <gtest/gtest.h>

namespace bulwark::examples::recommendation {
namespace {

using Decision = Backpressure<int>::Decision;
using std::chrono::milliseconds;

TEST(BackpressureTest, RunsThenQueuesThenRejects) {
  Backpressure<int> bp(2, 1);
  int a = 1, b = 2, c = 3, d = 4;
  EXPECT_EQ(bp.offer(a), Decision::Run);
  EXPECT_EQ(bp.offer(b), Decision::Run);
  EXPECT_EQ(bp.offer(c), Decision::Queued);
  EXPECT_EQ(bp.offer(d), Decision::Reject);
  EXPECT_EQ(bp.inflight(), 2u);
  EXPECT_EQ(bp.queued(), 1u);
  // A finished request hands its slot to the queued one.
  auto next = bp.finish();
  ASSERT_TRUE(next);
  EXPECT_EQ(*next, 3);
  EXPECT_EQ(bp.inflight(), 2u);
  EXPECT_EQ(bp.queued(), 0u);
  EXPECT_FALSE(bp.finish());
  EXPECT_FALSE(bp.finish());
  EXPECT_EQ(bp.inflight(), 0u);
  EXPECT_FALSE(bp.finish());  // never below zero
  EXPECT_EQ(bp.inflight(), 0u);
}

TEST(BackpressureTest, ZeroQueueRejectsAtOnce) {
  Backpressure<int> bp(1, 0);
  int a = 1, b = 2;
  EXPECT_EQ(bp.offer(a), Decision::Run);
  EXPECT_EQ(bp.offer(b), Decision::Reject);
}

TEST(TenantRateLimiterTest, BurstThenWaitThenRefill) {
  TenantRateLimiter limiter(2, 3);  // 2/s, burst 3
  auto t0 = TenantRateLimiter::Clock::time_point{} + std::chrono::hours(1);
  for (int i = 0; i < 3; ++i) {
    EXPECT_FALSE(limiter.tryAcquire("a", t0)) << i;
  }
  auto wait = limiter.tryAcquire("a", t0);
  ASSERT_TRUE(wait);
  EXPECT_EQ(std::chrono::duration_cast<milliseconds>(*wait).count(), 500);
  EXPECT_EQ(retryAfterSeconds(*wait), 1);
  EXPECT_FALSE(limiter.tryAcquire("b", t0));  // tenants are independent
  EXPECT_TRUE(limiter.tryAcquire("a", t0 + milliseconds(499)));
  EXPECT_FALSE(limiter.tryAcquire("a", t0 + milliseconds(600)));
}

TEST(TenantRateLimiterTest, DisabledAtZeroRate) {
  TenantRateLimiter limiter(0, 0);
  auto t0 = TenantRateLimiter::Clock::now();
  for (int i = 0; i < 1000; ++i) {
    ASSERT_FALSE(limiter.tryAcquire("a", t0));
  }
}

TEST(TenantRateLimiterTest, RetryAfterRoundsUp) {
  EXPECT_EQ(retryAfterSeconds(milliseconds(1)), 1);
  EXPECT_EQ(retryAfterSeconds(milliseconds(1000)), 1);
  EXPECT_EQ(retryAfterSeconds(milliseconds(1001)), 2);
  EXPECT_EQ(retryAfterSeconds(milliseconds(0)), 1);
}

}  // namespace
}  // namespace bulwark::examples::recommendation
