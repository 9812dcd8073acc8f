#include "examples/ranking/fault_adapter.h"

#include <gtest/gtest.h>

namespace bulwark::examples::ranking {
namespace {

// Every shared knob maps onto its gRPC meaning.
TEST(FaultAdapterTest, MapsDecisionsToGrpc) {
  FaultDecision d;
  d.action = FaultDecision::Action::Error;
  d.grpc_code = 8;
  d.grpc_pushback_ms = 120;
  d.extra_latency = std::chrono::microseconds(1500);
  d.slow_body_bytes_per_sec = 4096;
  CallFault f = toCallFault(d);
  EXPECT_EQ(f.kind, CallFault::Kind::Error);
  EXPECT_EQ(f.code, grpc::StatusCode::RESOURCE_EXHAUSTED);
  EXPECT_EQ(f.pushback_ms, std::optional<int>(120));
  EXPECT_EQ(f.latency, std::chrono::microseconds(1500));
  EXPECT_EQ(f.slow_body_bytes_per_sec, 4096);

  d = {};
  d.action = FaultDecision::Action::Hang;
  EXPECT_EQ(toCallFault(d).kind, CallFault::Kind::Hang);
  EXPECT_FALSE(toCallFault(d).pushback_ms.has_value());
  d.action = FaultDecision::Action::Reset;
  EXPECT_EQ(toCallFault(d).kind, CallFault::Kind::Reset);
  d.action = FaultDecision::Action::Crash;
  EXPECT_EQ(toCallFault(d).kind, CallFault::Kind::Crash);
  EXPECT_EQ(toCallFault(d).crash_exit_code, kCrashExitCode);
  d.action = FaultDecision::Action::None;
  EXPECT_EQ(toCallFault(d).kind, CallFault::Kind::None);
}

// The decider follows the injector's current spec, so control-endpoint changes apply at once.
TEST(FaultAdapterTest, DeciderFollowsInjector) {
  FaultInjector injector;
  auto decide = makeCallFaultDecider(injector);
  EXPECT_EQ(decide().kind, CallFault::Kind::None);
  FaultSpec spec;
  spec.error_rate = 1;
  injector.set(spec);
  EXPECT_EQ(decide().kind, CallFault::Kind::Error);
  injector.set(FaultSpec{});
  EXPECT_EQ(decide().kind, CallFault::Kind::None);
}

}  // namespace
}  // namespace bulwark::examples::ranking
