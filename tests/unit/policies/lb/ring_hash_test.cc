#include "policies/lb/ring_hash.h"

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "policies/lb/hash.h"
#include "tests/unit/policies/lb/lb_test_util.h"

namespace bulwark::policies::lb {
namespace {

using lbtest::makeBalancer;
using lbtest::makeEqualHosts;

std::vector<uint32_t> assignKeys(const lbtest::TestHosts& hosts, int keys) {
  SeededRandom random(1);
  auto picker = makeBalancer(kRingHashName, hosts)->createPicker(random);
  std::vector<uint32_t> out;
  for (int k = 0; k < keys; ++k) {
    LbContext ctx;
    ctx.hash_key = hashKey("session-" + std::to_string(k));
    out.push_back(*picker->pick(ctx));
  }
  return out;
}

// A host's points do not depend on the host count, so adding a host moves ONLY keys that the
// new host takes (the minimal possible movement), for small and large N alike.
TEST(RingHashTest, AddedHostTakesKeysOnlyFromOthersNeverShufflesThem) {
  for (size_t n : {1u, 2u, 3u, 7u, 12u}) {
    const auto before = assignKeys(makeEqualHosts(n), 5000);
    const auto after = assignKeys(makeEqualHosts(n + 1), 5000);
    int moved = 0;
    for (size_t k = 0; k < before.size(); ++k) {
      if (before[k] != after[k]) {
        ++moved;
        EXPECT_EQ(n, after[k]) << "N=" << n;
      }
    }
    EXPECT_NEAR(1.0 / static_cast<double>(n + 1), moved / 5000.0, 0.04) << "N=" << n;
  }
}

// Removing a host moves only its own keys.
TEST(RingHashTest, RemovedHostsKeysAreTheOnlyOnesThatMove) {
  const auto before = assignKeys(makeEqualHosts(10), 5000);
  const auto after = assignKeys(makeEqualHosts(9), 5000);
  for (size_t k = 0; k < before.size(); ++k) {
    if (before[k] != 9) {
      EXPECT_EQ(before[k], after[k]);
    }
  }
}

// A single host takes every key, including keys hashing past the last ring point (wrap-around).
TEST(RingHashTest, SingleHostAndWrapAround) {
  auto hosts = makeEqualHosts(1);
  SeededRandom random(2);
  auto picker = makeBalancer(kRingHashName, hosts)->createPicker(random);
  for (uint64_t key : {uint64_t{0}, uint64_t{1} << 63, UINT64_MAX}) {
    LbContext ctx;
    ctx.hash_key = key;
    EXPECT_EQ(0u, *picker->pick(ctx));
  }
}

// A tiny maximum ring still gives every host at least one point and a working picker.
TEST(RingHashTest, CappedRingKeepsEveryHost) {
  auto hosts = lbtest::makeHosts({1, 1000});
  LbConfig config;
  config.min_ring_size = 4;
  config.max_ring_size = 8;
  SeededRandom random(3);
  auto picker = makeBalancer(kRingHashName, hosts, config)->createPicker(random);
  hosts.state(1).ejected = true;
  LbContext ctx;
  ctx.hash_key = 12345;
  EXPECT_EQ(0u, *picker->pick(ctx));
}

}  // namespace
}  // namespace bulwark::policies::lb
