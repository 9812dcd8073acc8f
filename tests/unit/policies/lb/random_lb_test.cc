#include "policies/lb/random_lb.h"

#include <gtest/gtest.h>

#include "tests/support/fixed_random.h"
#include "tests/unit/policies/lb/lb_test_util.h"

namespace bulwark::policies::lb {
namespace {

using lbtest::countPicks;
using lbtest::makeBalancer;
using lbtest::makeHosts;

// The draw maps the RNG range onto cumulative weights: the bottom goes to the first host, the
// top to the last, and a weight-2 host owns twice the range.
TEST(RandomLbTest, DrawMapsOntoCumulativeWeights) {
  auto hosts = makeHosts({1, 2, 1});
  auto lb = makeBalancer(kRandomName, hosts);
  auto at = [&](double fraction) {
    auto random = testing::FixedRandom::uniform01Of(fraction);
    return *lb->createPicker(random)->pick({});
  };
  EXPECT_EQ(0u, at(0.0));
  EXPECT_EQ(0u, at(0.24));
  EXPECT_EQ(1u, at(0.26));
  EXPECT_EQ(1u, at(0.74));
  EXPECT_EQ(2u, at(0.76));
  EXPECT_EQ(2u, at(0.999));
}

TEST(RandomLbTest, WeightsRespectedWithinTolerance) {
  auto hosts = makeHosts({1, 2, 7});
  SeededRandom random(11);
  auto picker = makeBalancer(kRandomName, hosts)->createPicker(random);
  const auto counts = countPicks(*picker, 3, 50000);
  EXPECT_NEAR(0.1, counts[0] / 50000.0, 0.01);
  EXPECT_NEAR(0.2, counts[1] / 50000.0, 0.01);
  EXPECT_NEAR(0.7, counts[2] / 50000.0, 0.01);
}

TEST(RandomLbTest, WeightsRespectedAmongRemainingHostsWhenOneIsEjected) {
  auto hosts = makeHosts({5, 1, 3});
  SeededRandom random(12);
  auto picker = makeBalancer(kRandomName, hosts)->createPicker(random);
  hosts.state(0).ejected = true;
  const auto counts = countPicks(*picker, 3, 40000);
  EXPECT_EQ(0u, counts[0]);
  EXPECT_NEAR(0.25, counts[1] / 40000.0, 0.015);
  EXPECT_NEAR(0.75, counts[2] / 40000.0, 0.015);
}

}  // namespace
}  // namespace bulwark::policies::lb
