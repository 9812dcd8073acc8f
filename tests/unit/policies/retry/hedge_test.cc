#include <gtest/gtest.h>

#include "policies/retry/hedge_policy.h"
#include "tests/support/simulated_time.h"

namespace bulwark::policies {
namespace {

using namespace std::chrono_literals;
using bulwark::testing::SimulatedTime;

HedgePolicy::Request req(SimulatedTime& t, std::string_view method = "GET") {
  HedgePolicy::Request r;
  r.method = method;
  r.now = t.now();
  return r;
}

// Idempotent requests are hedged up to maxRequests attempts in total.
TEST(HedgePolicyTest, HedgesIdempotentUpToMaxRequests) {
  SimulatedTime t;
  HedgePolicy policy({120ms, 3, NonIdempotentPolicy::Never});
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
  HedgePolicy policy({100ms, 4, NonIdempotentPolicy::Never});
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

}  // namespace
}  // namespace bulwark::policies
