#include "proxy/http/local_reply.h"

#include <set>
#include <string>

#include <gtest/gtest.h>

namespace bulwark::http {
namespace {

constexpr auto kLastKind = LocalReplyKind::RequestBodyTooSlow;

// Every kind has its own reason (a metric label and x-bulwark-reason: two kinds sharing one
// would be indistinguishable on a dashboard) and an error status, but the replay and the
// path redirect.
TEST(LocalReplyTest, EveryKindHasItsOwnReasonAndAStatus) {
  std::set<std::string> reasons;
  for (int k = 0; k <= static_cast<int>(kLastKind); ++k) {
    const auto kind = static_cast<LocalReplyKind>(k);
    const LocalReplyInfo& info = localReplyInfo(kind);
    EXPECT_FALSE(info.reason.empty()) << k;
    EXPECT_TRUE(reasons.insert(std::string(info.reason)).second) << info.reason;
    if (kind == LocalReplyKind::PathRedirect) {
      EXPECT_EQ(info.http_status, 307u);
    } else if (kind != LocalReplyKind::IdempotentReplay) {
      EXPECT_GE(info.http_status, 400u) << info.reason;
      EXPECT_NE(info.grpc_status, GrpcStatus::Ok) << info.reason;
    }
  }
}

// The rows callers and dashboards rely on.
TEST(LocalReplyTest, KnownRows) {
  const auto& timeout = localReplyInfo(LocalReplyKind::RequestTimeout);
  EXPECT_EQ(timeout.reason, "request_timeout");
  EXPECT_EQ(timeout.http_status, 504u);
  EXPECT_EQ(timeout.grpc_status, GrpcStatus::DeadlineExceeded);
  EXPECT_EQ(timeout.fallback_trigger, config::FallbackTrigger::Timeout);
  const auto& open = localReplyInfo(LocalReplyKind::CircuitOpen);
  EXPECT_EQ(open.reason, "circuit_open");
  EXPECT_EQ(open.fallback_trigger, config::FallbackTrigger::CircuitOpen);
  EXPECT_EQ(localReplyInfo(LocalReplyKind::RateLimited).http_status, 429u);
  EXPECT_EQ(localReplyInfo(LocalReplyKind::RouteNotFound).grpc_status, GrpcStatus::Unimplemented);
  EXPECT_EQ(localReplyInfo(LocalReplyKind::IdempotencyKeyInFlight).fallback_trigger,
            config::FallbackTrigger::None);
}

// A reply's own status and gRPC status win over its kind's (loadShedding.reject, a passed-on 5xx).
TEST(LocalReplyTest, OverridesWin) {
  LocalReply reply(LocalReplyKind::LoadShed);
  EXPECT_EQ(reply.httpStatus(), 503u);
  EXPECT_EQ(reply.grpcStatus(), GrpcStatus::Unavailable);
  reply.status = 429;
  reply.grpc_status = GrpcStatus::ResourceExhausted;
  EXPECT_EQ(reply.httpStatus(), 429u);
  EXPECT_EQ(reply.grpcStatus(), GrpcStatus::ResourceExhausted);
  EXPECT_EQ(reply.reason(), "load_shed");
}

// Trigger names round-trip with the config's fallback.on vocabulary.
TEST(LocalReplyTest, FallbackTriggerNamesRoundTrip) {
  for (const auto& name : config::fallbackTriggers()) {
    auto trigger = config::fallbackTriggerFromName(name);
    ASSERT_TRUE(trigger.has_value()) << name;
    EXPECT_EQ(config::fallbackTriggerName(*trigger), name);
  }
  EXPECT_EQ(config::fallbackTriggerFromName("nope"), std::nullopt);
}

}  // namespace
}  // namespace bulwark::http
