#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "policies/retry/retry_policy.h"
#include "tests/support/fixed_random.h"
#include "tests/support/simulated_time.h"
#include "tests/unit/policies/attempt_results.h"

namespace bulwark::policies {
namespace {

using namespace std::chrono_literals;
using bulwark::testing::FixedRandom;
using bulwark::testing::SimulatedTime;

using test::grpc;
using test::http;
using test::local;

RetryOn on(std::vector<std::string> tokens, std::vector<uint32_t> codes = {}) {
  auto parsed = RetryOn::parse(tokens, codes);
  EXPECT_TRUE(parsed.isOk()) << parsed.error();
  return parsed.isOk() ? *parsed : RetryOn();
}

// Unknown tokens and impossible status codes are rejected with the offending value named.
TEST(RetryOnTest, ParseRejectsUnknownTokens) {
  auto bad = RetryOn::parse({"5xx", "5XX"});
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(std::string::npos, bad.error().find("\"5XX\""));
  EXPECT_NE(std::string::npos, bad.error().find("gateway-error"));  // lists the valid ones
  auto bad_code = RetryOn::parse({"retriable-status-codes"}, {429, 700});
  ASSERT_FALSE(bad_code.isOk());
  EXPECT_NE(std::string::npos, bad_code.error().find("700"));
  auto all =
      RetryOn::parse({"5xx", "gateway-error", "reset", "reset-before-request", "connect-failure",
                      "refused-stream", "retriable-4xx", "retriable-status-codes", "cancelled",
                      "deadline-exceeded", "internal", "resource-exhausted", "unavailable"});
  ASSERT_TRUE(all.isOk()) << all.error();
  EXPECT_EQ((1u << 13) - 1, all->conditions());
}

struct MatchCase {
  const char* token;
  AttemptResult result;
  bool expected;
};

// retryOn classification table: every token against HTTP, local and gRPC outcomes (Envoy
// semantics; gRPC tokens also see trailers and synthesised statuses).
TEST(RetryOnTest, ClassificationTable) {
  AttemptResult grpc_503;  // gRPC call answered by an intermediary with 503, no grpc-status
  grpc_503.http_status = 503;
  grpc_503.grpc = true;
  grpc_503.request_sent = true;

  const MatchCase cases[] = {
      // 5xx: any 5xx and every "no response" failure; not 4xx, not gRPC statuses.
      {"5xx", http(500), true},
      {"5xx", http(503), true},
      {"5xx", http(404), false},
      {"5xx", http(200), false},
      {"5xx", local(LocalFailure::ConnectFailure, false), true},
      {"5xx", local(LocalFailure::Reset, true), true},
      {"5xx", local(LocalFailure::PerTryTimeout, true), true},
      {"5xx", local(LocalFailure::RefusedStream, true), true},
      {"5xx", grpc(GrpcStatus::Unavailable), false},
      {"5xx", grpc(GrpcStatus::Internal), false},
      // gateway-error: 502/503/504 and "no response" failures.
      {"gateway-error", http(502), true},
      {"gateway-error", http(503), true},
      {"gateway-error", http(504), true},
      {"gateway-error", http(500), false},
      {"gateway-error", local(LocalFailure::ConnectTimeout, false), true},
      {"gateway-error", local(LocalFailure::Reset, true), true},
      // reset: no response, except connect failures.
      {"reset", local(LocalFailure::Reset, true), true},
      {"reset", local(LocalFailure::Reset, false), true},
      {"reset", local(LocalFailure::PerTryTimeout, true), true},
      {"reset", local(LocalFailure::GoAway, true), true},
      {"reset", local(LocalFailure::ConnectFailure, false), false},
      {"reset", http(503), false},
      // reset-before-request: only when no request byte reached the host.
      {"reset-before-request", local(LocalFailure::Reset, false), true},
      {"reset-before-request", local(LocalFailure::Reset, true), false},
      {"reset-before-request", local(LocalFailure::ConnectFailure, false), true},
      {"reset-before-request", local(LocalFailure::PerTryTimeout, true), false},
      {"reset-before-request", http(503), false},
      // connect-failure.
      {"connect-failure", local(LocalFailure::ConnectFailure, false), true},
      {"connect-failure", local(LocalFailure::ConnectTimeout, false), true},
      {"connect-failure", local(LocalFailure::Reset, false), false},
      {"connect-failure", http(503), false},
      // refused-stream (and GOAWAY above last-stream-id).
      {"refused-stream", local(LocalFailure::RefusedStream, true), true},
      {"refused-stream", local(LocalFailure::GoAway, true), true},
      {"refused-stream", local(LocalFailure::Reset, true), false},
      // retriable-4xx: 409 only.
      {"retriable-4xx", http(409), true},
      {"retriable-4xx", http(429), false},
      {"retriable-4xx", http(404), false},
      // gRPC tokens: only their status, from headers or trailers, or a synthesised one.
      {"unavailable", grpc(GrpcStatus::Unavailable), true},
      {"unavailable", grpc_503, true},
      {"unavailable", grpc(GrpcStatus::Internal), false},
      {"unavailable", http(503), false},
      {"unavailable", local(LocalFailure::RefusedStream, true), false},
      {"cancelled", grpc(GrpcStatus::Cancelled), true},
      {"deadline-exceeded", grpc(GrpcStatus::DeadlineExceeded), true},
      {"deadline-exceeded", local(LocalFailure::PerTryTimeout, true), false},
      {"internal", grpc(GrpcStatus::Internal), true},
      {"internal", grpc(GrpcStatus::Unknown), false},
      {"resource-exhausted", grpc(GrpcStatus::ResourceExhausted), true},
      {"resource-exhausted", http(429), false},
      {"unavailable", grpc(GrpcStatus::Ok), false},
  };
  for (const auto& c : cases) {
    EXPECT_EQ(c.expected, on({c.token}).matches(c.result))
        << c.token << " status=" << c.result.http_status
        << " local=" << static_cast<int>(c.result.local_failure)
        << " grpc=" << (c.result.grpc_status ? static_cast<int>(*c.result.grpc_status) : -1);
  }
}

// retriable-status-codes matches exactly the listed codes, and only with the token present.
TEST(RetryOnTest, RetriableStatusCodes) {
  const RetryOn with = on({"retriable-status-codes"}, {429, 418});
  EXPECT_TRUE(with.matches(http(429)));
  EXPECT_TRUE(with.matches(http(418)));
  EXPECT_FALSE(with.matches(http(503)));
  EXPECT_FALSE(with.matches(grpc(GrpcStatus::Unavailable)));
  const RetryOn without = on({"5xx"}, {429});
  EXPECT_FALSE(without.matches(http(429)));
}

class RetryPolicyTest : public ::testing::Test {
protected:
  RetryPolicy::Options options(std::vector<std::string> tokens, uint32_t attempts = 3) {
    RetryPolicy::Options o;
    o.retry_on = on(std::move(tokens));
    o.attempts = attempts;
    o.backoff = {25ms, 250ms, Jitter::None};
    o.max_retry_after = 2s;
    return o;
  }

