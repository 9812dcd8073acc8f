#include <gtest/gtest.h>

#include "policies/retry/hedge_policy.h"
#include "tests/support/simulated_time.h"

namespace bulwark::policies {
namespace {

using namespace std::chrono_literals;
using bulwark::testing::SimulatedTime;

HedgePolicy::Options fixed(Duration delay, uint32_t max_requests) {
  HedgePolicy::Options o;
  o.delay = delay;
  o.max_requests = max_requests;
  return o;
}

HedgePolicy::Request req(SimulatedTime& t, std::string_view method = "GET") {
  HedgePolicy::Request r;
  r.method = method;
  r.now = t.now();
  return r;
}

// Idempotent requests are hedged up to maxRequests attempts in total.
TEST(HedgePolicyTest, HedgesIdempotentUpToMaxRequests) {
  SimulatedTime t;
  HedgePolicy policy(fixed(120ms, 3));
  EXPECT_EQ(120ms, policy.delay());
  auto r = req(t);
  EXPECT_EQ(std::nullopt, policy.decide(r, nullptr));
  r.attempts_started = 2;
  EXPECT_EQ(std::nullopt, policy.decide(r, nullptr));
  r.attempts_started = 3;
  EXPECT_EQ(NoHedgeReason::MaxRequests, policy.decide(r, nullptr));
  r.attempts_started = 1;
  r.response_started = true;
  EXPECT_EQ(NoHedgeReason::ResponseStarted, policy.decide(r, nullptr));
}

// POST is hedged only with a key and a permissive nonIdempotent; gRPC routes opt in.
TEST(HedgePolicyTest, Eligibility) {
  SimulatedTime t;
  HedgePolicy never({100ms, 2, NonIdempotentPolicy::Never});
  auto post = req(t, "POST");
  EXPECT_EQ(NoHedgeReason::NotIdempotent, never.decide(post, nullptr));
  post.has_idempotency_key = true;
  EXPECT_EQ(NoHedgeReason::NotIdempotent, never.decide(post, nullptr));
  HedgePolicy keyed({100ms, 2, NonIdempotentPolicy::WithIdempotencyKey});
  EXPECT_EQ(std::nullopt, keyed.decide(post, nullptr));
  auto rpc = req(t, "POST");
  rpc.grpc = true;
  EXPECT_TRUE(never.eligible(rpc));
  HedgePolicy off({100ms, 1, NonIdempotentPolicy::Never});
  EXPECT_FALSE(off.eligible(req(t)));
  EXPECT_EQ(NoHedgeReason::MaxRequests, off.decide(req(t), nullptr));
}

// No hedge when the deadline is too close, and hedges spend the retry budget.
TEST(HedgePolicyTest, DeadlineAndBudget) {
  SimulatedTime t;
  HedgePolicy policy(fixed(100ms, 4));
  auto r = req(t);
  r.deadline = t.now() + 100ms;
  EXPECT_EQ(NoHedgeReason::DeadlineExceeded, policy.decide(r, nullptr));
  r.deadline.reset();
  RetryBudget budget({0.0, 1, 1s, 1, 1});  // one token
  EXPECT_EQ(std::nullopt, policy.decide(r, &budget));
  r.attempts_started = 2;
  EXPECT_EQ(NoHedgeReason::BudgetExhausted, policy.decide(r, &budget));
  EXPECT_EQ("budget_exhausted", noHedgeReasonLabel(NoHedgeReason::BudgetExhausted));
}

// A POST is hedged when the route's retries say nonIdempotent: always (a read sent as POST).
TEST(HedgePolicyTest, PostIsEligibleWhenTheRouteTreatsItAsARead) {
  SimulatedTime t;
  EXPECT_FALSE(HedgePolicy(fixed(10ms, 2)).eligible(req(t, "POST")));
  HedgePolicy::Options o = fixed(10ms, 2);
  o.non_idempotent = NonIdempotentPolicy::Always;
  EXPECT_TRUE(HedgePolicy(o).eligible(req(t, "POST")));
}

// delay: auto hedges after the recent percentile, never before minDelay, and not while cold.
TEST(HedgePolicyTest, AutoDelayIsTheRecentPercentileAtLeastMinDelay) {
  SimulatedTime t;
  HedgePolicy::Options o;
  o.adaptive = true;
  o.min_delay = 5ms;
  o.percentile = 0.95;
  HedgePolicy policy(o);
  DecayingLatencyHistogram recent;
  EXPECT_EQ(std::nullopt, policy.delayFor(recent, t.now()));
  for (int i = 0; i < 100; ++i) {
    recent.record(i < 90 ? 20ms : 80ms, t.now());
  }
  auto delay = policy.delayFor(recent, t.now());
  ASSERT_TRUE(delay);
  EXPECT_GE(*delay, 80ms);
  EXPECT_LT(*delay, 80ms * 1.16);
  DecayingLatencyHistogram fast;
  for (int i = 0; i < 100; ++i) {
    fast.record(1ms, t.now());
  }
  EXPECT_EQ(5ms, policy.delayFor(fast, t.now()));
  // A deadline closer than minDelay leaves no room for a hedge.
  auto r = req(t);
  r.deadline = t.now() + 4ms;
  EXPECT_EQ(NoHedgeReason::DeadlineExceeded, policy.decide(r, nullptr));
  EXPECT_EQ(120ms, HedgePolicy(fixed(120ms, 2)).delayFor(recent, t.now()));
}

}  // namespace
}  // namespace bulwark::policies
