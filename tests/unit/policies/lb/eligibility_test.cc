// The eligibility rules every algorithm shares (load_balancer.h): unavailable hosts skipped,
// panic mode, retries avoiding attempted hosts, live flags seen without a rebuild.

#include <set>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "policies/lb/hash.h"
#include "tests/unit/policies/lb/lb_test_util.h"

namespace bulwark::policies::lb {
namespace {

using lbtest::makeBalancer;
using lbtest::makeEqualHosts;

class EligibilityTest : public ::testing::TestWithParam<std::string> {
protected:
  // A context with a fresh hash key per call, so hash algorithms spread over hosts too.
  LbContext nextContext() {
    LbContext ctx;
    ctx.hash_key = hashKey("key-" + std::to_string(key_++));
    return ctx;
  }

  SeededRandom random_{42};
  uint64_t key_ = 0;
};

TEST_P(EligibilityTest, EmptySnapshotPicksNothing) {
  auto hosts = makeEqualHosts(0);
  auto lb = makeBalancer(GetParam(), hosts);
  ASSERT_NE(nullptr, lb);
  EXPECT_FALSE(lb->createPicker(random_)->pick(nextContext()).has_value());
}

// Ejected and unhealthy hosts get nothing while others are available; the flags are live, so
// no rebuild of the balancer is needed.
TEST_P(EligibilityTest, UnavailableHostsAreSkipped) {
  auto hosts = makeEqualHosts(4);
  auto lb = makeBalancer(GetParam(), hosts);
  ASSERT_NE(nullptr, lb);
  auto picker = lb->createPicker(random_);
  hosts.state(1).ejected = true;
  hosts.state(2).healthy = false;
  std::set<uint32_t> seen;
  for (int i = 0; i < 400; ++i) {
    auto host = picker->pick(nextContext());
    ASSERT_TRUE(host.has_value());
    seen.insert(*host);
  }
  EXPECT_EQ((std::set<uint32_t>{0, 3}), seen);

  hosts.state(1).ejected = false;  // un-ejected: used again
  seen.clear();
  for (int i = 0; i < 400; ++i) {
    seen.insert(*picker->pick(nextContext()));
  }
  EXPECT_EQ((std::set<uint32_t>{0, 1, 3}), seen);
}

// Panic mode: with every host ejected, balancing continues over all of them instead of failing.
TEST_P(EligibilityTest, AllUnavailablePanicsOverAllHosts) {
  auto hosts = makeEqualHosts(3);
  auto lb = makeBalancer(GetParam(), hosts);
  ASSERT_NE(nullptr, lb);
  auto picker = lb->createPicker(random_);
  hosts.state(0).ejected = true;
  hosts.state(1).ejected = true;
  hosts.state(2).healthy = false;
  std::set<uint32_t> seen;
  for (int i = 0; i < 300; ++i) {
    auto host = picker->pick(nextContext());
    ASSERT_TRUE(host.has_value());
    seen.insert(*host);
  }
  EXPECT_EQ((std::set<uint32_t>{0, 1, 2}), seen);
}

// With a panic threshold, too few available hosts also means "use all" (Envoy semantics), and
// enough available hosts means the ejected one stays excluded.
TEST_P(EligibilityTest, PanicThresholdPercent) {
  auto hosts = makeEqualHosts(4);
  LbConfig config;
  config.panic_threshold_percent = 50;
  auto lb = makeBalancer(GetParam(), hosts, config);
  ASSERT_NE(nullptr, lb);
  auto picker = lb->createPicker(random_);

  hosts.state(0).ejected = true;  // 3 of 4 available (75% >= 50%): no panic
  std::set<uint32_t> seen;
  for (int i = 0; i < 400; ++i) {
    seen.insert(*picker->pick(nextContext()));
  }
  EXPECT_EQ(0u, seen.count(0));

  hosts.state(1).ejected = true;
  hosts.state(2).ejected = true;  // 1 of 4 available (25% < 50%): panic, all hosts used
  seen.clear();
  for (int i = 0; i < 400; ++i) {
    seen.insert(*picker->pick(nextContext()));
  }
  EXPECT_EQ((std::set<uint32_t>{0, 1, 2, 3}), seen);
}

// A retry goes to a host not tried before whenever one is eligible.
TEST_P(EligibilityTest, RetrySkipsAttemptedHosts) {
  auto hosts = makeEqualHosts(3);
  auto lb = makeBalancer(GetParam(), hosts);
  ASSERT_NE(nullptr, lb);
  auto picker = lb->createPicker(random_);
  for (int i = 0; i < 200; ++i) {
    LbContext ctx = nextContext();
    const auto first = picker->pick(ctx);
    ASSERT_TRUE(first.has_value());
    std::vector<uint32_t> attempted = {*first};
    ctx.attempted = attempted;
    const auto second = picker->pick(ctx);
    ASSERT_TRUE(second.has_value());
    EXPECT_NE(*first, *second);
    attempted.push_back(*second);
    ctx.attempted = attempted;
    const auto third = picker->pick(ctx);
    ASSERT_TRUE(third.has_value());
    EXPECT_NE(*first, *third);
    EXPECT_NE(*second, *third);
  }
}

// When every eligible host was tried, a retry reuses one rather than failing; an attempted host
// that is ejected is still not preferred over an attempted available one.
TEST_P(EligibilityTest, RetryReusesAttemptedHostsWhenNothingElseIsLeft) {
  auto hosts = makeEqualHosts(3);
  auto lb = makeBalancer(GetParam(), hosts);
  ASSERT_NE(nullptr, lb);
  auto picker = lb->createPicker(random_);
  hosts.state(2).ejected = true;
  const std::vector<uint32_t> attempted = {0, 1};
  for (int i = 0; i < 100; ++i) {
    LbContext ctx = nextContext();
    ctx.attempted = attempted;
    const auto host = picker->pick(ctx);
    ASSERT_TRUE(host.has_value());
    EXPECT_NE(2u, *host);
  }
}

TEST_P(EligibilityTest, AttemptedHostsAreNotAvoidedWithoutIgnorePrevious) {
  auto hosts = makeEqualHosts(2);
  auto lb = makeBalancer(GetParam(), hosts);
  ASSERT_NE(nullptr, lb);
  auto picker = lb->createPicker(random_);
  const std::vector<uint32_t> attempted = {0};
  LbContext ctx;
  ctx.attempted = attempted;
  ctx.ignore_previous = false;
  std::set<uint32_t> seen;
  for (int i = 0; i < 200; ++i) {
    ctx.hash_key = hashKey("k" + std::to_string(i));
    seen.insert(*picker->pick(ctx));
  }
  EXPECT_EQ((std::set<uint32_t>{0, 1}), seen);
}

INSTANTIATE_TEST_SUITE_P(AllAlgorithms, EligibilityTest,
                         ::testing::Values("ROUND_ROBIN", "LEAST_REQUEST", "RANDOM", "RING_HASH",
                                           "MAGLEV", "PEAK_EWMA"));

}  // namespace
}  // namespace bulwark::policies::lb
