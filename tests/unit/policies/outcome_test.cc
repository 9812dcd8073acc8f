#include "policies/outcome.h"

#include <gtest/gtest.h>

#include "tests/unit/policies/attempt_results.h"

namespace bulwark::policies {
namespace {

using test::grpc;
using test::http;
using test::local;

struct ClassifyCase {
  const char* name;
  AttemptResult result;
  Outcome expected;
  const char* label;
};

// Every kind of attempt result maps to exactly one outcome with a stable label.
TEST(OutcomeTest, ClassificationTable) {
  AttemptResult grpc_503_no_status;
  grpc_503_no_status.http_status = 503;
  grpc_503_no_status.grpc = true;
  AttemptResult grpc_200_no_status;
  grpc_200_no_status.http_status = 200;
  grpc_200_no_status.grpc = true;
  AttemptResult grpc_404_no_status;
  grpc_404_no_status.http_status = 404;
  grpc_404_no_status.grpc = true;
  AttemptResult reset_with_status = local(LocalFailure::Reset, true);
  reset_with_status.http_status = 200;  // headers arrived, then the body was cut off

  const ClassifyCase cases[] = {
      {"200", http(200), Outcome::Success, "success"},
      {"204", http(204), Outcome::Success, "success"},
      {"304", http(304), Outcome::Success, "success"},
      {"404", http(404), Outcome::Http4xx, "4xx"},
      {"409", http(409), Outcome::Http4xx, "4xx"},
      {"429", http(429), Outcome::Http4xx, "4xx"},
      {"500", http(500), Outcome::Http5xx, "5xx"},
      {"501", http(501), Outcome::Http5xx, "5xx"},
      {"502", http(502), Outcome::GatewayError, "gateway-error"},
      {"503", http(503), Outcome::GatewayError, "gateway-error"},
      {"504", http(504), Outcome::GatewayError, "gateway-error"},
      {"599", http(599), Outcome::Http5xx, "5xx"},
      {"no status", http(0), Outcome::ProtocolError, "protocol-error"},
      {"status 600", http(600), Outcome::ProtocolError, "protocol-error"},
      {"connect failure", local(LocalFailure::ConnectFailure, false), Outcome::ConnectFailure,
       "connect-failure"},
      {"connect timeout", local(LocalFailure::ConnectTimeout, false), Outcome::ConnectTimeout,
       "connect-timeout"},
      {"reset before request", local(LocalFailure::Reset, false), Outcome::ResetBeforeRequest,
       "reset-before-request"},
      {"reset after request", local(LocalFailure::Reset, true), Outcome::Reset, "reset"},
      {"reset wins over status", reset_with_status, Outcome::Reset, "reset"},
      {"refused stream", local(LocalFailure::RefusedStream, true), Outcome::RefusedStream,
       "refused-stream"},
      {"goaway", local(LocalFailure::GoAway, true), Outcome::GoAwayBeforeProcessing, "goaway"},
      {"per-try timeout", local(LocalFailure::PerTryTimeout, true), Outcome::PerTryTimeout,
       "per-try-timeout"},
      {"protocol error", local(LocalFailure::ProtocolError, true), Outcome::ProtocolError,
       "protocol-error"},
      {"grpc ok", grpc(GrpcStatus::Ok), Outcome::Success, "success"},
      {"grpc cancelled", grpc(GrpcStatus::Cancelled), Outcome::GrpcCancelled, "cancelled"},
      {"grpc deadline", grpc(GrpcStatus::DeadlineExceeded), Outcome::GrpcDeadlineExceeded,
       "deadline-exceeded"},
      {"grpc internal", grpc(GrpcStatus::Internal), Outcome::GrpcInternal, "internal"},
      {"grpc exhausted", grpc(GrpcStatus::ResourceExhausted), Outcome::GrpcResourceExhausted,
       "resource-exhausted"},
      {"grpc unavailable", grpc(GrpcStatus::Unavailable), Outcome::GrpcUnavailable, "unavailable"},
      {"grpc unknown", grpc(GrpcStatus::Unknown), Outcome::GrpcServerError, "grpc-server-error"},
      {"grpc data loss", grpc(GrpcStatus::DataLoss), Outcome::GrpcServerError, "grpc-server-error"},
      {"grpc not found", grpc(GrpcStatus::NotFound), Outcome::GrpcClientError, "grpc-client-error"},
      {"grpc invalid argument", grpc(GrpcStatus::InvalidArgument), Outcome::GrpcClientError,
       "grpc-client-error"},
      {"grpc 503 without status", grpc_503_no_status, Outcome::GrpcUnavailable, "unavailable"},
      {"grpc 404 without status", grpc_404_no_status, Outcome::GrpcClientError,
       "grpc-client-error"},
      {"grpc 200 without status", grpc_200_no_status, Outcome::ProtocolError, "protocol-error"},
  };
  for (const auto& c : cases) {
    const Outcome got = classify(c.result);
    EXPECT_EQ(c.expected, got) << c.name;
    EXPECT_EQ(c.label, reasonLabel(got)) << c.name;
  }
}

// Breaker, outlier and retry helpers agree on which outcomes are failures and of what kind.
TEST(OutcomeTest, FailureKindHelpers) {
  EXPECT_FALSE(isFailure(Outcome::Success));
  EXPECT_FALSE(isFailure(Outcome::Http4xx));
  EXPECT_FALSE(isFailure(Outcome::GrpcClientError));
  EXPECT_TRUE(isFailure(Outcome::GrpcCancelled));
  EXPECT_FALSE(isBreakerFailure(Outcome::GrpcCancelled));  // the downstream gave up
  EXPECT_TRUE(isBreakerFailure(Outcome::GrpcResourceExhausted));
  EXPECT_TRUE(isBreakerFailure(Outcome::ConnectFailure));
  EXPECT_TRUE(isBreakerFailure(Outcome::Http5xx));

  EXPECT_TRUE(isLocalOriginFailure(Outcome::ConnectFailure));
  EXPECT_TRUE(isLocalOriginFailure(Outcome::PerTryTimeout));
  EXPECT_FALSE(isLocalOriginFailure(Outcome::GoAwayBeforeProcessing));
  EXPECT_FALSE(isLocalOriginFailure(Outcome::GatewayError));

  EXPECT_TRUE(isServer5xxLike(Outcome::GrpcInternal));
  EXPECT_TRUE(isServer5xxLike(Outcome::GatewayError));
  EXPECT_FALSE(isServer5xxLike(Outcome::GrpcResourceExhausted));
  EXPECT_FALSE(isServer5xxLike(Outcome::ConnectFailure));
  EXPECT_TRUE(isGatewayErrorLike(Outcome::GrpcUnavailable));
  EXPECT_FALSE(isGatewayErrorLike(Outcome::Http5xx));
}

// Only failures that provably left the request unprocessed allow replaying unsafe methods.
TEST(OutcomeTest, RequestNeverProcessed) {
  EXPECT_TRUE(requestNeverProcessed(local(LocalFailure::ConnectFailure, false)));
  EXPECT_TRUE(requestNeverProcessed(local(LocalFailure::ConnectTimeout, false)));
  EXPECT_TRUE(requestNeverProcessed(local(LocalFailure::RefusedStream, true)));
  EXPECT_TRUE(requestNeverProcessed(local(LocalFailure::GoAway, true)));
  EXPECT_TRUE(requestNeverProcessed(local(LocalFailure::Reset, false)));
  EXPECT_FALSE(requestNeverProcessed(local(LocalFailure::Reset, true)));
  EXPECT_FALSE(requestNeverProcessed(local(LocalFailure::PerTryTimeout, true)));
  EXPECT_FALSE(requestNeverProcessed(http(503)));
}

// grpc-status parsing is strict: decimal 0..16 without leading zeros.
TEST(OutcomeTest, GrpcStatusParsing) {
  EXPECT_EQ(GrpcStatus::Ok, parseGrpcStatus("0"));
  EXPECT_EQ(GrpcStatus::Unavailable, parseGrpcStatus("14"));
  EXPECT_EQ(GrpcStatus::Unauthenticated, parseGrpcStatus("16"));
  EXPECT_FALSE(parseGrpcStatus("17"));
  EXPECT_FALSE(parseGrpcStatus("014"));
  EXPECT_FALSE(parseGrpcStatus("01"));
  EXPECT_FALSE(parseGrpcStatus(""));
  EXPECT_FALSE(parseGrpcStatus("-1"));
  EXPECT_FALSE(parseGrpcStatus("1a"));
  EXPECT_EQ("UNAVAILABLE", grpcStatusName(GrpcStatus::Unavailable));
  EXPECT_EQ("DEADLINE_EXCEEDED", grpcStatusName(GrpcStatus::DeadlineExceeded));
}

// The HTTP-to-gRPC table of grpc/grpc http-grpc-status-mapping.md.
TEST(OutcomeTest, HttpToGrpcMapping) {
  EXPECT_EQ(GrpcStatus::Internal, grpcStatusFromHttp(400));
  EXPECT_EQ(GrpcStatus::Unauthenticated, grpcStatusFromHttp(401));
  EXPECT_EQ(GrpcStatus::PermissionDenied, grpcStatusFromHttp(403));
  EXPECT_EQ(GrpcStatus::Unimplemented, grpcStatusFromHttp(404));
  for (const uint32_t s : {429u, 502u, 503u, 504u}) {
    EXPECT_EQ(GrpcStatus::Unavailable, grpcStatusFromHttp(s)) << s;
  }
  EXPECT_EQ(GrpcStatus::Unknown, grpcStatusFromHttp(500));
  EXPECT_EQ(GrpcStatus::Unknown, grpcStatusFromHttp(418));
}

}  // namespace
}  // namespace bulwark::policies
