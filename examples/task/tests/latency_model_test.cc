#include "examples/task/latency_model.h"

#include <algorithm>
#include <vector>

#include <gtest/gtest.h>

namespace bulwark::examples::task {
namespace {

double sampledQuantile(std::vector<double> samples, double q) {
  auto k = static_cast<size_t>(q * static_cast<double>(samples.size()));
  std::nth_element(samples.begin(), samples.begin() + static_cast<long>(k), samples.end());
  return samples[k];
}

TEST(LatencyModelTest, NormalQuantileMatchesKnownValues) {
  EXPECT_NEAR(normalQuantile(0.5), 0.0, 1e-9);
  EXPECT_NEAR(normalQuantile(0.9), 1.2815515655, 1e-8);
  EXPECT_NEAR(normalQuantile(0.99), 2.3263478740, 1e-8);
  EXPECT_NEAR(normalQuantile(0.01), -2.3263478740, 1e-8);
}

TEST(LatencyModelTest, FitIsCloseToTheSeedQuantiles) {
  auto model = LatencyModel::seed();
  EXPECT_NEAR(model.quantileMs(0.5), kSeedP50Ms, 0.05 * kSeedP50Ms);
  EXPECT_NEAR(model.quantileMs(0.9), kSeedP90Ms, 0.07 * kSeedP90Ms);
  EXPECT_NEAR(model.quantileMs(0.99), kSeedP99Ms, 0.05 * kSeedP99Ms);
  EXPECT_LE(model.quantileMs(0.99999), kSeedMaxMs);
}

TEST(LatencyModelTest, SampledQuantilesMatchTheSeedWithinTolerance) {
  auto model = LatencyModel::seed();
  policies::SeededRandom random(2024);
  std::vector<double> samples;
  for (int i = 0; i < 50000; ++i) {
    samples.push_back(model.sampleMs(random));
  }
  EXPECT_NEAR(sampledQuantile(samples, 0.5), kSeedP50Ms, 0.08 * kSeedP50Ms);
  EXPECT_NEAR(sampledQuantile(samples, 0.9), kSeedP90Ms, 0.10 * kSeedP90Ms);
  EXPECT_NEAR(sampledQuantile(samples, 0.99), kSeedP99Ms, 0.10 * kSeedP99Ms);
  EXPECT_LE(*std::max_element(samples.begin(), samples.end()), kSeedMaxMs);
}

TEST(LatencyModelTest, ScaleMultipliesAndZeroDisables) {
  policies::SeededRandom a(1);
  policies::SeededRandom b(1);
  auto one = LatencyModel::seed(1.0);
  auto two = LatencyModel::seed(2.0);
  for (int i = 0; i < 100; ++i) {
    EXPECT_DOUBLE_EQ(two.sampleMs(b), 2 * one.sampleMs(a));
  }
  auto off = LatencyModel::seed(0);
  policies::SeededRandom c(1);
  for (int i = 0; i < 100; ++i) {
    EXPECT_EQ(off.sampleMs(c), 0);
  }
}

TEST(LatencyModelTest, FitRejectsDegenerateInput) {
  EXPECT_FALSE(LatencyModel::fit({{0.5, 10}}, 100));
  EXPECT_FALSE(LatencyModel::fit({{0.5, 10}, {0.5, 20}}, 100));
  EXPECT_FALSE(LatencyModel::fit({{0.5, 20}, {0.9, 10}}, 100));
  EXPECT_FALSE(LatencyModel::fit({{0, 20}, {0.9, 10}}, 100));
}

}  // namespace
}  // namespace bulwark::examples::task