  RetryRequest request(AttemptResult result, std::string_view method = "GET") {
    RetryRequest r;
    r.result = result;
    r.method = method;
    r.now = time_.now();
    return r;
  }

  SimulatedTime time_;
  FixedRandom random_{0};
};

// A retriable failure with attempts left is retried after the backoff, labelled by outcome.
TEST_F(RetryPolicyTest, RetriesMatchingFailureAfterBackoff) {
  RetryPolicy policy(options({"5xx"}));
  const auto d = policy.decide(request(http(503)), nullptr, random_);
  ASSERT_TRUE(d.retry);
  EXPECT_EQ(25ms, d.delay);  // retry 1, no jitter: base
  EXPECT_EQ("gateway-error", d.reason);
  EXPECT_FALSE(d.pushback_honored);

  auto second = request(http(500));
  second.attempts_made = 2;
  const auto d2 = policy.decide(second, nullptr, random_);
  ASSERT_TRUE(d2.retry);
  EXPECT_EQ(50ms, d2.delay);
  EXPECT_EQ("5xx", d2.reason);
}

// Each guard names its own reason, checked in order.
TEST_F(RetryPolicyTest, EachGuardStopsWithItsReason) {
  RetryPolicy policy(options({"5xx", "unavailable"}, 2));

  EXPECT_EQ(NoRetryReason::NotRetriable, policy.decide(request(http(200)), nullptr, random_).why);
  EXPECT_EQ(NoRetryReason::NotRetriable, policy.decide(request(http(404)), nullptr, random_).why);

  auto started = request(http(503));
  started.response_started = true;
  EXPECT_EQ(NoRetryReason::ResponseStarted, policy.decide(started, nullptr, random_).why);

  auto exhausted = request(http(503));
  exhausted.attempts_made = 2;
  EXPECT_EQ(NoRetryReason::AttemptsExhausted, policy.decide(exhausted, nullptr, random_).why);

  auto unbuffered = request(http(503));
  unbuffered.body_buffered = false;
  EXPECT_EQ(NoRetryReason::BodyNotBuffered, policy.decide(unbuffered, nullptr, random_).why);

  auto late = request(http(503));
  late.deadline = time_.now() + 25ms;  // the 25 ms backoff would end exactly at the deadline
  EXPECT_EQ(NoRetryReason::DeadlineExceeded, policy.decide(late, nullptr, random_).why);
  late.deadline = time_.now() + 26ms;
  EXPECT_TRUE(policy.decide(late, nullptr, random_).retry);
}

// POST is retried only when the request provably never reached the host, unless allowed.
TEST_F(RetryPolicyTest, NonIdempotentRules) {
  const AttemptResult after_send = http(503);
  const AttemptResult reset_after_send = local(LocalFailure::Reset, true);
  const AttemptResult connect = local(LocalFailure::ConnectFailure, false);
  const AttemptResult refused = local(LocalFailure::RefusedStream, true);
  const AttemptResult goaway = local(LocalFailure::GoAway, true);
  const AttemptResult reset_before = local(LocalFailure::Reset, false);

  RetryPolicy never(options({"5xx"}));
  EXPECT_EQ(NoRetryReason::NonIdempotent,
            never.decide(request(after_send, "POST"), nullptr, random_).why);
  EXPECT_EQ(NoRetryReason::NonIdempotent,
            never.decide(request(reset_after_send, "PATCH"), nullptr, random_).why);
  for (const auto& safe : {connect, refused, goaway, reset_before}) {
    EXPECT_TRUE(never.decide(request(safe, "POST"), nullptr, random_).retry);
  }
  EXPECT_TRUE(never.decide(request(after_send, "PUT"), nullptr, random_).retry);  // idempotent
  EXPECT_TRUE(never.decide(request(after_send, "DELETE"), nullptr, random_).retry);

  auto with_key_options = options({"5xx"});
  with_key_options.non_idempotent = NonIdempotentPolicy::WithIdempotencyKey;
  RetryPolicy with_key(with_key_options);
  auto keyed = request(after_send, "POST");
  EXPECT_EQ(NoRetryReason::NonIdempotent, with_key.decide(keyed, nullptr, random_).why);
  keyed.has_idempotency_key = true;
  EXPECT_TRUE(with_key.decide(keyed, nullptr, random_).retry);

  auto always_options = options({"5xx"});
  always_options.non_idempotent = NonIdempotentPolicy::Always;
  RetryPolicy always(always_options);
  EXPECT_TRUE(always.decide(request(reset_after_send, "POST"), nullptr, random_).retry);
}

// gRPC calls are POSTs; a gRPC status token is the route's explicit opt-in (A6), but a reset
// after the call was sent still obeys the non-idempotent rule.
TEST_F(RetryPolicyTest, GrpcStatusTokenIsAnOptIn) {
  RetryPolicy policy(options({"unavailable", "reset"}));
  EXPECT_TRUE(
      policy.decide(request(grpc(GrpcStatus::Unavailable), "POST"), nullptr, random_).retry);
  AttemptResult reset = local(LocalFailure::Reset, true);
  reset.grpc = true;
  EXPECT_EQ(NoRetryReason::NonIdempotent,
            policy.decide(request(reset, "POST"), nullptr, random_).why);
  AttemptResult refused = local(LocalFailure::RefusedStream, true);
  refused.grpc = true;
  RetryPolicy refused_policy(options({"refused-stream"}));
  EXPECT_TRUE(refused_policy.decide(request(refused, "POST"), nullptr, random_).retry);
}

// Retry-After within maxRetryAfter replaces the backoff (jittered up to +50 %, capped); a
// longer ask returns the upstream answer; garbage falls back to the backoff.
TEST_F(RetryPolicyTest, RetryAfterPushback) {
  RetryPolicy policy(options({"5xx"}));
  auto r = request(http(503));
  r.pushback = Pushback::after(1s);
  FixedRandom zero{0};
  auto d = policy.decide(r, nullptr, zero);
  ASSERT_TRUE(d.retry);
  EXPECT_EQ(1s, d.delay);
  EXPECT_TRUE(d.pushback_honored);

  FixedRandom top{FixedRandom::kMax};
  d = policy.decide(r, nullptr, top);
  ASSERT_TRUE(d.retry);
  EXPECT_GE(d.delay, 1s);
  EXPECT_LT(d.delay, 1500ms);
  EXPECT_GT(d.delay, 1499ms);

  r.pushback = Pushback::after(1800ms);  // 1.8 s * 1.5 would pass the 2 s cap
  d = policy.decide(r, nullptr, top);
  ASSERT_TRUE(d.retry);
  EXPECT_EQ(2s, d.delay);

  r.pushback = Pushback::after(30s);
  EXPECT_EQ(NoRetryReason::ServerPushback, policy.decide(r, nullptr, random_).why);

  r.pushback = Pushback::none();
  d = policy.decide(r, nullptr, random_);
  ASSERT_TRUE(d.retry);
  EXPECT_EQ(25ms, d.delay);
  EXPECT_FALSE(d.pushback_honored);

  auto ignore = options({"5xx"});
  ignore.respect_retry_after = false;
  RetryPolicy ignoring(ignore);
  r.pushback = Pushback::after(30s);
  d = ignoring.decide(r, nullptr, random_);
  ASSERT_TRUE(d.retry);
  EXPECT_EQ(25ms, d.delay);
}

// gRPC pushback is waited exactly; "do not retry" stops.
TEST_F(RetryPolicyTest, GrpcPushback) {
  RetryPolicy policy(options({"unavailable"}));
  auto r = request(grpc(GrpcStatus::Unavailable), "POST");
  r.pushback = parseGrpcRetryPushback("150");
  FixedRandom top{FixedRandom::kMax};
  const auto d = policy.decide(r, nullptr, top);
  ASSERT_TRUE(d.retry);
  EXPECT_EQ(150ms, d.delay);
  r.pushback = parseGrpcRetryPushback("-1");
  EXPECT_EQ(NoRetryReason::ServerPushback, policy.decide(r, nullptr, random_).why);
}

// The budget is consulted last and only withdrawn from when the answer is Retry.
TEST_F(RetryPolicyTest, BudgetConsultedLast) {
  RetryBudget::Options budget_options;
  budget_options.percent = 0;
  budget_options.min_retries_per_second = 1;
  budget_options.window = 1s;
  budget_options.reserve_burst = 1;
  RetryBudget budget(budget_options);  // exactly one retry (one reserve token, 1/s)
  RetryPolicy policy(options({"5xx"}));

  auto not_retriable = request(http(404));
  EXPECT_FALSE(policy.decide(not_retriable, &budget, random_).retry);
  EXPECT_EQ(0u, budget.snapshot(time_.now()).retries);

  EXPECT_TRUE(policy.decide(request(http(503)), &budget, random_).retry);
  const auto d = policy.decide(request(http(503)), &budget, random_);
  EXPECT_FALSE(d.retry);
  EXPECT_EQ(NoRetryReason::BudgetExhausted, d.why);
  EXPECT_EQ("budget_exhausted", noRetryReasonLabel(d.why));
  EXPECT_EQ(1u, budget.exhaustedTotal());
}

// RFC 9110 idempotent methods.
TEST(RetryMethodTest, IdempotentMethods) {
  for (const char* m : {"GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE"}) {
    EXPECT_TRUE(isIdempotentMethod(m)) << m;
  }
  for (const char* m : {"POST", "PATCH", "CONNECT", "get", ""}) {
    EXPECT_FALSE(isIdempotentMethod(m)) << m;
  }
}

}  // namespace
}  // namespace bulwark::policies
