#include "policies/load_shed/adaptive_limit.h"

#include <vector>

#include <gtest/gtest.h>

#include "policies/load_shed/admission_policy.h"
#include "tests/support/fixed_random.h"

namespace bulwark::policies {
namespace {

using namespace std::chrono_literals;

LimitSample window(Duration latency, uint32_t inflight, bool dropped = false,
                   uint64_t count = 100) {
  return {latency, count, inflight, dropped};
}

GradientLimit::Options gradientOpts(uint32_t initial) {
  GradientLimit::Options o;
  o.min_limit = 8;
  o.max_limit = 1000;
  o.initial_limit = initial;
  return o;
}

// Steady latency at the baseline: the limit grows by the 25 % buffer plus sqrt headroom.
TEST(GradientLimitTest, GrowsWhileLatencyStaysAtBaseline) {
  GradientLimit limit(gradientOpts(100));
  EXPECT_EQ(100u, limit.limit());
  EXPECT_EQ(136u, limit.update(window(10ms, 100)));  // 1.25 * 100 = 125, + sqrt(125)
  EXPECT_DOUBLE_EQ(1.25, limit.lastGradient());
  EXPECT_EQ(10ms, limit.baseline());
  uint32_t previous = limit.limit();
  for (int i = 0; i < 20; ++i) {
    const uint32_t next = limit.update(window(10ms, limit.limit()));
    EXPECT_GE(next, previous);
    previous = next;
  }
  EXPECT_EQ(1000u, limit.limit());  // capped at max_limit
}

// Latency rising above the baseline shrinks the limit, by at most half per window.
TEST(GradientLimitTest, ShrinksWhenLatencyRises) {
  GradientLimit limit(gradientOpts(400));
  limit.update(window(10ms, 400));  // seeds the baseline at 10 ms
  const uint32_t before = limit.limit();
  const uint32_t after = limit.update(window(20ms, before));
  EXPECT_LT(after, before);
  EXPECT_NEAR(0.625, limit.lastGradient(), 0.01);
  const uint32_t halved = limit.update(window(200ms, after));
  EXPECT_DOUBLE_EQ(0.5, limit.lastGradient());  // clamped: at most half per window
  EXPECT_GE(halved, after / 2);
  EXPECT_LT(halved, after);
  for (int i = 0; i < 30; ++i) {
    limit.update(window(200ms, limit.limit()));
  }
  EXPECT_EQ(8u, limit.limit());  // floored at min_limit
}

// An app-limited window (peak in flight below half the limit) never raises the limit.
TEST(GradientLimitTest, AppLimitedWindowDoesNotGrow) {
  GradientLimit limit(gradientOpts(100));
  EXPECT_EQ(100u, limit.update(window(10ms, 49)));
  EXPECT_EQ(136u, limit.update(window(10ms, 50)));
}

// Windows with too few samples change nothing (not even the baseline).
TEST(GradientLimitTest, SparseWindowsIgnored) {
  GradientLimit limit(gradientOpts(100));
  EXPECT_EQ(100u, limit.update(window(10ms, 100, false, 9)));
  EXPECT_EQ(0ns, limit.baseline());
  EXPECT_EQ(100u, limit.update(window(0ms, 100)));
}

// After a long overload the baseline is pulled down quickly once latency recovers.
TEST(GradientLimitTest, BaselineRecoversAfterOverload) {
  auto o = gradientOpts(100);
  o.long_window = 10;
  GradientLimit limit(o);
  for (int i = 0; i < 50; ++i) {
    limit.update(window(100ms, limit.limit()));
  }
  const double baseline_ms = std::chrono::duration<double, std::milli>(limit.baseline()).count();
  EXPECT_NEAR(100.0, baseline_ms, 1.0);
  limit.update(window(10ms, limit.limit()));
  // EWMA alone would leave ~83.6 ms; the recovery factor (x0.95) applies on top.
  EXPECT_LT(limit.baseline(), 80ms);
}

AimdLimit::Options aimdOpts(uint32_t initial) {
  AimdLimit::Options o;
  o.min_limit = 4;
  o.max_limit = 30;
  o.initial_limit = initial;
  return o;
}

// AIMD: +1 per busy uncongested window, x0.9 on drops, bounded by min and max.
TEST(AimdLimitTest, AdditiveIncreaseMultiplicativeDecrease) {
  AimdLimit limit(aimdOpts(20));
  EXPECT_EQ(21u, limit.update(window(10ms, 20)));
  EXPECT_EQ(22u, limit.update(window(10ms, 11)));        // 11 * 2 >= 21
  EXPECT_EQ(22u, limit.update(window(10ms, 10)));        // app-limited: 10 * 2 < 22
  EXPECT_EQ(19u, limit.update(window(10ms, 22, true)));  // floor(22 * 0.9)
  for (int i = 0; i < 50; ++i) {
    limit.update(window(10ms, 100));
  }
  EXPECT_EQ(30u, limit.limit());
  for (int i = 0; i < 50; ++i) {
    limit.update(window(10ms, 100, true));
  }
  EXPECT_EQ(4u, limit.limit());
}

// AIMD also backs off on latency: relative to its baseline, or above an absolute threshold.
TEST(AimdLimitTest, LatencyCongestion) {
  AimdLimit relative(aimdOpts(20));
  relative.update(window(10ms, 20));                  // baseline 10 ms, limit 21
  EXPECT_EQ(22u, relative.update(window(20ms, 21)));  // exactly 2x baseline: not congested
  EXPECT_EQ(19u, relative.update(window(25ms, 22)));  // above 2x: floor(22 * 0.9)

  auto o = aimdOpts(20);
  o.latency_threshold = 50ms;
  AimdLimit absolute(o);
  EXPECT_EQ(18u, absolute.update(window(60ms, 20)));  // above 50 ms
  EXPECT_EQ(19u, absolute.update(window(40ms, 20)));
}

// The factory validates the algorithm name and bounds.
TEST(AdaptiveLimitFactoryTest, MakesKnownAlgorithms) {
  auto g = makeAdaptiveLimit("gradient", 8, 64);
  ASSERT_TRUE(g.isOk()) << g.error();
  EXPECT_EQ("gradient", (*g)->name());
  EXPECT_EQ(8u, (*g)->limit());
  auto a = makeAdaptiveLimit("aimd", 8, 64);
  ASSERT_TRUE(a.isOk());
  EXPECT_EQ("aimd", (*a)->name());
  EXPECT_FALSE(makeAdaptiveLimit("vegas", 8, 64).isOk());
  EXPECT_FALSE(makeAdaptiveLimit("gradient", 0, 64).isOk());
  EXPECT_FALSE(makeAdaptiveLimit("gradient", 65, 64).isOk());
}

// Nearest-rank percentiles, and a reservoir that never grows past its capacity.
TEST(LatencySamplesTest, PercentileAndBoundedMemory) {
  bulwark::testing::FixedRandom random{0};
  LatencySamples samples(100);
  EXPECT_EQ(0ns, samples.percentile(0.9));
  for (int i = 1; i <= 100; ++i) {
    samples.add(std::chrono::milliseconds(i), random);
  }
  EXPECT_EQ(90ms, samples.percentile(0.9));
  EXPECT_EQ(50ms, samples.percentile(0.5));
  EXPECT_EQ(1ms, samples.percentile(0.0));
  EXPECT_EQ(100ms, samples.percentile(1.0));
  for (int i = 0; i < 1000; ++i) {
    samples.add(1s, random);  // FixedRandom{0}: always replaces slot 0
  }
  EXPECT_EQ(1100u, samples.seen());
  EXPECT_EQ(1s, samples.percentile(1.0));
  EXPECT_EQ(91ms, samples.percentile(0.9));  // held: 2..100 ms and one 1 s

  LatencySamples other(100);
  other.add(5ms, random);
  LatencySamples merged(1000);
  merged.merge(samples, random);
  merged.merge(other, random);
  EXPECT_EQ(1101u, merged.seen());
  samples.clear();
  EXPECT_EQ(0u, samples.seen());
}

// Priority parsing is case-insensitive; unknown values are left to the caller.
TEST(PriorityTest, Parse) {
  EXPECT_EQ(Priority::Critical, parsePriority("critical"));
  EXPECT_EQ(Priority::Critical, parsePriority(" CRITICAL "));
  EXPECT_EQ(Priority::Default, parsePriority("Default"));
  EXPECT_EQ(Priority::Sheddable, parsePriority("sheddable"));
  EXPECT_FALSE(parsePriority("high"));
  EXPECT_FALSE(parsePriority(""));
  EXPECT_EQ("sheddable", priorityLabel(Priority::Sheddable));
}

// Bounds: sheddable at 80 %, default at 100 %, critical at +10 % (at least one).
TEST(PriorityTest, AdmissionBounds) {
  EXPECT_EQ(80u, admissionBound(Priority::Sheddable, 100));
  EXPECT_EQ(100u, admissionBound(Priority::Default, 100));
  EXPECT_EQ(110u, admissionBound(Priority::Critical, 100));
  EXPECT_EQ(1u, admissionBound(Priority::Sheddable, 1));
  EXPECT_EQ(2u, admissionBound(Priority::Critical, 1));
  EXPECT_EQ(6u, admissionBound(Priority::Sheddable, 8));
}

// Under rising load the lowest priority is shed first, and critical still gets in.
TEST(PriorityTest, ShedsLowestPriorityFirst) {
  PriorityAdmission admission;
  std::vector<ConcurrencyLimit::Permit> held;
  constexpr uint32_t kLimit = 10;
  while (auto p = admission.tryAdmit(Priority::Sheddable, kLimit)) {
    held.push_back(std::move(*p));
  }
  EXPECT_EQ(8u, admission.inflight());
  while (auto p = admission.tryAdmit(Priority::Default, kLimit)) {
    held.push_back(std::move(*p));
  }
  EXPECT_EQ(10u, admission.inflight());
  EXPECT_FALSE(admission.tryAdmit(Priority::Sheddable, kLimit));
  auto critical = admission.tryAdmit(Priority::Critical, kLimit);
  ASSERT_TRUE(critical);
  EXPECT_FALSE(admission.tryAdmit(Priority::Critical, kLimit));
  EXPECT_EQ(11u, admission.takePeakInflight());
  held.clear();
  critical.reset();
  EXPECT_EQ(0u, admission.inflight());
  EXPECT_EQ(11u, admission.takePeakInflight());  // this window began with 11 in flight
  EXPECT_EQ(0u, admission.takePeakInflight());
}

}  // namespace
}  // namespace bulwark::policies
