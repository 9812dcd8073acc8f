#include "policies/retry/backoff.h"

#include <gtest/gtest.h>

#include "tests/support/fixed_random.h"

namespace bulwark::policies {
namespace {

using namespace std::chrono_literals;
using bulwark::testing::FixedRandom;

// The exponential ceiling doubles from the base and stops at the max, without overflow.
TEST(BackoffTest, CeilingDoublesUpToMax) {
  Backoff backoff({25ms, 250ms, Jitter::None});
  EXPECT_EQ(25ms, backoff.ceiling(0));
  EXPECT_EQ(25ms, backoff.ceiling(1));
  EXPECT_EQ(50ms, backoff.ceiling(2));
  EXPECT_EQ(100ms, backoff.ceiling(3));
  EXPECT_EQ(200ms, backoff.ceiling(4));
  EXPECT_EQ(250ms, backoff.ceiling(5));
  EXPECT_EQ(250ms, backoff.ceiling(64));
  EXPECT_EQ(250ms, backoff.ceiling(UINT32_MAX));
  Backoff huge({std::chrono::hours(1), std::chrono::hours(24 * 365 * 100), Jitter::None});
  EXPECT_EQ(std::chrono::hours(24 * 365 * 100), huge.ceiling(UINT32_MAX));
}

// max < base is clamped up to base; a zero base always gives zero.
TEST(BackoffTest, DegenerateOptions) {
  Backoff inverted({100ms, 10ms, Jitter::None});
  EXPECT_EQ(100ms, inverted.ceiling(5));
  Backoff zero({0ms, 0ms, Jitter::Full});
  FixedRandom random{FixedRandom::kMax};
  EXPECT_EQ(0ms, zero.next(3, random));
}

struct JitterBounds {
  Jitter jitter;
  double low_fraction;   // of the ceiling, inclusive
  double high_fraction;  // of the ceiling, exclusive (inclusive for None)
};

// Over many seeded draws every jitter mode stays in its AWS bounds, and the random modes
// actually spread over the range (near both ends).
TEST(BackoffTest, JitterBoundsOverManySeededDraws) {
  const JitterBounds modes[] = {
      {Jitter::Full, 0.0, 1.0},
      {Jitter::Equal, 0.5, 1.0},
      {Jitter::None, 1.0, 1.0},
  };
  for (const auto& mode : modes) {
    Backoff backoff({25ms, 250ms, mode.jitter});
    SeededRandom random(42);
    for (uint32_t retry = 1; retry <= 8; ++retry) {
      const double ceiling = static_cast<double>(backoff.ceiling(retry).count());
      double lowest = ceiling;
      double highest = 0;
      for (int i = 0; i < 2000; ++i) {
        const double d = static_cast<double>(backoff.next(retry, random).count());
        lowest = std::min(lowest, d);
        highest = std::max(highest, d);
        ASSERT_GE(d, mode.low_fraction * ceiling) << static_cast<int>(mode.jitter) << " " << retry;
        if (mode.jitter == Jitter::None) {
          ASSERT_EQ(d, ceiling);
        } else {
          ASSERT_LT(d, ceiling) << static_cast<int>(mode.jitter) << " " << retry;
        }
      }
      if (mode.jitter != Jitter::None) {
        const double span = (mode.high_fraction - mode.low_fraction) * ceiling;
        EXPECT_LT(lowest, mode.low_fraction * ceiling + 0.02 * span);
        EXPECT_GT(highest, mode.high_fraction * ceiling - 0.02 * span);
      }
    }
  }
}

// Exact values at the extremes of the random source.
TEST(BackoffTest, ExtremesOfTheRandomSource) {
  FixedRandom low{0};
  FixedRandom high{FixedRandom::kMax};
  Backoff full({100ms, 1s, Jitter::Full});
  EXPECT_EQ(0ms, full.next(1, low));
  EXPECT_EQ(std::chrono::nanoseconds(100ms) - std::chrono::nanoseconds(1), full.next(1, high));
  Backoff equal({100ms, 1s, Jitter::Equal});
  EXPECT_EQ(50ms, equal.next(1, low));
  EXPECT_EQ(std::chrono::nanoseconds(100ms) - std::chrono::nanoseconds(1), equal.next(1, high));
  Backoff none({100ms, 1s, Jitter::None});
  EXPECT_EQ(400ms, none.next(3, high));
  EXPECT_EQ(2u, low.calls());   // full and equal drew once each
  EXPECT_EQ(2u, high.calls());  // ... and none did not draw
}

// Same seed, same sequence: retries are reproducible in tests.
TEST(BackoffTest, SeededSequenceIsReproducible) {
  Backoff backoff({25ms, 250ms, Jitter::Full});
  SeededRandom a(7);
  SeededRandom b(7);
  for (uint32_t i = 1; i <= 20; ++i) {
    EXPECT_EQ(backoff.next(i, a), backoff.next(i, b));
  }
}

}  // namespace
}  // namespace bulwark::policies
