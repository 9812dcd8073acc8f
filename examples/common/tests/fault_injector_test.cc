#include "examples/common/fault_injector.h"

#include <gtest/gtest.h>

namespace bulwark::examples {
namespace {

using Action = FaultDecision::Action;

TEST(FaultInjectorTest, InactiveSpecNeverInjects) {
  FaultInjector injector;
  policies::SeededRandom random(1);
  for (int i = 0; i < 1000; ++i) {
    auto d = injector.decide(random);
    ASSERT_EQ(d.action, Action::None);
    ASSERT_EQ(d.extra_latency.count(), 0);
  }
}

TEST(FaultInjectorTest, RateOneAlwaysFiresAndCarriesTheErrorDetails) {
  FaultSpec spec;
  spec.error_rate = 1;
  spec.error_http_status = 429;
  spec.retry_after = "2";
  spec.grpc_pushback_ms = 100;
  FaultInjector injector(spec);
  policies::SeededRandom random(2);
  for (int i = 0; i < 1000; ++i) {
    auto d = injector.decide(random);
    ASSERT_EQ(d.action, Action::Error);
    ASSERT_EQ(d.http_status, 429);
    ASSERT_EQ(d.retry_after, "2");
    ASSERT_EQ(d.grpc_pushback_ms, 100);
  }
}

TEST(FaultInjectorTest, PartialRateFiresInProportion) {
  FaultSpec spec;
  spec.error_rate = 0.3;
  policies::SeededRandom random(3);
  int errors = 0;
  constexpr int kN = 20000;
  for (int i = 0; i < kN; ++i) {
    errors += FaultInjector::decide(spec, random).action == Action::Error ? 1 : 0;
  }
  EXPECT_NEAR(static_cast<double>(errors) / kN, 0.3, 0.02);
}

TEST(FaultInjectorTest, PrecedenceIsCrashHangResetError) {
  policies::SeededRandom random(4);
  FaultSpec spec;
  spec.error_rate = 1;
  spec.reset_rate = 1;
  spec.hang_rate = 1;
  spec.crash = true;
  EXPECT_EQ(FaultInjector::decide(spec, random).action, Action::Crash);
  spec.crash = false;
  EXPECT_EQ(FaultInjector::decide(spec, random).action, Action::Hang);
  spec.hang_rate = 0;
  EXPECT_EQ(FaultInjector::decide(spec, random).action, Action::Reset);
  spec.reset_rate = 0;
  EXPECT_EQ(FaultInjector::decide(spec, random).action, Action::Error);
}

TEST(FaultInjectorTest, LatencyIsFixedPlusDistribution) {
  policies::SeededRandom random(5);
  FaultSpec spec;
  spec.latency_fixed_ms = 10;
  spec.latency_distribution = *LatencyDistribution::parse("uniform:5:6");
  for (int i = 0; i < 100; ++i) {
    auto d = FaultInjector::decide(spec, random);
    ASSERT_EQ(d.action, Action::None);
    ASSERT_GE(d.extra_latency.count(), 15000);
    ASSERT_LE(d.extra_latency.count(), 16000);
  }
}

TEST(FaultInjectorTest, SetReplacesAndClears) {
  FaultInjector injector;
  policies::SeededRandom random(6);
  FaultSpec spec;
  spec.hang_rate = 1;
  injector.set(spec);
  EXPECT_EQ(injector.current(), spec);
  EXPECT_EQ(injector.decide(random).action, Action::Hang);
  injector.set(FaultSpec{});
  EXPECT_EQ(injector.decide(random).action, Action::None);
}

TEST(FaultInjectorTest, SlowBodyRateIsPassedThrough) {
  policies::SeededRandom random(7);
  FaultSpec spec;
  spec.slow_body_bytes_per_sec = 512;
  auto d = FaultInjector::decide(spec, random);
  EXPECT_EQ(d.action, Action::None);
  EXPECT_EQ(d.slow_body_bytes_per_sec, 512);
}

}  // namespace
}  // namespace bulwark::examples
