#include "bench/loadgen/schedule.h"

#include <cmath>
#include <vector>

#include <gtest/gtest.h>

namespace bulwark::bench {
namespace {

using namespace std::chrono_literals;

PhaseSpec phase(const char* text) {
  auto p = parsePhase(text);
  EXPECT_TRUE(p.isOk()) << p.error();
  return p.isOk() ? *p : PhaseSpec{};
}

double seconds(std::chrono::nanoseconds d) { return std::chrono::duration<double>(d).count(); }

// Constant rate: request i is due at exactly i / rate; 200 rps for 2 s is 400 requests.
TEST(ArrivalScheduleTest, ConstantRate) {
  const PhaseSpec p = phase("steady:200:2s");
  EXPECT_FALSE(p.isRamp());
  EXPECT_EQ(400u, p.requestCount());
  EXPECT_EQ(0ns, p.offsetOf(0));
  EXPECT_EQ(5ms, p.offsetOf(1));
  EXPECT_EQ(1995ms, p.offsetOf(399));
  EXPECT_EQ(3u, phase("x:0.1:30s").requestCount());
  EXPECT_EQ(0u, phase("idle:0:5s").requestCount());
}

// Ramp 0 -> 100 rps over 10 s: N(t) = 5 t^2, so 500 requests, request 5 at 1 s, 125 at 5 s,
// 320 at 8 s.
TEST(ArrivalScheduleTest, LinearRampUp) {
  const PhaseSpec p = phase("ramp:0-100:10s");
  EXPECT_TRUE(p.isRamp());
  EXPECT_EQ(500u, p.requestCount());
  EXPECT_NEAR(1.0, seconds(p.offsetOf(5)), 1e-6);
  EXPECT_NEAR(5.0, seconds(p.offsetOf(125)), 1e-6);
  EXPECT_NEAR(8.0, seconds(p.offsetOf(320)), 1e-6);
  EXPECT_LT(seconds(p.offsetOf(499)), 10.0);
}

// Ramp down 100 -> 0: N(t) = 100 t - 5 t^2, request 375 at 5 s; still 500 requests.
TEST(ArrivalScheduleTest, LinearRampDown) {
  const PhaseSpec p = phase("down:100-0:10s");
  EXPECT_EQ(500u, p.requestCount());
  EXPECT_NEAR(5.0, seconds(p.offsetOf(375)), 1e-6);
  EXPECT_NEAR(1.0, seconds(p.offsetOf(95)), 1e-6);
  EXPECT_LE(seconds(p.offsetOf(499)), 10.0);
}

// Per second the ramp sends the integral of its rate over that second (+-1 for rounding), and
// send times never go backwards.
TEST(ArrivalScheduleTest, RampPerSecondCountsFollowTheIntegral) {
  const PhaseSpec p = phase("ramp:50-250:4s");
  std::vector<int> per_second(4, 0);
  std::chrono::nanoseconds last{-1};
  for (uint64_t i = 0; i < p.requestCount(); ++i) {
    const auto at = p.offsetOf(i);
    ASSERT_GT(at, last) << i;
    last = at;
    ++per_second.at(static_cast<size_t>(seconds(at)));
  }
  // rate(t) = 50 + 50 t: integrals over the four seconds are 75, 125, 175, 225.
  const int expected[] = {75, 125, 175, 225};
  for (size_t s = 0; s < 4; ++s) {
    EXPECT_NEAR(expected[s], per_second[s], 1) << "second " << s;
  }
}

// Phases run back to back; idle phases send nothing but still take their time.
TEST(ArrivalScheduleTest, PhasesBackToBack) {
  ArrivalSchedule schedule({phase("a:10:1s"), phase("pause:0:2s"), phase("b:20:500ms")});
  EXPECT_EQ(20u, schedule.totalRequests());
  EXPECT_EQ(3500ms, schedule.totalDuration());
  EXPECT_EQ(3s, schedule.phaseStart(2));
  std::vector<Arrival> arrivals;
  for (auto a = schedule.peek(); a; a = schedule.peek()) {
    arrivals.push_back(*a);
    schedule.advance();
  }
  ASSERT_EQ(20u, arrivals.size());
  EXPECT_EQ(0u, arrivals[9].phase);
  EXPECT_EQ(900ms, arrivals[9].at);
  EXPECT_EQ(2u, arrivals[10].phase);
  EXPECT_EQ(0u, arrivals[10].index_in_phase);
  EXPECT_EQ(3s, arrivals[10].at);
  EXPECT_EQ(3450ms, arrivals[19].at);
  EXPECT_EQ(19u, arrivals[19].sequence);
  EXPECT_FALSE(schedule.peek().has_value());
}

TEST(ArrivalScheduleTest, ParseDurationAndPhase) {
  EXPECT_EQ(10s, *parseDuration("10s"));
  EXPECT_EQ(500ms, *parseDuration("500ms"));
  EXPECT_EQ(2min, *parseDuration("2m"));
  EXPECT_EQ(1500ms, *parseDuration("1.5s"));
  EXPECT_EQ(250us, *parseDuration("250us"));
  EXPECT_EQ(1h, *parseDuration("1h"));
  EXPECT_EQ(3s, *parseDuration("3"));
  for (const char* bad : {"", "s", "10x", "-1s", "abc", "1.2.3s"}) {
    EXPECT_FALSE(parseDuration(bad).isOk()) << bad;
  }
  const PhaseSpec p = phase("spike:100-2000.5:30s");
  EXPECT_EQ("spike", p.name);
  EXPECT_EQ(100.0, p.rps_from);
  EXPECT_EQ(2000.5, p.rps_to);
  EXPECT_EQ(30s, p.duration);
  for (const char* bad :
       {"steady", "steady:100", ":100:1s", "a:x:1s", "a:100:0s", "a:100-:1s", "a:-5:1s"}) {
    EXPECT_FALSE(parsePhase(bad).isOk()) << bad;
  }
}

}  // namespace
}  // namespace bulwark::bench
