#include "policies/lb/round_robin.h"

#include <vector>

#include <gtest/gtest.h>

#include "tests/support/fixed_random.h"
#include "tests/unit/policies/lb/lb_test_util.h"

namespace bulwark::policies::lb {
namespace {

using lbtest::countPicks;
using lbtest::makeBalancer;
using lbtest::makeEqualHosts;
using lbtest::makeHosts;

// Equal weights: every window of N consecutive picks contains each host exactly once.
TEST(RoundRobinTest, EqualWeightsCycleThroughAllHosts) {
  auto hosts = makeEqualHosts(3);
  SeededRandom random(7);
  auto picker = makeBalancer(kRoundRobinName, hosts)->createPicker(random);
  std::vector<uint32_t> seq;
  for (int i = 0; i < 300; ++i) {
    seq.push_back(*picker->pick({}));
  }
  for (size_t start = 0; start + 3 <= seq.size(); start += 3) {
    std::vector<uint32_t> counts(3, 0);
    for (size_t i = start; i < start + 3; ++i) {
      ++counts[seq[i]];
    }
    EXPECT_EQ((std::vector<uint32_t>{1, 1, 1}), counts) << "window at " << start;
  }
}

// Weights {5,1,1}: exactly 5/1/1 in every period of 7 picks, whatever the worker's tie offset,
// and the heavy host's picks are interleaved (never more than 4 in a row across periods).
TEST(RoundRobinTest, WeightedIsExactPerPeriodAndSmooth) {
  for (uint64_t seed = 0; seed < 5; ++seed) {
    auto hosts = makeHosts({5, 1, 1});
    SeededRandom random(seed);
    auto picker = makeBalancer(kRoundRobinName, hosts)->createPicker(random);
    int run = 0;
    int longest_run = 0;
    for (int period = 0; period < 20; ++period) {
      std::vector<uint32_t> counts(3, 0);
      for (int i = 0; i < 7; ++i) {
        const uint32_t host = *picker->pick({});
        ++counts[host];
        run = host == 0 ? run + 1 : 0;
        longest_run = std::max(longest_run, run);
      }
      EXPECT_EQ((std::vector<uint32_t>{5, 1, 1}), counts) << "seed " << seed;
    }
    EXPECT_LE(longest_run, 4);
  }
}

TEST(RoundRobinTest, UnequalWeightsExactOverManyPeriods) {
  auto hosts = makeHosts({3, 2, 1, 4});
  SeededRandom random(3);
  auto picker = makeBalancer(kRoundRobinName, hosts)->createPicker(random);
  EXPECT_EQ((std::vector<uint32_t>{300, 200, 100, 400}), countPicks(*picker, 4, 1000));
}

// Two workers' pickers start at different hosts (random tie offset) but are each exact.
TEST(RoundRobinTest, WorkersStartAtTheirOwnOffset) {
  auto hosts = makeEqualHosts(4);
  auto lb = makeBalancer(kRoundRobinName, hosts);
  testing::FixedRandom first({0});
  testing::FixedRandom last({testing::FixedRandom::kMax});
  auto a = lb->createPicker(first);
  auto b = lb->createPicker(last);
  EXPECT_EQ(0u, *a->pick({}));
  EXPECT_EQ(3u, *b->pick({}));
  EXPECT_EQ((std::vector<uint32_t>{10, 10, 10, 10}), countPicks(*a, 4, 40));
}

// An ejected host's share goes to the others, which stay exact among themselves.
TEST(RoundRobinTest, EjectedHostIsSkippedAndOthersStayExact) {
  auto hosts = makeHosts({2, 1, 1});
  SeededRandom random(1);
  auto picker = makeBalancer(kRoundRobinName, hosts)->createPicker(random);
  hosts.state(0).ejected = true;
  EXPECT_EQ((std::vector<uint32_t>{0, 50, 50}), countPicks(*picker, 3, 100));
}

}  // namespace
}  // namespace bulwark::policies::lb
