#include "proxy/http/grpc.h"

#include <gtest/gtest.h>

namespace bulwark::http::grpc {
namespace {

using std::chrono::hours;
using std::chrono::microseconds;
using std::chrono::milliseconds;
using std::chrono::seconds;

// grpc-timeout values of every unit parse; anything outside "1 to 8 digits, then a unit" is
// ignored (nullopt).
TEST(GrpcTimeoutTest, ParsesEveryUnitAndRejectsMalformedValues) {
  EXPECT_EQ(parseTimeout("100m"), milliseconds(100));
  EXPECT_EQ(parseTimeout("5S"), seconds(5));
  EXPECT_EQ(parseTimeout("2H"), hours(2));
  EXPECT_EQ(parseTimeout("3M"), seconds(180));
  EXPECT_EQ(parseTimeout("250u"), microseconds(250));
  EXPECT_EQ(parseTimeout("1500n"), microseconds(1));
  EXPECT_EQ(parseTimeout("99999999H"), hours(99999999));
  for (const char* bad : {"", "S", "123456789S", "-1S", "+1S", "1x", "1.5S", " 1S", "1 S"}) {
    EXPECT_FALSE(parseTimeout(bad).has_value()) << bad;
  }
}

// Encoding rounds down into at most 8 digits of the finest unit that fits, and a deadline longer
// than the longest grpc-timeout is sent as that, not as a 9-or-more-digit value.
TEST(GrpcTimeoutTest, EncodesAtMostEightDigitsNeverLonger) {
  EXPECT_EQ(encodeTimeout(microseconds(-5)), "0u");
  EXPECT_EQ(encodeTimeout(microseconds(99999999)), "99999999u");
  EXPECT_EQ(encodeTimeout(microseconds(100000000)), "100000m");
  EXPECT_EQ(encodeTimeout(seconds(100000000)), "27777H");
  EXPECT_EQ(encodeTimeout(hours(99999999)), "99999999H");
  EXPECT_EQ(encodeTimeout(hours(100000000)), "99999999H");
  EXPECT_EQ(encodeTimeout(microseconds::max()), "99999999H");
  for (microseconds t :
       {microseconds(1), microseconds(123456789), microseconds(98765432123), microseconds::max()}) {
    auto parsed = parseTimeout(encodeTimeout(t));
    ASSERT_TRUE(parsed.has_value()) << t.count();
    EXPECT_LE(*parsed, t);
  }
}

}  // namespace
}  // namespace bulwark::http::grpc
