// The request path's histograms export exactly what prometheus-cpp's Histogram exports for the
// same observations, and lose none when several threads observe at once.

#include "proxy/stats/sharded_histogram.h"

#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>
#include <prometheus/text_serializer.h>

namespace bulwark::stats {
namespace {

std::string text(const std::vector<prometheus::MetricFamily>& families) {
  std::ostringstream out;
  prometheus::TextSerializer().Serialize(out, families);
  return out.str();
}

TEST(ShardedHistogramTest, ExportsWhatPrometheusCppExportsForTheSameObservations) {
  const std::vector<double> bounds = {0.005, 0.01, 0.1, 1, 2.5};
  prometheus::Registry registry;
  auto& reference = prometheus::BuildHistogram()
                        .Name("bulwark_test_seconds")
                        .Help("A test histogram")
                        .Register(registry)
                        .Add({{"route", "r"}, {"code_class", "2xx"}},
                             prometheus::Histogram::BucketBoundaries(bounds));
  ShardedHistogramFamily family("bulwark_test_seconds", "A test histogram", 3);
  ShardedHistogram& ours = family.add({{"route", "r"}, {"code_class", "2xx"}}, bounds);
  // Below the first bound, on bounds (le: counted in that bucket), between, above the last.
  for (const double value : {0.0, 0.001, 0.005, 0.0051, 0.01, 0.5, 1.0, 2.5, 3.0, 1e9}) {
    reference.Observe(value);
    ours.observe(value);
  }
  std::thread other([&] {
    reference.Observe(0.02);
    ours.observe(0.02);
  });
  other.join();
  EXPECT_EQ(text({family.collect()}), text(registry.Collect()));
}

TEST(ShardedHistogramTest, ThreadsObservingAtOnceLoseNothing) {
  ShardedHistogram histogram({1, 2}, 2);  // fewer copies than threads: some share one
  constexpr uint64_t kThreads = 4;
  constexpr uint64_t kEach = 20000;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (uint64_t t = 0; t < kThreads; ++t) {
    threads.emplace_back([&histogram, t] {
      for (uint64_t i = 0; i < kEach; ++i) {
        histogram.observe(t % 2 == 0 ? 0.5 : 1.5);  // exact in binary: the sum is exact too
      }
    });
  }
  for (std::thread& thread : threads) {
    thread.join();
  }
  const prometheus::ClientMetric metric = histogram.collect();
  EXPECT_EQ(metric.histogram.sample_count, kThreads * kEach);
  // Half the threads add 0.5, half 1.5: 1 per observation on average.
  EXPECT_EQ(metric.histogram.sample_sum, static_cast<double>(kEach * kThreads));
  ASSERT_EQ(metric.histogram.bucket.size(), 3u);
  EXPECT_EQ(metric.histogram.bucket[0].cumulative_count, kThreads / 2 * kEach);
  EXPECT_EQ(metric.histogram.bucket[1].cumulative_count, kThreads * kEach);
  EXPECT_EQ(metric.histogram.bucket[2].cumulative_count, kThreads * kEach);
}

TEST(ShardedHistogramTest, TheSameLabelsGiveTheSameHistogram) {
  ShardedHistogramFamily family("h", "help", 2);
  ShardedHistogram& first = family.add({{"route", "a"}}, {1});
  EXPECT_EQ(&first, &family.add({{"route", "a"}}, {1, 2}));
  EXPECT_NE(&first, &family.add({{"route", "b"}}, {1}));
  EXPECT_EQ(family.collect().metric.size(), 2u);
}

}  // namespace
}  // namespace bulwark::stats
