#include <gtest/gtest.h>

#include "policies/lb/load_balancer.h"
#include "policies/lb/register_builtin_lb.h"
#include "policies/lb/round_robin.h"
#include "tests/unit/policies/lb/lb_test_util.h"

namespace bulwark::policies::lb {
namespace {

TEST(LbRegistryTest, BuiltinsAreRegisteredByYamlName) {
  LbRegistry registry;
  registerBuiltinLoadBalancers(registry);
  const std::vector<std::string_view> expected = {"ROUND_ROBIN", "LEAST_REQUEST", "RANDOM",
                                                  "RING_HASH",   "MAGLEV",        "PEAK_EWMA"};
  EXPECT_EQ(expected, registry.names());
  for (auto name : expected) {
    const LbFactory* factory = registry.find(name);
    ASSERT_NE(nullptr, factory) << name;
    EXPECT_EQ(name, factory->name());
  }
  EXPECT_EQ(nullptr, registry.find("round_robin"));  // names are exact
  EXPECT_EQ(nullptr, registry.find("WEIGHTED"));
}

TEST(LbRegistryTest, DuplicateNameIsRejected) {
  LbRegistry registry;
  ASSERT_TRUE(registry.add(makeRoundRobinFactory()).isOk());
  const Status again = registry.add(makeRoundRobinFactory());
  EXPECT_FALSE(again.isOk());
  EXPECT_NE(std::string::npos, again.message().find("ROUND_ROBIN"));
}

TEST(LbFactoryTest, RejectsNullSetZeroWeightMissingStateAndBadPanicThreshold) {
  const LbFactory* factory = lbtest::builtinRegistry().find("ROUND_ROBIN");
  ASSERT_NE(nullptr, factory);
  EXPECT_FALSE(factory->create(nullptr, {}).isOk());

  auto zero = std::make_shared<LbHostSet>();
  zero->push_back({"a:1", 0, std::make_shared<LbHostState>()});
  auto result = factory->create(zero, {});
  ASSERT_FALSE(result.isOk());
  EXPECT_NE(std::string::npos, result.error().find("weight"));

  auto stateless = std::make_shared<LbHostSet>();
  stateless->push_back({"a:1", 1, nullptr});
  EXPECT_FALSE(factory->create(stateless, {}).isOk());

  LbConfig bad;
  bad.panic_threshold_percent = 101;
  EXPECT_FALSE(factory->create(lbtest::makeEqualHosts(2).set, bad).isOk());
}

TEST(LbFactoryTest, AlgorithmSpecificConfigIsValidated) {
  const auto hosts = lbtest::makeEqualHosts(3);
  const auto& registry = lbtest::builtinRegistry();
  LbConfig config;
  config.choice_count = 0;
  EXPECT_FALSE(registry.find("LEAST_REQUEST")->create(hosts.set, config).isOk());
  EXPECT_FALSE(registry.find("PEAK_EWMA")->create(hosts.set, config).isOk());
  EXPECT_TRUE(registry.find("ROUND_ROBIN")->create(hosts.set, config).isOk());

  config = {};
  config.maglev_table_size = 65536;  // not prime
  EXPECT_FALSE(registry.find("MAGLEV")->create(hosts.set, config).isOk());
  config.maglev_table_size = 2;  // prime but smaller than the host count
  EXPECT_FALSE(registry.find("MAGLEV")->create(hosts.set, config).isOk());

  config = {};
  config.max_ring_size = config.min_ring_size - 1;
  EXPECT_FALSE(registry.find("RING_HASH")->create(hosts.set, config).isOk());

  config = {};
  config.ewma_decay = Duration::zero();
  EXPECT_FALSE(registry.find("PEAK_EWMA")->create(hosts.set, config).isOk());
}

TEST(LbFactoryTest, ConsistentHashingRejectsDuplicateHostNames) {
  auto hosts = std::make_shared<LbHostSet>();
  hosts->push_back({"a:1", 1, std::make_shared<LbHostState>()});
  hosts->push_back({"a:1", 1, std::make_shared<LbHostState>()});
  const auto& registry = lbtest::builtinRegistry();
  EXPECT_FALSE(registry.find("RING_HASH")->create(hosts, {}).isOk());
  EXPECT_FALSE(registry.find("MAGLEV")->create(hosts, {}).isOk());
  EXPECT_TRUE(registry.find("ROUND_ROBIN")->create(hosts, {}).isOk());
}

}  // namespace
}  // namespace bulwark::policies::lb
