#include "policies/circuit_breaker/circuit_breaker.h"

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/simulated_time.h"

namespace bulwark::policies {
namespace {

using namespace std::chrono_literals;
using bulwark::testing::SimulatedTime;

CircuitBreaker::Options opts(uint32_t failure_rate, uint32_t minimum, Duration open,
                             uint32_t half_open = 1) {
  CircuitBreaker::Options o;
  o.failure_rate_threshold = failure_rate;
  o.minimum_requests = minimum;
  o.open_duration = open;
  o.half_open_requests = half_open;
  o.window = 10s;
  o.buckets = 10;
  return o;
}

// Reports `n` calls, `failures` of them failing, all at `latency`.
void record(CircuitBreaker& breaker, SimulatedTime& t, int n, int failures,
            Duration latency = 10ms) {
  for (int i = 0; i < n; ++i) {
    auto permit = breaker.tryAcquire(t.now());
    ASSERT_TRUE(permit) << i;
    breaker.onResult(std::move(*permit), i < failures, latency, t.now());
  }
}

// The textbook sequence: opens at the threshold, fails fast, one probe, closes.
TEST(CircuitBreakerTest, OpensOnFailureRateThenAdmitsOneProbeAfterOpenDuration) {
  CircuitBreaker breaker(opts(50, 4, 5s));
  SimulatedTime t;
  for (int i = 0; i < 4; ++i) {  // two failures out of four: exactly at the threshold
    auto permit = breaker.tryAcquire(t.now());
    ASSERT_TRUE(permit);
    breaker.onResult(std::move(*permit), i % 2 ? Outcome::Http5xx : Outcome::Success, 10ms,
                     t.now());
  }
  EXPECT_EQ(BreakerState::Open, breaker.state());
  EXPECT_EQ(5s, breaker.remainingOpen(t.now()));
  t.advance(4s);
  EXPECT_FALSE(breaker.tryAcquire(t.now()));  // still open: fail fast
  EXPECT_EQ(1s, breaker.remainingOpen(t.now()));
  t.advance(1s);
  auto probe = breaker.tryAcquire(t.now());  // open duration over: one half-open probe
  ASSERT_TRUE(probe);
  EXPECT_TRUE(probe->isProbe());
  EXPECT_EQ(BreakerState::HalfOpen, breaker.state());
  EXPECT_FALSE(breaker.tryAcquire(t.now()));  // a second concurrent probe is refused
  breaker.onResult(std::move(*probe), Outcome::Success, 5ms, t.now());
  EXPECT_EQ(BreakerState::Closed, breaker.state());
  EXPECT_EQ(0s, breaker.remainingOpen(t.now()));
  EXPECT_EQ(1u, breaker.transitions(BreakerState::Closed, BreakerState::Open));
  EXPECT_EQ(1u, breaker.transitions(BreakerState::Open, BreakerState::HalfOpen));
  EXPECT_EQ(1u, breaker.transitions(BreakerState::HalfOpen, BreakerState::Closed));
  EXPECT_EQ(2u, breaker.rejectedTotal());
}

// Below minimumRequests nothing trips, whatever the failure rate.
TEST(CircuitBreakerTest, MinimumRequestsGuard) {
  CircuitBreaker breaker(opts(50, 20, 5s));
  SimulatedTime t;
  record(breaker, t, 19, 19);
  EXPECT_EQ(BreakerState::Closed, breaker.state());
  record(breaker, t, 1, 1);
  EXPECT_EQ(BreakerState::Open, breaker.state());
}

// Just below the threshold stays closed; 4xx-like outcomes are not failures.
TEST(CircuitBreakerTest, ThresholdEdgeAndNonFailures) {
  CircuitBreaker breaker(opts(50, 10, 5s));
  SimulatedTime t;
  record(breaker, t, 10, 4);  // 40 %
  EXPECT_EQ(BreakerState::Closed, breaker.state());
  for (int i = 0; i < 10; ++i) {
    auto p = breaker.tryAcquire(t.now());
    ASSERT_TRUE(p);
    breaker.onResult(std::move(*p), Outcome::Http4xx, 1ms, t.now());
  }
  EXPECT_EQ(BreakerState::Closed, breaker.state());
  EXPECT_EQ(4u, breaker.window(t.now()).failures);
  EXPECT_EQ(20u, breaker.window(t.now()).calls);
}

// Sliding-window edges: failures leave the window when their bucket expires.
TEST(CircuitBreakerTest, SlidingWindowBucketExpiry) {
  CircuitBreaker breaker(opts(50, 10, 5s));
  SimulatedTime t;
  record(breaker, t, 5, 5);  // five failures in bucket 0
  t.advance(9s);             // bucket 9: the failures are still in the window
  EXPECT_EQ(5u, breaker.window(t.now()).failures);
  t.advance(1s);  // bucket 10: bucket 0 has left the 10 s window
  EXPECT_EQ(0u, breaker.window(t.now()).calls);
  record(breaker, t, 5, 5);  // five new failures alone are below minimumRequests
  EXPECT_EQ(BreakerState::Closed, breaker.state());
  record(breaker, t, 5, 0);  // 5 of 10 in the window: trips now
  EXPECT_EQ(BreakerState::Open, breaker.state());
}

// The same five failures 9 s apart are still in one window and trip it.
TEST(CircuitBreakerTest, SlidingWindowKeepsRecentBuckets) {
  CircuitBreaker breaker(opts(50, 10, 5s));
  SimulatedTime t;
  record(breaker, t, 5, 5);
  t.advance(9s);
  record(breaker, t, 4, 0);
  EXPECT_EQ(BreakerState::Closed, breaker.state());  // 5 / 9 calls: below minimumRequests
  record(breaker, t, 1, 0);                          // 5 / 10 = 50 %
  EXPECT_EQ(BreakerState::Open, breaker.state());
}

// Slow calls trip on their own rate, even when every call succeeds.
TEST(CircuitBreakerTest, SlowCallRate) {
  auto o = opts(50, 10, 5s);
  o.slow_call_duration_threshold = 400ms;
  o.slow_call_rate_threshold = 80;
  CircuitBreaker breaker(o);
  SimulatedTime t;
  record(breaker, t, 2, 0, 400ms);  // exactly at the duration threshold: not slow
  record(breaker, t, 7, 0, 401ms);
  EXPECT_EQ(7u, breaker.window(t.now()).slow);
  EXPECT_EQ(BreakerState::Closed, breaker.state());  // 9 calls: below the minimum
  record(breaker, t, 1, 0, 10ms);                    // 7 / 10 slow = 70 %
  EXPECT_EQ(BreakerState::Closed, breaker.state());
  record(breaker, t, 1, 0, 500ms);  // 8 / 11 = 72 %
  EXPECT_EQ(BreakerState::Closed, breaker.state());
  record(breaker, t, 2, 0, 500ms);  // 10 / 13 = 76.9 %
  EXPECT_EQ(BreakerState::Closed, breaker.state());
  record(breaker, t, 2, 0, 500ms);  // 12 / 15 = 80 %
  EXPECT_EQ(BreakerState::Open, breaker.state());
}

// Half-open with N probes: further calls are refused, and a failing majority reopens.
TEST(CircuitBreakerTest, HalfOpenProbesLimitedAndFailureReopens) {
  CircuitBreaker breaker(opts(50, 4, 5s, 3));
  SimulatedTime t;
  record(breaker, t, 4, 4);
  ASSERT_EQ(BreakerState::Open, breaker.state());
  t.advance(5s);
  std::vector<CircuitBreaker::Permit> probes;
  for (int i = 0; i < 3; ++i) {
    auto p = breaker.tryAcquire(t.now());
    ASSERT_TRUE(p) << i;
    probes.push_back(std::move(*p));
  }
  EXPECT_FALSE(breaker.tryAcquire(t.now()));
  breaker.onResult(std::move(probes[0]), true, 1ms, t.now());
  EXPECT_FALSE(breaker.tryAcquire(t.now()));  // a finished probe does not free a slot
  breaker.onResult(std::move(probes[1]), true, 1ms, t.now());
  EXPECT_EQ(BreakerState::HalfOpen, breaker.state());  // waits for every probe
  breaker.onResult(std::move(probes[2]), false, 1ms, t.now());
  EXPECT_EQ(BreakerState::Open, breaker.state());  // 2 / 3 failed >= 50 %
  EXPECT_EQ(5s, breaker.remainingOpen(t.now()));
  EXPECT_EQ(1u, breaker.transitions(BreakerState::HalfOpen, BreakerState::Open));
}

// A probe dropped without a result gives its slot back, so half-open cannot wedge.
TEST(CircuitBreakerTest, AbandonedProbeFreesItsSlot) {
  CircuitBreaker breaker(opts(50, 4, 5s, 1));
  SimulatedTime t;
  record(breaker, t, 4, 4);
  t.advance(5s);
  {
    auto probe = breaker.tryAcquire(t.now());
    ASSERT_TRUE(probe);
    EXPECT_FALSE(breaker.tryAcquire(t.now()));
  }  // destroyed without onResult (e.g. the downstream went away)
  auto again = breaker.tryAcquire(t.now());
  ASSERT_TRUE(again);
  breaker.onResult(std::move(*again), false, 1ms, t.now());
  EXPECT_EQ(BreakerState::Closed, breaker.state());
}

// Results of calls permitted in an earlier state are ignored.
TEST(CircuitBreakerTest, StaleResultsIgnored) {
  CircuitBreaker breaker(opts(50, 4, 5s, 1));
  SimulatedTime t;
  auto slow_closed_call = breaker.tryAcquire(t.now());  // issued while CLOSED
  ASSERT_TRUE(slow_closed_call);
  record(breaker, t, 4, 4);
  ASSERT_EQ(BreakerState::Open, breaker.state());
  t.advance(5s);
  auto probe = breaker.tryAcquire(t.now());
  ASSERT_TRUE(probe);
  // The old call finishes successfully during HALF_OPEN: it must not count as the probe.
  breaker.onResult(std::move(*slow_closed_call), false, 1ms, t.now());
  EXPECT_EQ(BreakerState::HalfOpen, breaker.state());
  breaker.onResult(std::move(*probe), true, 1ms, t.now());
  EXPECT_EQ(BreakerState::Open, breaker.state());
}

// Closing starts a fresh window; the transition callback sees every change in order.
TEST(CircuitBreakerTest, TransitionCallbackAndFreshWindowAfterClose) {
  std::vector<std::pair<BreakerState, BreakerState>> seen;
  CircuitBreaker breaker(opts(50, 4, 1s, 1),
                         [&](BreakerState from, BreakerState to) { seen.emplace_back(from, to); });
  SimulatedTime t;
  record(breaker, t, 4, 4);
  t.advance(1s);
  record(breaker, t, 1, 0);  // the probe succeeds
  ASSERT_EQ(BreakerState::Closed, breaker.state());
  EXPECT_EQ(0u, breaker.window(t.now()).calls);
  record(breaker, t, 3, 3);  // three failures alone are below minimumRequests again
  EXPECT_EQ(BreakerState::Closed, breaker.state());
  const std::vector<std::pair<BreakerState, BreakerState>> expected = {
      {BreakerState::Closed, BreakerState::Open},
      {BreakerState::Open, BreakerState::HalfOpen},
      {BreakerState::HalfOpen, BreakerState::Closed},
  };
  EXPECT_EQ(expected, seen);
  EXPECT_EQ("half_open", breakerStateLabel(BreakerState::HalfOpen));
}

// A zero threshold disables that rate.
TEST(CircuitBreakerTest, ZeroThresholdDisablesRate) {
  auto o = opts(0, 4, 5s);
  o.slow_call_rate_threshold = 0;
  CircuitBreaker breaker(o);
  SimulatedTime t;
  record(breaker, t, 10, 10, 120s);
  EXPECT_EQ(BreakerState::Closed, breaker.state());
}

// Under concurrent callers exactly half_open_requests probes are granted (TSan in CI).
TEST(CircuitBreakerTest, ConcurrentHalfOpenProbesRefusedBeyondLimit) {
  CircuitBreaker breaker(opts(50, 4, 5s, 3));
  SimulatedTime t;
  record(breaker, t, 4, 4);
  t.advance(5s);
  const MonotonicTime now = t.now();
  std::atomic<int> granted{0};
  std::vector<std::vector<CircuitBreaker::Permit>> held(4);
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&, i] {
      for (int j = 0; j < 50; ++j) {
        if (auto p = breaker.tryAcquire(now)) {
          granted.fetch_add(1);
          held[static_cast<size_t>(i)].push_back(std::move(*p));
        }
      }
    });
  }
  for (auto& th : threads) {
    th.join();
  }
  EXPECT_EQ(3, granted.load());
  EXPECT_EQ(BreakerState::HalfOpen, breaker.state());
  EXPECT_EQ(197u, breaker.rejectedTotal());
}

}  // namespace
}  // namespace bulwark::policies
