#include "policies/retry/latency_histogram.h"

#include <gtest/gtest.h>

#include "tests/support/simulated_time.h"

namespace bulwark::policies {
namespace {

using namespace std::chrono_literals;
using bulwark::testing::SimulatedTime;

// A quantile is the upper bound of its bucket: at or above the true value, within 15 %.
TEST(DecayingLatencyHistogramTest, QuantilesAreBucketUpperBounds) {
  SimulatedTime t;
  DecayingLatencyHistogram h;
  for (int i = 1; i <= 100; ++i) {
    h.record(std::chrono::milliseconds(i), t.now());
  }
  for (double q : {0.5, 0.9, 0.95, 0.99}) {
    auto v = h.quantile(q, t.now());
    ASSERT_TRUE(v) << q;
    const auto truth = std::chrono::milliseconds(static_cast<int>(q * 100));
    EXPECT_GE(*v, truth) << q;
    EXPECT_LE(*v, truth * 1.16) << q;
  }
}

TEST(DecayingLatencyHistogramTest, NoAnswerUntilEnoughSamples) {
  SimulatedTime t;
  DecayingLatencyHistogram h;
  for (int i = 0; i < 19; ++i) {
    h.record(3ms, t.now());
  }
  EXPECT_EQ(std::nullopt, h.quantile(0.95, t.now()));
  h.record(3ms, t.now());
  EXPECT_TRUE(h.quantile(0.95, t.now()));
  // Unrefreshed samples fade: after one half-life only half of them count.
  t.advance(10s);
  EXPECT_NEAR(10.0, h.weight(t.now()), 1e-9);
  EXPECT_EQ(std::nullopt, h.quantile(0.95, t.now()));
}

// Old samples fade: a host that was slow two minutes ago no longer sets the p95.
TEST(DecayingLatencyHistogramTest, RecentSamplesOutweighOldOnes) {
  SimulatedTime t;
  DecayingLatencyHistogram h;
  for (int i = 0; i < 1000; ++i) {
    h.record(300ms, t.now());
  }
  t.advance(120s);
  for (int i = 0; i < 200; ++i) {
    h.record(2ms, t.now());
  }
  auto p95 = h.quantile(0.95, t.now());
  ASSERT_TRUE(p95);
  EXPECT_LT(*p95, 3ms);
}

// Years of samples keep their proportions through the rescaling that bounds the weights.
TEST(DecayingLatencyHistogramTest, LongRunsRescaleWithoutLosingTheShape) {
  SimulatedTime t;
  DecayingLatencyHistogram h;
  for (int i = 0; i < 200000; ++i) {
    h.record(i % 10 == 0 ? 50ms : 1ms, t.now());
    t.advance(100ms);
  }
  auto p50 = h.quantile(0.5, t.now());
  auto p95 = h.quantile(0.95, t.now());
  ASSERT_TRUE(p50 && p95);
  EXPECT_LT(*p50, 2ms);
  EXPECT_GE(*p95, 50ms);
  EXPECT_GT(h.weight(t.now()), 100);
}

TEST(DecayingLatencyHistogramTest, ExtremesLandInTheEndBuckets) {
  SimulatedTime t;
  DecayingLatencyHistogram h;
  for (int i = 0; i < 50; ++i) {
    h.record(1h, t.now());
  }
  EXPECT_EQ(DecayingLatencyHistogram::bucketUpperBound(DecayingLatencyHistogram::kBuckets - 1),
            h.quantile(0.5, t.now()));
  DecayingLatencyHistogram tiny;
  for (int i = 0; i < 50; ++i) {
    tiny.record(0ns, t.now());
  }
  EXPECT_EQ(DecayingLatencyHistogram::bucketUpperBound(0), tiny.quantile(0.99, t.now()));
}

}  // namespace
}  // namespace bulwark::policies
