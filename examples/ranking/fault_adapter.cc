#include "examples/ranking/fault_adapter.h"

#include <random>

#include "policies/random.h"

namespace bulwark::examples::ranking {

CallFault toCallFault(const FaultDecision& decision) {
  CallFault fault;
  switch (decision.action) {
    case FaultDecision::Action::None: fault.kind = CallFault::Kind::None; break;
    case FaultDecision::Action::Error: fault.kind = CallFault::Kind::Error; break;
    case FaultDecision::Action::Hang: fault.kind = CallFault::Kind::Hang; break;
    case FaultDecision::Action::Reset: fault.kind = CallFault::Kind::Reset; break;
    case FaultDecision::Action::Crash: fault.kind = CallFault::Kind::Crash; break;
  }
  fault.latency = decision.extra_latency;
  fault.code = static_cast<grpc::StatusCode>(decision.grpc_code);
  if (decision.grpc_pushback_ms) {
    fault.pushback_ms = static_cast<int>(*decision.grpc_pushback_ms);
  }
  fault.slow_body_bytes_per_sec = decision.slow_body_bytes_per_sec;
  fault.crash_exit_code = kCrashExitCode;
  return fault;
}

CallFaultDecider makeCallFaultDecider(FaultInjector& injector) {
  return [&injector] {
    thread_local policies::SeededRandom random(std::random_device{}());
    return toCallFault(injector.decide(random));
  };
}

}  // namespace bulwark::examples::ranking
