#include "examples/common/fault_injector.h"

#include <unistd.h>

#include <cmath>

namespace bulwark::examples {

void crashNow() {
  static const char kMessage[] = "fault injection: crashing now\n";
  // write(2) and _exit(2) only: a crash does not run destructors, flush buffers or drain.
  ssize_t ignored = ::write(STDERR_FILENO, kMessage, sizeof(kMessage) - 1);
  (void)ignored;
  ::_exit(kCrashExitCode);
}

FaultInjector::FaultInjector(FaultSpec spec) : spec_(std::move(spec)) {}

void FaultInjector::set(const FaultSpec& spec) {
  std::lock_guard lock(mu_);
  spec_ = spec;
}

FaultSpec FaultInjector::current() const {
  std::lock_guard lock(mu_);
  return spec_;
}

FaultDecision FaultInjector::decide(policies::Random& random) const {
  FaultSpec spec;
  {
    std::lock_guard lock(mu_);
    spec = spec_;
  }
  return decide(spec, random);
}

FaultDecision FaultInjector::decide(const FaultSpec& spec, policies::Random& random) {
  FaultDecision d;
  d.http_status = spec.error_http_status;
  d.grpc_code = spec.error_grpc_code;
  d.retry_after = spec.retry_after;
  d.grpc_pushback_ms = spec.grpc_pushback_ms;
  d.slow_body_bytes_per_sec = spec.slow_body_bytes_per_sec;
  if (spec.inactive()) {
    return d;
  }
  // A rate of exactly 0 never fires and exactly 1 always fires (uniform01() is in [0, 1)).
  auto fires = [&random](double rate) { return rate > 0 && random.uniform01() < rate; };
  if (spec.crash) {
    d.action = FaultDecision::Action::Crash;
    return d;
  }
  if (fires(spec.hang_rate)) {
    d.action = FaultDecision::Action::Hang;
    return d;
  }
  double latency_ms = spec.latency_fixed_ms + spec.latency_distribution.sampleMs(random);
  d.extra_latency =
      std::chrono::microseconds(static_cast<int64_t>(std::llround(latency_ms * 1000)));
  if (fires(spec.reset_rate)) {
    d.action = FaultDecision::Action::Reset;
  } else if (fires(spec.error_rate)) {
    d.action = FaultDecision::Action::Error;
  }
  return d;
}

}  // namespace bulwark::examples
