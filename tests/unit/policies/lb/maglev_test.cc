#include "policies/lb/maglev.h"

#include <vector>

#include <gtest/gtest.h>

#include "tests/unit/policies/lb/lb_test_util.h"

namespace bulwark::policies::lb {
namespace {

using lbtest::makeBalancer;
using lbtest::makeEqualHosts;
using lbtest::makeHosts;

// Slot ownership, read through picks with hash_key = slot (key % M == slot).
std::vector<uint32_t> slotOwners(const lbtest::TestHosts& hosts, const LbConfig& config) {
  SeededRandom random(1);
  auto picker = makeBalancer(kMaglevName, hosts, config)->createPicker(random);
  std::vector<uint32_t> owners;
  for (uint64_t slot = 0; slot < config.maglev_table_size; ++slot) {
    LbContext ctx;
    ctx.hash_key = slot;
    owners.push_back(*picker->pick(ctx));
  }
  return owners;
}

// The table is filled exactly in proportion to weight: equal weights differ by at most one slot.
TEST(MaglevTest, TableSlotsAreProportionalToWeight) {
  LbConfig config;
  config.maglev_table_size = 65537;
  {
    const auto owners = slotOwners(makeEqualHosts(4), config);
    std::vector<int> counts(4, 0);
    for (uint32_t h : owners) {
      ++counts[h];
    }
    for (int c : counts) {
      EXPECT_NEAR(65537 / 4.0, c, 1.0);
    }
  }
  {
    const auto owners = slotOwners(makeHosts({1, 3}), config);
    int light = 0;
    for (uint32_t h : owners) {
      light += h == 0 ? 1 : 0;
    }
    EXPECT_NEAR(65537 / 4.0, light, 2.0);
  }
}

TEST(MaglevTest, KeyIsReducedModuloTableSize) {
  LbConfig config;
  config.maglev_table_size = 101;
  auto hosts = makeEqualHosts(3);
  SeededRandom random(1);
  auto picker = makeBalancer(kMaglevName, hosts, config)->createPicker(random);
  for (uint64_t key = 0; key < 101; ++key) {
    LbContext a;
    a.hash_key = key;
    LbContext b;
    b.hash_key = key + 101 * 7;
    EXPECT_EQ(*picker->pick(a), *picker->pick(b));
  }
}

// Every host claims a slot in the first build iteration, so even a host with a tiny weight next
// to a huge one is found when it is the only one allowed.
TEST(MaglevTest, LightHostIsFoundWhenItIsTheOnlyOneLeft) {
  LbConfig config;
  config.maglev_table_size = 7;
  auto hosts = makeHosts({1, 1000000});
  SeededRandom random(1);
  auto picker = makeBalancer(kMaglevName, hosts, config)->createPicker(random);
  hosts.state(1).healthy = false;
  LbContext ctx;
  ctx.hash_key = 3;
  EXPECT_EQ(0u, *picker->pick(ctx));
}

}  // namespace
}  // namespace bulwark::policies::lb
