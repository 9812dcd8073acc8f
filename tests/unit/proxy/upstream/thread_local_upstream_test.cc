#include "proxy/upstream/thread_local_upstream.h"

#include <map>

#include <gtest/gtest.h>

#include "policies/lb/hash.h"

namespace bulwark::upstream {
namespace {

config::UpstreamSpec specWith(size_t hosts, config::LbPolicy policy) {
  config::UpstreamSpec spec;
  spec.name = "u";
  spec.load_balancer.policy = policy;
  for (size_t i = 0; i < hosts; ++i) {
    spec.static_endpoints.push_back({"127.0.0.1:" + std::to_string(9000 + i), 1});
  }
  return spec;
}

class ThreadLocalUpstreamTest : public ::testing::Test {
protected:
  std::map<std::string, int> pickMany(ThreadLocalUpstream& tlu, int n, const LbContext& ctx = {}) {
    std::map<std::string, int> counts;
    for (int i = 0; i < n; ++i) {
      auto h = tlu.pickHost(rng_, ctx);
      EXPECT_NE(h, nullptr);
      if (h) {
        ++counts[h->address];
      }
    }
    return counts;
  }
  event::Dispatcher dispatcher_;
  std::mt19937_64 rng_{42};
};

TEST_F(ThreadLocalUpstreamTest, RoundRobinIsEvenPerPick) {
  auto spec = specWith(3, config::LbPolicy::RoundRobin);
  auto u = std::make_shared<Upstream>(spec, buildStaticHostSet(spec));
  ThreadLocalUpstream tlu(dispatcher_, u);
  auto counts = pickMany(tlu, 300);
  ASSERT_EQ(counts.size(), 3u);
  for (const auto& [address, n] : counts) {
    EXPECT_EQ(n, 100) << address;
  }
}

TEST_F(ThreadLocalUpstreamTest, WeightsAreHonoured) {
  auto spec = specWith(2, config::LbPolicy::RoundRobin);
  spec.static_endpoints[1].weight = 3;
  auto u = std::make_shared<Upstream>(spec, buildStaticHostSet(spec));
  ThreadLocalUpstream tlu(dispatcher_, u);
  auto counts = pickMany(tlu, 400);
  EXPECT_EQ(counts["127.0.0.1:9000"], 100);
  EXPECT_EQ(counts["127.0.0.1:9001"], 300);
}

TEST_F(ThreadLocalUpstreamTest, UnhealthyAndEjectedHostsAreSkippedUntilPanic) {
  auto spec = specWith(4, config::LbPolicy::LeastRequest);
  auto u = std::make_shared<Upstream>(spec, buildStaticHostSet(spec));
  ThreadLocalUpstream tlu(dispatcher_, u);
  u->hosts()->hosts[0]->lb_state->healthy = false;
  auto counts = pickMany(tlu, 200);
  EXPECT_EQ(counts.count("127.0.0.1:9000"), 0u);
  // Three of four down: below the 50 % panic threshold, so all hosts are used again.
  u->hosts()->hosts[1]->lb_state->ejected = true;
  u->hosts()->hosts[2]->lb_state->healthy = false;
  counts = pickMany(tlu, 400);
  EXPECT_EQ(counts.size(), 4u);
}

TEST_F(ThreadLocalUpstreamTest, RetriesAvoidAttemptedHosts) {
  auto spec = specWith(2, config::LbPolicy::Random);
  auto u = std::make_shared<Upstream>(spec, buildStaticHostSet(spec));
  ThreadLocalUpstream tlu(dispatcher_, u);
  const Host* tried[] = {u->hosts()->hosts[0].get()};
  LbContext ctx;
  ctx.attempted = tried;
  auto counts = pickMany(tlu, 50, ctx);
  EXPECT_EQ(counts["127.0.0.1:9001"], 50);
}

TEST_F(ThreadLocalUpstreamTest, RingHashKeepsAKeyOnOneHost) {
  auto spec = specWith(3, config::LbPolicy::RingHash);
  auto u = std::make_shared<Upstream>(spec, buildStaticHostSet(spec));
  ThreadLocalUpstream tlu(dispatcher_, u);
  LbContext ctx;
  ctx.hash_key = policies::lb::hashKey("user-17");
  auto counts = pickMany(tlu, 50, ctx);
  EXPECT_EQ(counts.size(), 1u);
}

TEST_F(ThreadLocalUpstreamTest, PickerFollowsHostSetChanges) {
  auto spec = specWith(2, config::LbPolicy::RoundRobin);
  auto u = std::make_shared<Upstream>(spec, buildStaticHostSet(spec));
  ThreadLocalUpstream tlu(dispatcher_, u);
  pickMany(tlu, 2);
  u->setHosts(buildHostSet({{"127.0.0.1:9005", 1}}, u->hosts()));
  auto counts = pickMany(tlu, 10);
  ASSERT_EQ(counts.size(), 1u);
  EXPECT_EQ(counts.begin()->first, "127.0.0.1:9005");
}

TEST_F(ThreadLocalUpstreamTest, EmptyHostSetPicksNothing) {
  auto spec = specWith(0, config::LbPolicy::Maglev);
  auto u = std::make_shared<Upstream>(spec, buildStaticHostSet(spec));
  ThreadLocalUpstream tlu(dispatcher_, u);
  EXPECT_EQ(tlu.pickHost(rng_, {}), nullptr);
}

}  // namespace
}  // namespace bulwark::upstream
