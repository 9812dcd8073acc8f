#include "policies/lb/lb_host.h"

#include <chrono>
#include <cmath>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/simulated_time.h"

namespace bulwark::policies::lb {
namespace {

using namespace std::chrono_literals;

constexpr Duration kTau = 10s;

double ms(Duration d) { return std::chrono::duration<double, std::milli>(d).count(); }

TEST(LbHostStateTest, AttemptStartAndEndTrackActiveRequests) {
  testing::SimulatedTime t;
  LbHostState state;
  onAttemptStart(state, t.now());
  onAttemptStart(state, t.now());
  EXPECT_EQ(2u, state.active_requests.load());
  onAttemptEnd(state, 5ms, t.now());
  EXPECT_EQ(1u, state.active_requests.load());
  onAttemptCancelled(state, t.now());
  EXPECT_EQ(0u, state.active_requests.load());
}

// The floor is a lower bound on the age of the oldest attempt in flight: it restarts at every
// end (an attempt older than the last end may still be running, but the floor never overstates),
// and a start on an idle host does not inherit the idle time.
TEST(LbHostStateTest, OutstandingFloorNeverOverstatesTheOldestAttemptsAge) {
  testing::SimulatedTime t;
  LbHostState state;
  EXPECT_EQ(Duration(0), outstandingLatencyFloor(state, t.now()));
  onAttemptStart(state, t.now());  // A at 0
  t.advance(100ms);
  EXPECT_EQ(Duration(100ms), outstandingLatencyFloor(state, t.now()));
  onAttemptStart(state, t.now());  // B at 100
  t.advance(20ms);
  EXPECT_EQ(Duration(120ms), outstandingLatencyFloor(state, t.now()));  // A is 120 ms old
  onAttemptEnd(state, 120ms, t.now());                                  // A answers at 120
  t.advance(30ms);
  EXPECT_EQ(Duration(30ms), outstandingLatencyFloor(state, t.now()));  // B is 50 ms old: >= 30
  onAttemptCancelled(state, t.now());
  EXPECT_EQ(Duration(0), outstandingLatencyFloor(state, t.now()));  // nothing in flight
  t.advance(10s);
  onAttemptStart(state, t.now());
  EXPECT_EQ(Duration(0), outstandingLatencyFloor(state, t.now()));
  t.advance(5ms);
  EXPECT_EQ(Duration(5ms), outstandingLatencyFloor(state, t.now()));
}

// A cancelled attempt's elapsed time raises the estimate (it is a lower bound), never lowers it.
TEST(LbHostStateTest, AbandonedAttemptOnlyRaisesTheEstimate) {
  testing::SimulatedTime t;
  LbHostState state;
  recordLatencyAtLeast(state, 40ms, t.now(), kDefaultEwmaDecay);
  EXPECT_EQ(40ms, ewmaLatency(state, t.now(), kDefaultEwmaDecay, 1ms));
  recordLatencyAtLeast(state, 300ms, t.now(), kDefaultEwmaDecay);
  EXPECT_EQ(300ms, ewmaLatency(state, t.now(), kDefaultEwmaDecay, 1ms));
  recordLatencyAtLeast(state, 5ms, t.now(), kDefaultEwmaDecay);
  EXPECT_EQ(300ms, ewmaLatency(state, t.now(), kDefaultEwmaDecay, 1ms));
}

// An unpaired end must not wrap the counter to 2^32 - 1 (the host would look overloaded forever).
TEST(LbHostStateTest, UnpairedEndSaturatesAtZero) {
  testing::SimulatedTime t;
  LbHostState state;
  onAttemptCancelled(state, t.now());
  EXPECT_EQ(0u, state.active_requests.load());
}

// Workers update one host's state concurrently: no start or end is lost, and the EWMA ends at a
// value some worker recorded (all samples are equal here).
TEST(LbHostStateTest, ConcurrentUpdatesAreNotLost) {
  testing::SimulatedTime t;
  LbHostState state;
  const auto now = t.now();
  std::vector<std::thread> threads;
  for (int w = 0; w < 4; ++w) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        onAttemptStart(state, now);
        onAttemptEnd(state, 7ms, now);
      }
    });
  }
  onAttemptStart(state, now);  // one still in flight at the end
  for (auto& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(1u, state.active_requests.load());
  EXPECT_EQ(Duration(7ms), ewmaLatency(state, now, kTau, 1ms));
}

TEST(LbHostStateTest, AvailableRequiresHealthyAndNotEjected) {
  LbHostState state;
  EXPECT_TRUE(state.available());
  state.ejected = true;
  EXPECT_FALSE(state.available());
  state.ejected = false;
  state.healthy = false;
  EXPECT_FALSE(state.available());
}

TEST(PeakEwmaEstimateTest, DefaultRttBeforeFirstSampleThenFirstSampleIsTheEstimate) {
  testing::SimulatedTime t;
  LbHostState state;
  EXPECT_EQ(Duration(7ms), ewmaLatency(state, t.now(), kTau, 7ms));
  recordLatency(state, 20ms, t.now(), kTau);
  EXPECT_EQ(Duration(20ms), ewmaLatency(state, t.now(), kTau, 7ms));
}

// Peak sensitivity: a slower sample replaces the estimate at once; a faster one is blended in
// with weight 1 - exp(-elapsed / tau).
TEST(PeakEwmaEstimateTest, PeakReplacesImmediatelyAndFasterSamplesDecayIn) {
  testing::SimulatedTime t;
  LbHostState state;
  recordLatency(state, 10ms, t.now(), kTau);
  t.advance(1ms);
  recordLatency(state, 100ms, t.now(), kTau);
  EXPECT_NEAR(100.0, ms(ewmaLatency(state, t.now(), kTau, 1ms)), 1e-6);

  t.advance(kTau);
  recordLatency(state, 10ms, t.now(), kTau);
  const double expected = 100.0 * std::exp(-1.0) + 10.0 * (1.0 - std::exp(-1.0));
  EXPECT_NEAR(expected, ms(ewmaLatency(state, t.now(), kTau, 1ms)), 1e-3);
}

// Reads decay the estimate towards zero without writing, so an idle slow host is probed again.
TEST(PeakEwmaEstimateTest, EstimateDecaysWhileIdleAndReadsDoNotMutate) {
  testing::SimulatedTime t;
  LbHostState state;
  recordLatency(state, 100ms, t.now(), kTau);
  const auto stored = state.ewma_latency_nanos.load();
  t.advance(2 * kTau);
  EXPECT_NEAR(100.0 * std::exp(-2.0), ms(ewmaLatency(state, t.now(), kTau, 1ms)), 1e-3);
  EXPECT_EQ(stored, state.ewma_latency_nanos.load());
}

// A sample stamped before the last update (another worker's clock read a little earlier) is
// treated as simultaneous, never as negative elapsed time that would amplify the estimate.
TEST(PeakEwmaEstimateTest, OutOfOrderSampleDoesNotAmplify) {
  testing::SimulatedTime t;
  LbHostState state;
  const auto earlier = t.now();
  t.advance(1s);
  recordLatency(state, 50ms, t.now(), kTau);
  recordLatency(state, 10ms, earlier, kTau);
  const double value = ms(ewmaLatency(state, t.now(), kTau, 1ms));
  EXPECT_LE(value, 50.0);
  EXPECT_GE(value, 10.0);
}

}  // namespace
}  // namespace bulwark::policies::lb
