#include "common/grpc_status.h"

#include <gtest/gtest.h>

namespace bulwark {
namespace {

// Names follow the wire numbers: the table and the enum cannot drift apart.
TEST(GrpcStatusTest, NamesAreInWireOrder) {
  EXPECT_EQ(grpcStatusNames().size(), 17u);
  EXPECT_EQ(grpcStatusName(GrpcStatus::Ok), "OK");
  EXPECT_EQ(grpcStatusName(GrpcStatus::DeadlineExceeded), "DEADLINE_EXCEEDED");
  EXPECT_EQ(grpcStatusName(GrpcStatus::Unavailable), "UNAVAILABLE");
  EXPECT_EQ(grpcStatusName(GrpcStatus::Unauthenticated), "UNAUTHENTICATED");
  for (uint32_t code = 0; code <= 16; ++code) {
    auto status = grpcStatusFromCode(code);
    ASSERT_TRUE(status.has_value()) << code;
    EXPECT_EQ(grpcStatusFromName(grpcStatusName(*status)), status);
  }
}

// A grpc-status header is decimal without leading zeros, 0..16; anything else is not a status.
TEST(GrpcStatusTest, HeaderParsingIsStrict) {
  EXPECT_EQ(parseGrpcStatus("0"), GrpcStatus::Ok);
  EXPECT_EQ(parseGrpcStatus("14"), GrpcStatus::Unavailable);
  EXPECT_EQ(parseGrpcStatus("16"), GrpcStatus::Unauthenticated);
  for (const char* bad : {"", "17", "014", "00", "-1", "x", "1 ", " 1", "140"}) {
    EXPECT_EQ(parseGrpcStatus(bad), std::nullopt) << '"' << bad << '"';
  }
}

// Config files name statuses; numbers are accepted too, lower case is not.
TEST(GrpcStatusTest, FromNameTakesNamesAndNumbers) {
  EXPECT_EQ(grpcStatusFromName("RESOURCE_EXHAUSTED"), GrpcStatus::ResourceExhausted);
  EXPECT_EQ(grpcStatusFromName("4"), GrpcStatus::DeadlineExceeded);
  EXPECT_EQ(grpcStatusFromName("unavailable"), std::nullopt);
  EXPECT_EQ(grpcStatusFromName("NOPE"), std::nullopt);
}

// What a gRPC client makes of an HTTP answer without grpc-status.
TEST(GrpcStatusTest, HttpStatusMapping) {
  EXPECT_EQ(grpcStatusFromHttp(400), GrpcStatus::Internal);
  EXPECT_EQ(grpcStatusFromHttp(401), GrpcStatus::Unauthenticated);
  EXPECT_EQ(grpcStatusFromHttp(403), GrpcStatus::PermissionDenied);
  EXPECT_EQ(grpcStatusFromHttp(404), GrpcStatus::Unimplemented);
  for (uint32_t s : {429u, 502u, 503u, 504u}) {
    EXPECT_EQ(grpcStatusFromHttp(s), GrpcStatus::Unavailable) << s;
  }
  EXPECT_EQ(grpcStatusFromHttp(500), GrpcStatus::Unknown);
}

}  // namespace
}  // namespace bulwark
