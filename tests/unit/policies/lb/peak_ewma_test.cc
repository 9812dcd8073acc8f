#include "policies/lb/peak_ewma.h"

#include <chrono>

#include <gtest/gtest.h>

#include "policies/lb/random_lb.h"
#include "tests/support/fixed_random.h"
#include "tests/support/simulated_time.h"
#include "tests/unit/policies/lb/lb_simulation.h"
#include "tests/unit/policies/lb/lb_test_util.h"

namespace bulwark::policies::lb {
namespace {

using namespace std::chrono_literals;
using lbtest::makeBalancer;
using lbtest::makeEqualHosts;

constexpr uint32_t kRequests = 20000;

lbtest::SimulationSpec tenTimesSlowerThirdHost() {
  // 200 requests/s for 100 s: light load, so P2C on active requests alone sees mostly idle hosts
  // and cannot tell the slow one apart; latency must.
  return {.latencies = {10ms, 10ms, 100ms}, .arrival_interval = 5ms, .requests = kRequests};
}

// The bound the README states: at most 10% of calls to a replica 10x slower.
TEST(PeakEwmaTest, SendsAtMostTenPercentToATenTimesSlowerHost) {
  auto hosts = makeEqualHosts(3);
  SeededRandom random(21);
  auto picker = makeBalancer(kPeakEwmaName, hosts)->createPicker(random);
  testing::SimulatedTime t;
  const auto picks = lbtest::simulateLoad(*picker, hosts, tenTimesSlowerThirdHost(), t.now());
  EXPECT_LE(picks[2], kRequests / 10);
  EXPECT_GT(picks[2], 0u);  // still probed now and then as its estimate decays
}

// The same simulation with RANDOM sends about a third to the slow host: proves the simulation
// can tell a latency-aware picker from a blind one.
TEST(PeakEwmaTest, BlindPickerFailsTheSameSimulation) {
  auto hosts = makeEqualHosts(3);
  SeededRandom random(21);
  auto picker = makeBalancer(kRandomName, hosts)->createPicker(random);
  testing::SimulatedTime t;
  const auto picks = lbtest::simulateLoad(*picker, hosts, tenTimesSlowerThirdHost(), t.now());
  EXPECT_GT(picks[2], kRequests / 4);
}

// A replica that was answering in 40 ms turns 300 ms slow. Before its first late answer, its
// estimate still says 40 ms; the attempts it holds and has not answered must already make it
// look slow, so that it stops receiving calls after about one normal latency, not after 300 ms.
// Averaged over seeds: the calls it receives in the 300 ms before its first answer.
TEST(PeakEwmaTest, AHostThatStoppedAnsweringLooksSlowBeforeItsFirstLateAnswer) {
  constexpr int kSeeds = 40;
  uint32_t slow_picks = 0;
  for (int seed = 1; seed <= kSeeds; ++seed) {
    testing::SimulatedTime t;
    auto hosts = makeEqualHosts(3);
    for (uint32_t h = 0; h < 3; ++h) {
      recordLatency(hosts.state(h), 40ms, t.now(), kDefaultEwmaDecay);
    }
    t.advance(1ms);
    SeededRandom random(static_cast<uint64_t>(seed));
    auto picker = makeBalancer(kPeakEwmaName, hosts)->createPicker(random);
    // 50 requests/s, as the chaos scenario's recommendations: 15 arrive in 300 ms.
    const lbtest::SimulationSpec spec{
        .latencies = {40ms, 40ms, 300ms}, .arrival_interval = 20ms, .requests = 15};
    slow_picks += lbtest::simulateLoad(*picker, hosts, spec, t.now())[2];
  }
  // Measured: 1.0 per run (the first call only) with the floor; 2.0 with the estimate and the
  // in-flight count alone.
  EXPECT_LE(slow_picks, kSeeds * 3 / 2);
}

// Cost = ewma × (active + 1): of two hosts with the same latency, the less loaded wins; of two
// idle hosts, the faster wins; a host without samples costs default_rtt.
TEST(PeakEwmaTest, CostCombinesLatencyAndLoad) {
  testing::SimulatedTime t;
  LbContext ctx;
  ctx.now = t.now();
  testing::FixedRandom draws({0, 0});  // candidate 0 first, then the other

  auto hosts = makeEqualHosts(2);
  recordLatency(hosts.state(0), 20ms, t.now(), kDefaultEwmaDecay);
  recordLatency(hosts.state(1), 30ms, t.now(), kDefaultEwmaDecay);
  auto lb = makeBalancer(kPeakEwmaName, hosts);
  EXPECT_EQ(0u, *lb->createPicker(draws)->pick(ctx));  // 20 × 1 < 30 × 1

  hosts.state(0).active_requests = 1;  // 20 × 2 > 30 × 1
  EXPECT_EQ(1u, *lb->createPicker(draws)->pick(ctx));

  auto fresh = makeEqualHosts(2);
  recordLatency(fresh.state(0), 50ms, t.now(), kDefaultEwmaDecay);
  LbConfig config;
  config.ewma_default_rtt = 40ms;  // host 1 has no samples: 40 < 50
  EXPECT_EQ(1u, *makeBalancer(kPeakEwmaName, fresh, config)->createPicker(draws)->pick(ctx));
}

// A host that suddenly becomes slow is avoided after its first slow answer (peak sensitivity),
// not after the average catches up.
TEST(PeakEwmaTest, SuddenSlownessIsPenalisedImmediately) {
  testing::SimulatedTime t;
  auto hosts = makeEqualHosts(2);
  for (int i = 0; i < 100; ++i) {
    recordLatency(hosts.state(0), 5ms, t.now(), kDefaultEwmaDecay);
    recordLatency(hosts.state(1), 10ms, t.now(), kDefaultEwmaDecay);
    t.advance(10ms);
  }
  SeededRandom random(3);
  auto picker = makeBalancer(kPeakEwmaName, hosts)->createPicker(random);
  LbContext ctx;
  ctx.now = t.now();
  EXPECT_EQ(0u, *picker->pick(ctx));
  recordLatency(hosts.state(0), 200ms, t.now(), kDefaultEwmaDecay);
  EXPECT_EQ(1u, *picker->pick(ctx));
}

}  // namespace
}  // namespace bulwark::policies::lb
