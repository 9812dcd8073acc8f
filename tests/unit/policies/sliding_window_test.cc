#include "policies/sliding_window.h"

#include <gtest/gtest.h>

#include "tests/support/simulated_time.h"

namespace bulwark::policies {
namespace {

using namespace std::chrono_literals;

struct Count {
  int n = 0;
  Count& operator+=(const Count& o) {
    n += o.n;
    return *this;
  }
};

// A sample stays for `buckets` buckets (current included), then disappears.
TEST(SlidingWindowTest, SamplesExpireWithTheirBucket) {
  bulwark::testing::SimulatedTime t;
  SlidingWindow<Count> w(10s, 10);
  EXPECT_EQ(1s, w.bucketWidth());
  EXPECT_EQ(10u, w.bucketCount());
  t.advance(500ms);  // mid-bucket: the simulated clock starts on a bucket boundary
  w.at(t.now()).n += 3;
  t.advance(9s);
  EXPECT_EQ(3, w.sum(t.now()).n);
  w.at(t.now()).n += 1;
  t.advance(499ms);
  EXPECT_EQ(4, w.sum(t.now()).n);
  t.advance(1ms);  // the first bucket is now 10 buckets old
  EXPECT_EQ(1, w.sum(t.now()).n);
  t.advance(1h);  // a long gap: stale slots are neither summed nor reused with old data
  EXPECT_EQ(0, w.sum(t.now()).n);
  w.at(t.now()).n += 2;
  EXPECT_EQ(2, w.sum(t.now()).n);
  w.clear();
  EXPECT_EQ(0, w.sum(t.now()).n);
}

// Instants before the clock's epoch still map to distinct, correctly ordered buckets.
TEST(SlidingWindowTest, NegativeInstants) {
  SlidingWindow<Count> w(3s, 3);
  const MonotonicTime minus_1ns = fromNanos(-1);
  const MonotonicTime zero = fromNanos(0);
  w.at(minus_1ns).n += 1;
  w.at(zero).n += 10;
  EXPECT_EQ(11, w.sum(zero).n);
  EXPECT_EQ(1, w.sum(minus_1ns).n);  // bucket 0 is in the future of -1 ns
  EXPECT_EQ(10, w.sum(fromNanos(3'000'000'000 - 1)).n);
}

// Degenerate sizes are clamped instead of dividing by zero.
TEST(SlidingWindowTest, DegenerateSizes) {
  SlidingWindow<Count> w(0s, 0);
  EXPECT_EQ(1u, w.bucketCount());
  EXPECT_EQ(1ns, w.bucketWidth());
  w.at(fromNanos(5)).n += 1;
  EXPECT_EQ(1, w.sum(fromNanos(5)).n);
  EXPECT_EQ(0, w.sum(fromNanos(6)).n);
}

}  // namespace
}  // namespace bulwark::policies
