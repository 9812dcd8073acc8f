#include "policies/lb/least_request.h"

#include <chrono>

#include <gtest/gtest.h>

#include "tests/support/fixed_random.h"
#include "tests/support/simulated_time.h"
#include "tests/unit/policies/lb/lb_simulation.h"
#include "tests/unit/policies/lb/lb_test_util.h"

namespace bulwark::policies::lb {
namespace {

using namespace std::chrono_literals;
using lbtest::countPicks;
using lbtest::makeBalancer;
using lbtest::makeEqualHosts;
using lbtest::makeHosts;

// Of the two drawn candidates, the one with fewer active requests wins, whichever is drawn first.
TEST(LeastRequestTest, PicksTheLessLoadedOfTheTwoCandidates) {
  auto hosts = makeEqualHosts(2);
  hosts.state(0).active_requests = 5;
  hosts.state(1).active_requests = 1;
  auto lb = makeBalancer(kLeastRequestName, hosts);
  testing::FixedRandom draws_0_first({0, 0});
  testing::FixedRandom draws_1_first({testing::FixedRandom::kMax, 0});
  EXPECT_EQ(1u, *lb->createPicker(draws_0_first)->pick({}));
  EXPECT_EQ(1u, *lb->createPicker(draws_1_first)->pick({}));
}

// With static load {5, 0, 5}, the idle host wins every pick in which it is one of the two
// distinct candidates: 1 - (2/3 · 1/2) = 2/3 of picks.
TEST(LeastRequestTest, PrefersLessLoadedHostStatistically) {
  auto hosts = makeEqualHosts(3);
  hosts.state(0).active_requests = 5;
  hosts.state(2).active_requests = 5;
  SeededRandom random(5);
  auto picker = makeBalancer(kLeastRequestName, hosts)->createPicker(random);
  const auto counts = countPicks(*picker, 3, 30000);
  EXPECT_NEAR(2.0 / 3.0, counts[1] / 30000.0, 0.015);
}

// choice_count >= number of hosts is a full scan: always the least loaded.
TEST(LeastRequestTest, ChoiceCountCoveringAllHostsAlwaysFindsTheMinimum) {
  auto hosts = makeEqualHosts(4);
  hosts.state(0).active_requests = 3;
  hosts.state(1).active_requests = 2;
  hosts.state(2).active_requests = 9;
  hosts.state(3).active_requests = 1;
  LbConfig config;
  config.choice_count = 4;
  SeededRandom random(8);
  auto picker = makeBalancer(kLeastRequestName, hosts, config)->createPicker(random);
  EXPECT_EQ((std::vector<uint32_t>{0, 0, 0, 200}), countPicks(*picker, 4, 200));
}

// Under load, a host 10x slower accumulates active requests and receives few new ones.
TEST(LeastRequestTest, SlowHostReceivesLittleTrafficUnderLoad) {
  auto hosts = makeEqualHosts(3);
  SeededRandom random(9);
  auto picker = makeBalancer(kLeastRequestName, hosts)->createPicker(random);
  testing::SimulatedTime t;
  const auto picks = lbtest::simulateLoad(
      *picker, hosts,
      {.latencies = {10ms, 10ms, 100ms}, .arrival_interval = 1ms, .requests = 20000}, t.now());
  EXPECT_LE(picks[2], 20000 / 10);
}

// Weighted: the idle upstream follows the weights (ties go to the weighted first draw), and a
// loaded one converges to active requests proportional to weight.
TEST(LeastRequestTest, WeightsRespectedIdleAndUnderLoad) {
  {
    auto hosts = makeHosts({1, 3});
    SeededRandom random(10);
    auto picker = makeBalancer(kLeastRequestName, hosts)->createPicker(random);
    const auto counts = countPicks(*picker, 2, 20000);
    EXPECT_NEAR(0.25, counts[0] / 20000.0, 0.015);
  }
  {
    auto hosts = makeHosts({1, 3});
    SeededRandom random(11);
    auto picker = makeBalancer(kLeastRequestName, hosts)->createPicker(random);
    testing::SimulatedTime t;
    const auto picks = lbtest::simulateLoad(
        *picker, hosts, {.latencies = {20ms, 20ms}, .arrival_interval = 1ms, .requests = 20000},
        t.now());
    EXPECT_NEAR(0.25, picks[0] / 20000.0, 0.03);
  }
}

}  // namespace
}  // namespace bulwark::policies::lb
