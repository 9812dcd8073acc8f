// Properties RING_HASH and MAGLEV share: stickiness, determinism, even spread, bounded
// movement when a host is added, weights, and failover of an unavailable host's keys.

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "policies/lb/hash.h"
#include "tests/unit/policies/lb/lb_test_util.h"

namespace bulwark::policies::lb {
namespace {

using lbtest::makeBalancer;
using lbtest::makeEqualHosts;
using lbtest::makeHosts;

constexpr int kKeys = 10000;

// Hashes of "user-0" .. "user-9999", computed once for all tests.
const std::vector<uint64_t>& keyHashes() {
  static const std::vector<uint64_t> hashes = [] {
    std::vector<uint64_t> out;
    for (int k = 0; k < kKeys; ++k) {
      out.push_back(hashKey("user-" + std::to_string(k)));
    }
    return out;
  }();
  return hashes;
}

class ConsistentHashTest : public ::testing::TestWithParam<std::string> {
protected:
  // Host index for each of kKeys keys.
  std::vector<uint32_t> assign(const lbtest::TestHosts& hosts, uint64_t seed = 1,
                               std::span<const uint32_t> attempted = {}) {
    auto lb = makeBalancer(GetParam(), hosts);
    SeededRandom random(seed);
    auto picker = lb->createPicker(random);
    std::vector<uint32_t> out;
    out.reserve(kKeys);
    for (int k = 0; k < kKeys; ++k) {
      LbContext ctx;
      ctx.hash_key = keyHashes()[k];
      ctx.attempted = attempted;
      out.push_back(*picker->pick(ctx));
    }
    return out;
  }
};

// Same key, same host: across picks, across workers (different RNGs) and across independently
// built balancers (a restart or another replica).
TEST_P(ConsistentHashTest, SameKeySameHostEverywhere) {
  auto hosts = makeEqualHosts(5);
  const auto a = assign(hosts, 1);
  const auto b = assign(hosts, 999);
  auto rebuilt = makeEqualHosts(5);  // new state objects, same names
  const auto c = assign(rebuilt, 5);
  EXPECT_EQ(a, b);
  EXPECT_EQ(a, c);
}

TEST_P(ConsistentHashTest, KeysSpreadRoughlyEvenly) {
  auto hosts = makeEqualHosts(5);
  std::vector<int> counts(5, 0);
  for (uint32_t host : assign(hosts)) {
    ++counts[host];
  }
  for (int c : counts) {
    EXPECT_NEAR(0.2, c / static_cast<double>(kKeys), 0.05);
  }
}

// Adding one host to N moves at most 1/(N+1) + 5% of the keys.
TEST_P(ConsistentHashTest, AddingAHostMovesFewKeys) {
  for (size_t n : {3u, 5u, 8u, 16u}) {
    const auto before = assign(makeEqualHosts(n));
    const auto after = assign(makeEqualHosts(n + 1));  // same first n names plus one
    int moved = 0;
    int moved_to_new = 0;
    for (int k = 0; k < kKeys; ++k) {
      if (before[k] != after[k]) {
        ++moved;
        moved_to_new += after[k] == n ? 1 : 0;
      }
    }
    const double limit = 1.0 / static_cast<double>(n + 1) + 0.05;
    EXPECT_LE(moved / static_cast<double>(kKeys), limit) << "N=" << n;
    EXPECT_GT(moved_to_new, 0) << "N=" << n;
  }
}

TEST_P(ConsistentHashTest, WeightsRespectedWithinTolerance) {
  auto hosts = makeHosts({1, 2, 5});
  std::vector<int> counts(3, 0);
  for (uint32_t host : assign(hosts)) {
    ++counts[host];
  }
  EXPECT_NEAR(1.0 / 8, counts[0] / static_cast<double>(kKeys), 0.04);
  EXPECT_NEAR(2.0 / 8, counts[1] / static_cast<double>(kKeys), 0.04);
  EXPECT_NEAR(5.0 / 8, counts[2] / static_cast<double>(kKeys), 0.04);
}

// An ejected host's keys go elsewhere; nobody else's keys move; they all return on recovery.
TEST_P(ConsistentHashTest, UnavailableHostsKeysFailOverAndReturn) {
  auto hosts = makeEqualHosts(4);
  const auto normal = assign(hosts);
  hosts.state(2).ejected = true;
  const auto degraded = assign(hosts);
  std::vector<int> received(4, 0);
  for (int k = 0; k < kKeys; ++k) {
    if (normal[k] == 2) {
      EXPECT_NE(2u, degraded[k]);
      ++received[degraded[k]];
    } else {
      EXPECT_EQ(normal[k], degraded[k]);
    }
  }
  // The failed host's keys spread over the survivors rather than all landing on one.
  for (uint32_t h : {0u, 1u, 3u}) {
    EXPECT_GT(received[h], 0) << h;
  }
  hosts.state(2).ejected = false;
  EXPECT_EQ(normal, assign(hosts));
}

// A retry of a key avoids the host it tried, deterministically (the same fallback each time).
TEST_P(ConsistentHashTest, RetryFallbackIsDeterministic) {
  auto hosts = makeEqualHosts(4);
  const std::vector<uint32_t> attempted = {1};
  const auto a = assign(hosts, 1, attempted);
  const auto b = assign(hosts, 2, attempted);
  EXPECT_EQ(a, b);
  for (uint32_t host : a) {
    EXPECT_NE(1u, host);
  }
}

// Without a hash key the pick is random (and uses every host).
TEST_P(ConsistentHashTest, NoHashKeyPicksRandomly) {
  auto hosts = makeEqualHosts(3);
  SeededRandom random(4);
  auto picker = makeBalancer(GetParam(), hosts)->createPicker(random);
  const auto counts = lbtest::countPicks(*picker, 3, 3000);
  for (uint32_t c : counts) {
    EXPECT_NEAR(1000, c, 150);
  }
}

INSTANTIATE_TEST_SUITE_P(RingHashAndMaglev, ConsistentHashTest,
                         ::testing::Values("RING_HASH", "MAGLEV"));

}  // namespace
}  // namespace bulwark::policies::lb
