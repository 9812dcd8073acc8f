#include "policies/retry/retry_after.h"

#include <gtest/gtest.h>

#include "tests/support/simulated_time.h"

namespace bulwark::policies {
namespace {

using namespace std::chrono_literals;
using bulwark::testing::SimulatedTime;

// 1994-11-06T08:49:37Z, the RFC 9110 example instant.
constexpr int64_t kRfcExample = 784111777;

WallTime at(int64_t unix_seconds) { return WallTime(std::chrono::seconds(unix_seconds)); }

// delay-seconds: digits only, whitespace trimmed.
TEST(RetryAfterTest, DelaySeconds) {
  const WallTime now = SimulatedTime().wallNow();
  auto p = parseRetryAfter("120", now);
  EXPECT_EQ(Pushback::Kind::Delay, p.kind);
  EXPECT_EQ(120s, p.delay);
  EXPECT_EQ(0s, parseRetryAfter("0", now).delay);
  EXPECT_EQ(Pushback::Kind::Delay, parseRetryAfter("0", now).kind);
  EXPECT_EQ(5s, parseRetryAfter("  5\t", now).delay);
  EXPECT_EQ(1s, parseRetryAfter("01", now).delay);
}

// All three HTTP-date forms, relative to the passed-in wall clock; past dates mean "now".
TEST(RetryAfterTest, HttpDateForms) {
  const WallTime now = at(kRfcExample - 30);
  for (const char* date : {"Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT",
                           "Sun Nov  6 08:49:37 1994"}) {
    const auto p = parseRetryAfter(date, now);
    EXPECT_EQ(Pushback::Kind::Delay, p.kind) << date;
    EXPECT_EQ(30s, p.delay) << date;
  }
  const auto past = parseRetryAfter("Sun, 06 Nov 1994 08:49:37 GMT", at(kRfcExample + 3600));
  EXPECT_EQ(Pushback::Kind::Delay, past.kind);
  EXPECT_EQ(0s, past.delay);
}

// Garbage, negative and fractional values are ignored (normal backoff applies).
TEST(RetryAfterTest, GarbageIsIgnored) {
  const WallTime now = SimulatedTime().wallNow();
  for (const char* v : {"", "   ", "-1", "-0", "1.5", "10s", "soon", "5 6", "+5", "0x10",
                        "Sun, 06 Nov 1994 08:49:37 UTC", "Sun, 31 Feb 1994 08:49:37 GMT",
                        "Sun, 06 Nov 1994 25:49:37 GMT", "Sun, 06 Foo 1994 08:49:37 GMT",
                        "Sun, 6 Nov 1994 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 GMT extra"}) {
    EXPECT_EQ(Pushback::Kind::None, parseRetryAfter(v, now).kind) << '"' << v << '"';
  }
}

// Values too large to represent saturate, so any cap turns them into "stop retrying".
TEST(RetryAfterTest, HugeValuesSaturate) {
  const WallTime now = SimulatedTime().wallNow();
  for (const char* v :
       {"9223372036854775807", "99999999999999999999999999999", "18446744073709551616"}) {
    const auto p = parseRetryAfter(v, now);
    EXPECT_EQ(Pushback::Kind::Delay, p.kind) << v;
    EXPECT_EQ(kMaxDuration, p.delay) << v;
  }
  // 100 years is representable (as nanoseconds, up to ~292 years) and exact.
  EXPECT_EQ(std::chrono::seconds(3153600000), parseRetryAfter("3153600000", now).delay);
  const auto far = parseRetryAfter("Fri, 31 Dec 9999 23:59:59 GMT", now);
  EXPECT_EQ(Pushback::Kind::Delay, far.kind);
  EXPECT_EQ(kMaxDuration, far.delay);
}

// Leap years and month lengths are validated.
TEST(RetryAfterTest, CalendarValidation) {
  int64_t t = 0;
  EXPECT_TRUE(parseHttpDate("Thu, 29 Feb 2024 00:00:00 GMT", t));
  EXPECT_EQ(1709164800, t);
  EXPECT_FALSE(parseHttpDate("Fri, 29 Feb 2023 00:00:00 GMT", t));
  EXPECT_TRUE(parseHttpDate("Tue, 29 Feb 2000 00:00:00 GMT", t));
  EXPECT_FALSE(parseHttpDate("Thu, 29 Feb 1900 00:00:00 GMT", t));
  EXPECT_FALSE(parseHttpDate("Mon, 31 Apr 2024 00:00:00 GMT", t));
  EXPECT_TRUE(parseHttpDate("Thu, 01 Jan 1970 00:00:00 GMT", t));
  EXPECT_EQ(0, t);
}

// formatHttpDate is the inverse of parsing, for the IMF-fixdate form.
TEST(RetryAfterTest, FormatRoundTrip) {
  EXPECT_EQ("Sun, 06 Nov 1994 08:49:37 GMT", formatHttpDate(kRfcExample));
  EXPECT_EQ("Thu, 01 Jan 1970 00:00:00 GMT", formatHttpDate(0));
  for (const int64_t s : {int64_t{951782400}, int64_t{1709164800}, int64_t{4102444799}}) {
    int64_t back = -1;
    ASSERT_TRUE(parseHttpDate(formatHttpDate(s), back)) << formatHttpDate(s);
    EXPECT_EQ(s, back);
  }
}

// grpc-retry-pushback-ms: non-negative int32 = delay; negative or unparseable = do not retry.
TEST(RetryAfterTest, GrpcPushback) {
  EXPECT_EQ(Pushback::Kind::Delay, parseGrpcRetryPushback("0").kind);
  EXPECT_EQ(250ms, parseGrpcRetryPushback("250").delay);
  EXPECT_EQ(std::chrono::milliseconds(INT32_MAX), parseGrpcRetryPushback("2147483647").delay);
  for (const char* v : {"-1", "-250", "", "abc", "1.5", "2147483648", "99999999999"}) {
    EXPECT_EQ(Pushback::Kind::DoNotRetry, parseGrpcRetryPushback(v).kind) << '"' << v << '"';
  }
}

}  // namespace
}  // namespace bulwark::policies
