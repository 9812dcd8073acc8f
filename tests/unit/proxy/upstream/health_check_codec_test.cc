#include <gtest/gtest.h>

#include "proxy/upstream/health_checker.h"

namespace bulwark::upstream {
namespace {

TEST(GrpcHealthCodecTest, EncodesTheServiceAsField1) {
  std::string framed = grpc_health::encodeCheckRequest("ranking.v1.R");
  ASSERT_EQ(framed.size(), 5u + 2 + 12);
  EXPECT_EQ(framed.substr(0, 5), std::string("\0\0\0\0\x0e", 5));
  EXPECT_EQ(framed.substr(5, 2), std::string("\x0a\x0c", 2));
  EXPECT_EQ(framed.substr(7), "ranking.v1.R");
  EXPECT_EQ(grpc_health::encodeCheckRequest(""), std::string("\0\0\0\0\0", 5));
}

TEST(GrpcHealthCodecTest, DecodesTheStatus) {
  EXPECT_EQ(grpc_health::decodeCheckResponse(std::string("\0\0\0\0\x02\x08\x01", 7)), 1u);
  EXPECT_EQ(grpc_health::decodeCheckResponse(std::string("\0\0\0\0\x02\x08\x02", 7)), 2u);
  EXPECT_EQ(grpc_health::decodeCheckResponse(std::string("\0\0\0\0\0", 5)), 0u);
  // Unknown fields are skipped.
  EXPECT_EQ(grpc_health::decodeCheckResponse(std::string("\0\0\0\0\x05\x12\x01x\x08\x01", 10)), 1u);
  EXPECT_EQ(grpc_health::decodeCheckResponse(std::string("\0\0\0\0\x05\x08", 6)), std::nullopt);
  EXPECT_EQ(grpc_health::decodeCheckResponse(std::string("\x01\0\0\0\x02\x08\x01", 7)),
            std::nullopt);
}

}  // namespace
}  // namespace bulwark::upstream
