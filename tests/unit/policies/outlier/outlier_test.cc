#include <gtest/gtest.h>

#include "policies/outlier/outlier_detector.h"
#include "tests/support/simulated_time.h"

namespace bulwark::policies {
namespace {

using namespace std::chrono_literals;
using bulwark::testing::SimulatedTime;

OutlierDetector::Options opts() {
  OutlierDetector::Options o;
  o.consecutive_5xx = 5;
  o.consecutive_gateway_errors = 3;
  o.consecutive_local_origin_failures = 5;
  o.base_ejection_time = 30s;
  o.max_ejection_time = 100s;
  o.max_ejection_percent = 50;
  return o;
}

// Feeds `n` copies of `outcome` to host `h`; returns the last event.
std::optional<OutlierEvent> feed(OutlierDetector& d, size_t h, Outcome outcome, int n,
                                 MonotonicTime now) {
  std::optional<OutlierEvent> last;
  for (int i = 0; i < n; ++i) {
    last = d.onResult(h, outcome, now);
  }
  return last;
}

// Five consecutive 5xx eject; a success in between resets the count.
TEST(OutlierDetectorTest, Consecutive5xx) {
  OutlierDetector d(opts(), 4);
  SimulatedTime t;
  EXPECT_FALSE(feed(d, 0, Outcome::Http5xx, 4, t.now()));
  EXPECT_FALSE(d.onResult(0, Outcome::Success, t.now()));
  EXPECT_FALSE(feed(d, 0, Outcome::Http5xx, 4, t.now()));
  const auto ev = d.onResult(0, Outcome::Http5xx, t.now());
  ASSERT_TRUE(ev);
  EXPECT_EQ(OutlierEvent::Kind::Ejected, ev->kind);
  EXPECT_EQ(EjectionReason::Consecutive5xx, ev->reason);
  EXPECT_EQ(t.now() + 30s, ev->until);
  EXPECT_TRUE(d.isEjected(0, t.now()));
  EXPECT_FALSE(d.isEjected(1, t.now()));
  EXPECT_EQ("consecutive_5xx", ejectionReasonLabel(ev->reason));
}

// Gateway errors (502/503/504, gRPC UNAVAILABLE) have their own, lower threshold; a 500 in
// between resets that count but not the 5xx count.
TEST(OutlierDetectorTest, ConsecutiveGatewayErrors) {
  OutlierDetector d(opts(), 4);
  SimulatedTime t;
  feed(d, 1, Outcome::GatewayError, 2, t.now());
  EXPECT_FALSE(d.onResult(1, Outcome::Http5xx, t.now()));  // gateway count back to 0
  feed(d, 1, Outcome::GrpcUnavailable, 1, t.now());
  EXPECT_FALSE(d.isEjected(1, t.now()));
  // 5xx count is now 4 (2 + 1 + 1); the next gateway error makes gateway=2, 5xx=5.
  const auto ev = d.onResult(1, Outcome::GatewayError, t.now());
  ASSERT_TRUE(ev);
  EXPECT_EQ(EjectionReason::Consecutive5xx, ev->reason);

  feed(d, 2, Outcome::GatewayError, 2, t.now());
  const auto gw = d.onResult(2, Outcome::GrpcDeadlineExceeded, t.now());
  ASSERT_TRUE(gw);
  EXPECT_EQ(EjectionReason::ConsecutiveGatewayError, gw->reason);
}

// Local-origin failures count separately: a 5xx response resets them (the path works).
TEST(OutlierDetectorTest, ConsecutiveLocalOriginFailures) {
  OutlierDetector d(opts(), 4);
  SimulatedTime t;
  feed(d, 0, Outcome::ConnectFailure, 4, t.now());
  d.onResult(0, Outcome::GatewayError, t.now());  // an answer: local count resets
  EXPECT_FALSE(feed(d, 0, Outcome::Reset, 4, t.now()));
  d.onResult(0, Outcome::GoAwayBeforeProcessing, t.now());  // draining: neither
  const auto ev = d.onResult(0, Outcome::ConnectTimeout, t.now());
  ASSERT_TRUE(ev);
  EXPECT_EQ(EjectionReason::ConsecutiveLocalOriginFailure, ev->reason);
}

// Ejection time grows as base x times ejected and stops at the cap.
TEST(OutlierDetectorTest, EjectionTimeGrowsAndIsCapped) {
  OutlierDetector d(opts(), 4);
  SimulatedTime t;
  const Duration expected[] = {30s, 60s, 90s, 100s, 100s};
  for (const Duration want : expected) {
    const auto ev = feed(d, 0, Outcome::Http5xx, 5, t.now());
    ASSERT_TRUE(ev);
    ASSERT_EQ(OutlierEvent::Kind::Ejected, ev->kind);
    EXPECT_EQ(want, ev->until - t.now());
    t.advance(want - 1ns);
    EXPECT_TRUE(d.isEjected(0, t.now()));
    t.advance(1ns);
    EXPECT_FALSE(d.isEjected(0, t.now()));  // un-ejected exactly when the time passes
  }
  EXPECT_EQ(5u, d.timesEjected(0));
}

// Late results while ejected are ignored; the sweep reports the un-ejection once.
TEST(OutlierDetectorTest, UnejectionReportedBySweep) {
  OutlierDetector d(opts(), 4);
  SimulatedTime t;
  feed(d, 3, Outcome::Http5xx, 5, t.now());
  EXPECT_FALSE(feed(d, 3, Outcome::Http5xx, 20, t.now()));  // in-flight results, ignored
  EXPECT_TRUE(d.onInterval(t.now()).empty());
  t.advance(30s);
  const auto events = d.onInterval(t.now());
  ASSERT_EQ(1u, events.size());
  EXPECT_EQ(OutlierEvent::Kind::Unejected, events[0].kind);
  EXPECT_EQ(3u, events[0].host);
  EXPECT_TRUE(d.onInterval(t.now()).empty());
  EXPECT_FALSE(feed(d, 3, Outcome::Http5xx, 4, t.now()));  // counters restarted at ejection
}

// maxEjectionPercent (post-ejection percentage) limits ejections; the skipped host is ejected
// on its next failure once room exists.
TEST(OutlierDetectorTest, MaxEjectionPercent) {
  auto o = opts();
  o.max_ejection_percent = 50;
  OutlierDetector d(o, 4);
  SimulatedTime t;
  ASSERT_EQ(OutlierEvent::Kind::Ejected, feed(d, 0, Outcome::Http5xx, 5, t.now())->kind);
  ASSERT_EQ(OutlierEvent::Kind::Ejected, feed(d, 1, Outcome::Http5xx, 5, t.now())->kind);
  const auto skipped = feed(d, 2, Outcome::Http5xx, 5, t.now());  // 3 / 4 = 75 % > 50 %
  ASSERT_TRUE(skipped);
  EXPECT_EQ(OutlierEvent::Kind::EjectionSkipped, skipped->kind);
  EXPECT_FALSE(d.isEjected(2, t.now()));
  EXPECT_EQ(2u, d.ejectedCount(t.now()));
  t.advance(30s);  // hosts 0 and 1 return
  const auto ev = d.onResult(2, Outcome::Http5xx, t.now());
  ASSERT_TRUE(ev);
  EXPECT_EQ(OutlierEvent::Kind::Ejected, ev->kind);
}

// An early uneject (a passing active health check) ends the ejection at once; the host's
// failures count again and eject it anew, for base x times ejected (the count is kept), and no
// Unejected event follows for the ended ejection.
TEST(OutlierDetectorTest, EarlyUnejectLetsFreshFailuresEjectAgain) {
  OutlierDetector d(opts(), 4);
  SimulatedTime t;
  EXPECT_FALSE(d.uneject(0, t.now()));  // not ejected: nothing to end
  EXPECT_FALSE(d.uneject(9, t.now()));  // out of range
  ASSERT_EQ(OutlierEvent::Kind::Ejected, feed(d, 0, Outcome::Http5xx, 5, t.now())->kind);
  t.advance(1s);
  EXPECT_FALSE(feed(d, 0, Outcome::Http5xx, 3, t.now()));  // ignored while ejected
  EXPECT_TRUE(d.uneject(0, t.now()));
  EXPECT_FALSE(d.isEjected(0, t.now()));
  EXPECT_EQ(0u, d.ejectedCount(t.now()));
  EXPECT_EQ(1u, d.timesEjected(0));
  EXPECT_FALSE(d.uneject(0, t.now()));                     // already back
  EXPECT_FALSE(feed(d, 0, Outcome::Http5xx, 4, t.now()));  // counting from zero again
  const auto ev = d.onResult(0, Outcome::Http5xx, t.now());
  ASSERT_TRUE(ev);
  EXPECT_EQ(OutlierEvent::Kind::Ejected, ev->kind);
  EXPECT_EQ(60s, ev->until - t.now());  // 2 x base: times ejected survived the uneject
  EXPECT_EQ(2u, d.timesEjected(0));
  EXPECT_TRUE(d.isEjected(0, t.now()));

  // Without new failures, the ended ejection's original deadline reports nothing.
  EXPECT_TRUE(d.uneject(0, t.now()));
  t.advance(100s);
  EXPECT_TRUE(d.onInterval(t.now()).empty());
  EXPECT_FALSE(d.isEjected(0, t.now()));
}

// An early uneject frees the host's share of maxEjectionPercent at once: a host skipped for
// lack of room is ejected on its next failure, long before the original ejection would end.
TEST(OutlierDetectorTest, EarlyUnejectNoLongerCountsTowardsMaxEjectionPercent) {
  OutlierDetector d(opts(), 4);  // 50 %
  SimulatedTime t;
  ASSERT_EQ(OutlierEvent::Kind::Ejected, feed(d, 0, Outcome::Http5xx, 5, t.now())->kind);
  ASSERT_EQ(OutlierEvent::Kind::Ejected, feed(d, 1, Outcome::Http5xx, 5, t.now())->kind);
  ASSERT_EQ(OutlierEvent::Kind::EjectionSkipped, feed(d, 2, Outcome::Http5xx, 5, t.now())->kind);
  t.advance(1s);
  ASSERT_EQ(OutlierEvent::Kind::EjectionSkipped, d.onResult(2, Outcome::Http5xx, t.now())->kind);
  ASSERT_TRUE(d.uneject(0, t.now()));
  EXPECT_EQ(1u, d.ejectedCount(t.now()));
  const auto ev = d.onResult(2, Outcome::Http5xx, t.now());
  ASSERT_TRUE(ev);
  EXPECT_EQ(OutlierEvent::Kind::Ejected, ev->kind);
  EXPECT_EQ(2u, d.ejectedCount(t.now()));
  // Host 0 now finds no room either (hosts 1 and 2 fill the 50 %).
  EXPECT_EQ(OutlierEvent::Kind::EjectionSkipped, feed(d, 0, Outcome::Http5xx, 5, t.now())->kind);
}

// Results counted before an ejection do not carry over into failure percentage after an early
// uneject: the host is judged on what it serves once it is back.
TEST(OutlierDetectorTest, EarlyUnejectClearsFailurePercentageCounts) {
  auto o = opts();
  o.consecutive_gateway_errors = 0;
  o.failure_percentage_threshold = 30;
  o.failure_percentage_minimum_hosts = 1;
  o.failure_percentage_request_volume = 10;
  o.max_ejection_percent = 100;
  SimulatedTime t;
  auto run = [&](bool uneject_early) {
    OutlierDetector d(o, 2);
    EXPECT_EQ(OutlierEvent::Kind::Ejected, feed(d, 0, Outcome::Http5xx, 5, t.now())->kind);
    t.advance(1s);
    if (uneject_early) {
      EXPECT_TRUE(d.uneject(0, t.now()));
    } else {
      t.advance(30s);  // the ejection runs out on time
    }
    feed(d, 0, Outcome::Success, 10, t.now());
    return d.onInterval(t.now());
  };
  // Ended on time: 5 failures of 15 results (33 %) eject by failure percentage.
  const auto on_time = run(false);
  ASSERT_EQ(2u, on_time.size());
  EXPECT_EQ(OutlierEvent::Kind::Unejected, on_time[0].kind);
  EXPECT_EQ(OutlierEvent::Kind::Ejected, on_time[1].kind);
  EXPECT_EQ(EjectionReason::FailurePercentage, on_time[1].reason);
  // Ended early: 0 failures of 10.
  EXPECT_TRUE(run(true).empty());
}

// Small upstreams: 10 % of 3 hosts allows no ejection at all, unless always_eject_one_host.
TEST(OutlierDetectorTest, AlwaysEjectOneHost) {
  auto o = opts();
  o.max_ejection_percent = 10;
  o.always_eject_one_host = false;
  OutlierDetector strict(o, 3);
  SimulatedTime t;
  EXPECT_EQ(OutlierEvent::Kind::EjectionSkipped,
            feed(strict, 0, Outcome::Http5xx, 5, t.now())->kind);

  o.always_eject_one_host = true;
  OutlierDetector lenient(o, 3);
  EXPECT_EQ(OutlierEvent::Kind::Ejected, feed(lenient, 0, Outcome::Http5xx, 5, t.now())->kind);
  EXPECT_EQ(OutlierEvent::Kind::EjectionSkipped,
            feed(lenient, 1, Outcome::Http5xx, 5, t.now())->kind);
}

// Failure percentage: evaluated per interval over hosts with enough volume, only when enough
// hosts qualify.
TEST(OutlierDetectorTest, FailurePercentage) {
  auto o = opts();
  o.consecutive_5xx = 0;
  o.consecutive_gateway_errors = 0;
  o.consecutive_local_origin_failures = 0;
  o.failure_percentage_threshold = 50;
  o.failure_percentage_minimum_hosts = 3;
  o.failure_percentage_request_volume = 10;
  o.max_ejection_percent = 100;
  OutlierDetector d(o, 4);
  SimulatedTime t;
  auto mixed = [&](size_t h, int failures, int total) {
    for (int i = 0; i < total; ++i) {
      d.onResult(h, i < failures ? Outcome::GatewayError : Outcome::Success, t.now());
    }
  };
  mixed(0, 6, 10);  // 60 %
  mixed(1, 5, 10);  // 50 %: at the threshold
  mixed(2, 4, 10);  // 40 %
  mixed(3, 9, 9);   // 100 % but below the request volume
  auto events = d.onInterval(t.now());
  ASSERT_EQ(2u, events.size());
  EXPECT_EQ(0u, events[0].host);
  EXPECT_EQ(1u, events[1].host);
  EXPECT_EQ(EjectionReason::FailurePercentage, events[0].reason);
  EXPECT_FALSE(d.isEjected(3, t.now()));

  // Next interval: only two hosts have volume: below minimum_hosts, nothing is evaluated.
  mixed(2, 10, 10);
  mixed(3, 10, 10);
  EXPECT_TRUE(d.onInterval(t.now()).empty());
}

// With ignore_pushback a host shedding load (503 + Retry-After, gRPC UNAVAILABLE with
// grpc-retry-pushback-ms) is never ejected, by no rule, while one answering 500 or a bare 503 to
// everything still is; without the option both count, as in Envoy.
TEST(OutlierDetectorTest, IgnorePushbackKeepsSheddingHostsIn) {
  auto o = opts();
  o.consecutive_5xx = 5;
  o.consecutive_gateway_errors = 3;
  o.failure_percentage_threshold = 50;
  o.failure_percentage_minimum_hosts = 2;
  o.failure_percentage_request_volume = 10;
  o.max_ejection_percent = 100;
  o.ignore_pushback = true;
  OutlierDetector d(o, 3);
  SimulatedTime t;
  for (int i = 0; i < 20; ++i) {
    EXPECT_FALSE(d.onResult(0, Outcome::GatewayError, t.now(), /*pushback=*/true));
    EXPECT_FALSE(d.onResult(1, Outcome::GrpcUnavailable, t.now(), /*pushback=*/true));
    d.onResult(2, Outcome::Success, t.now());
  }
  EXPECT_FALSE(d.isEjected(0, t.now()));
  EXPECT_FALSE(d.isEjected(1, t.now()));
  EXPECT_TRUE(d.onInterval(t.now()).empty());  // no failure-percentage sample either

  // Pushback answers neither count nor reset: the bare 5xx around them still add up.
  feed(d, 0, Outcome::Http5xx, 2, t.now());
  d.onResult(0, Outcome::GatewayError, t.now(), /*pushback=*/true);
  feed(d, 0, Outcome::Http5xx, 2, t.now());
  EXPECT_FALSE(d.isEjected(0, t.now()));
  const auto ev = d.onResult(0, Outcome::Http5xx, t.now());
  ASSERT_TRUE(ev);
  EXPECT_EQ(EjectionReason::Consecutive5xx, ev->reason);
  const auto bare = feed(d, 1, Outcome::GatewayError, 3, t.now());
  ASSERT_TRUE(bare);
  EXPECT_EQ(EjectionReason::ConsecutiveGatewayError, bare->reason);

  // Off (the default): pushback answers are failures like any other.
  o.ignore_pushback = false;
  OutlierDetector counted(o, 3);
  bool ejected = false;
  for (int i = 0; i < 3; ++i) {
    ejected = counted.onResult(0, Outcome::GatewayError, t.now(), /*pushback=*/true).has_value();
  }
  EXPECT_TRUE(ejected);
}

// The multiplier decays only in intervals where the host served successes.
TEST(OutlierDetectorTest, MultiplierDecaysOnlyWithEvidenceOfHealth) {
  OutlierDetector d(opts(), 4);
  SimulatedTime t;
  feed(d, 0, Outcome::Http5xx, 5, t.now());
  t.advance(30s);
  feed(d, 0, Outcome::Http5xx, 5, t.now());
  EXPECT_EQ(2u, d.timesEjected(0));
  t.advance(60s);
  d.onInterval(t.now());  // un-ejected, but no traffic yet
  d.onInterval(t.now());  // a silent interval: no decay
  EXPECT_EQ(2u, d.timesEjected(0));
  d.onResult(0, Outcome::Success, t.now());
  d.onInterval(t.now());
  EXPECT_EQ(1u, d.timesEjected(0));
  const auto ev = feed(d, 0, Outcome::Http5xx, 5, t.now());
  ASSERT_TRUE(ev);
  EXPECT_EQ(60s, ev->until - t.now());  // 2 x base after one decay step
}

// Host-set changes keep state for remaining indexes; out-of-range reports are ignored.
TEST(OutlierDetectorTest, HostCountChanges) {
  OutlierDetector d(opts(), 2);
  SimulatedTime t;
  feed(d, 1, Outcome::Http5xx, 5, t.now());
  EXPECT_FALSE(d.onResult(7, Outcome::Http5xx, t.now()));
  d.setHostCount(4);
  EXPECT_EQ(4u, d.hostCount());
  EXPECT_TRUE(d.isEjected(1, t.now()));
  EXPECT_FALSE(d.isEjected(3, t.now()));
  d.setHostCount(1);
  EXPECT_EQ(0u, d.ejectedCount(t.now()));
}

// Panic threshold: below it, health is ignored.
TEST(OutlierDetectorTest, PanicMode) {
  EXPECT_FALSE(inPanicMode(5, 10, 50));  // exactly 50 %: not panic
  EXPECT_TRUE(inPanicMode(4, 10, 50));
  EXPECT_TRUE(inPanicMode(0, 3, 50));
  EXPECT_FALSE(inPanicMode(0, 3, 0));   // disabled
  EXPECT_FALSE(inPanicMode(0, 0, 50));  // no hosts: nothing to spread over
  EXPECT_FALSE(inPanicMode(3, 3, 100));
  EXPECT_TRUE(inPanicMode(2, 3, 100));
}

}  // namespace
}  // namespace bulwark::policies
