#include "bench/loadgen/histogram.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

namespace bulwark::bench {
namespace {

// Nearest-rank percentile of the exact samples: the reference the histogram approximates.
double exactPercentile(std::vector<int64_t> values, double p) {
  std::sort(values.begin(), values.end());
  const auto rank =
      std::max<size_t>(1, static_cast<size_t>(std::ceil(p / 100.0 * values.size() - 1e-9)));
  return static_cast<double>(values[rank - 1]);
}

// Every value lands in a bucket that contains it, and no bucket is wider than 1/128 of its
// low edge: the < 1 % precision promise.
TEST(LatencyHistogramTest, BucketsContainTheirValuesAndAreNarrow) {
  for (int64_t v : {int64_t{0}, int64_t{1}, int64_t{255}, int64_t{256}, int64_t{257}, int64_t{511},
                    int64_t{512}, int64_t{1000}, int64_t{20'000}, int64_t{123'457},
                    int64_t{1'000'000}, int64_t{59'999'999}, LatencyHistogram::kMaxValueUs}) {
    const size_t i = LatencyHistogram::bucketIndex(v);
    EXPECT_LE(LatencyHistogram::bucketLow(i), v) << v;
    EXPECT_GE(LatencyHistogram::bucketHigh(i), v) << v;
    const int64_t width = LatencyHistogram::bucketHigh(i) - LatencyHistogram::bucketLow(i) + 1;
    EXPECT_LE(static_cast<double>(width), std::max(1.0, static_cast<double>(v) / 128.0)) << v;
  }
  // Buckets tile the range without gaps.
  for (size_t i = 1; i < LatencyHistogram::bucketCount(); ++i) {
    ASSERT_EQ(LatencyHistogram::bucketHigh(i - 1) + 1, LatencyHistogram::bucketLow(i)) << i;
  }
}

TEST(LatencyHistogramTest, SmallValuesAreExact) {
  LatencyHistogram h;
  for (int64_t v = 1; v <= 200; ++v) {
    h.recordUs(v);
  }
  EXPECT_EQ(200u, h.count());
  EXPECT_DOUBLE_EQ(100.0, h.percentileUs(50));
  EXPECT_DOUBLE_EQ(198.0, h.percentileUs(99));
  EXPECT_DOUBLE_EQ(1.0, h.percentileUs(0));
  EXPECT_DOUBLE_EQ(200.0, h.percentileUs(100));
  EXPECT_EQ(1, h.minUs());
  EXPECT_EQ(200, h.maxUs());
  EXPECT_DOUBLE_EQ(100.5, h.meanUs());
}

// Log-uniform latencies from 50 us to 30 s: every percentile within 1 % of the exact one.
TEST(LatencyHistogramTest, PercentilesWithinOnePercent) {
  std::mt19937_64 rng(42);
  std::uniform_real_distribution<double> exponent(std::log(50.0), std::log(30e6));
  std::vector<int64_t> values;
  LatencyHistogram h;
  for (int i = 0; i < 20000; ++i) {
    const auto v = static_cast<int64_t>(std::exp(exponent(rng)));
    values.push_back(v);
    h.recordUs(v);
  }
  for (double p : {1.0, 10.0, 25.0, 50.0, 75.0, 90.0, 95.0, 99.0, 99.9, 99.99, 100.0}) {
    const double exact = exactPercentile(values, p);
    EXPECT_NEAR(exact, h.percentileUs(p), exact * 0.01) << "p" << p;
  }
  EXPECT_EQ(*std::min_element(values.begin(), values.end()), h.minUs());
  EXPECT_EQ(*std::max_element(values.begin(), values.end()), h.maxUs());
}

TEST(LatencyHistogramTest, NanosecondsRoundToMicroseconds) {
  LatencyHistogram h;
  h.record(std::chrono::nanoseconds(20'000'400));
  h.record(std::chrono::nanoseconds(20'000'600));
  EXPECT_EQ(20'000, h.minUs());
  EXPECT_EQ(20'001, h.maxUs());
}

// Merging per-phase (or per-thread) histograms equals recording everything into one.
TEST(LatencyHistogramTest, MergeEqualsRecordingTogether) {
  std::mt19937_64 rng(7);
  std::lognormal_distribution<double> dist(9.0, 1.5);
  LatencyHistogram a;
  LatencyHistogram b;
  LatencyHistogram all;
  for (int i = 0; i < 5000; ++i) {
    const auto v = static_cast<int64_t>(dist(rng));
    (i % 3 == 0 ? a : b).recordUs(v);
    all.recordUs(v);
  }
  LatencyHistogram merged;
  merged.merge(a);
  merged.merge(b);
  merged.merge(LatencyHistogram());  // empty: no effect
  EXPECT_EQ(all.count(), merged.count());
  EXPECT_EQ(all.minUs(), merged.minUs());
  EXPECT_EQ(all.maxUs(), merged.maxUs());
  EXPECT_NEAR(all.meanUs(), merged.meanUs(), 1e-6);
  for (double p : {0.0, 50.0, 90.0, 99.0, 99.9, 100.0}) {
    EXPECT_DOUBLE_EQ(all.percentileUs(p), merged.percentileUs(p)) << p;
  }
}

TEST(LatencyHistogramTest, EmptyAndClamped) {
  LatencyHistogram h;
  EXPECT_EQ(0u, h.count());
  EXPECT_EQ(0.0, h.percentileUs(99));
  EXPECT_EQ(0, h.maxUs());
  EXPECT_EQ(0.0, h.meanUs());
  h.recordUs(LatencyHistogram::kMaxValueUs * 2);
  h.recordUs(-5);
  EXPECT_EQ(1u, h.clampedCount());
  EXPECT_EQ(LatencyHistogram::kMaxValueUs, h.maxUs());
  EXPECT_EQ(0, h.minUs());
  h.reset();
  EXPECT_EQ(0u, h.count());
}

}  // namespace
}  // namespace bulwark::bench
