#pragma once

#include <chrono>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>

#include "examples/common/fault_spec.h"
#include "policies/random.h"

namespace bulwark::examples {

/**
 * What to do with one request, drawn from the current FaultSpec.
 * Thread: value type, any.
 */
struct FaultDecision {
  enum class Action {
    None,   // serve normally
    Error,  // answer http_status / grpc_code without serving
    Hang,   // never answer; keep the connection open
    Reset,  // serve, send part of the response, then reset the connection
    Crash,  // exit the process abruptly (crashNow())
  };
  Action action = Action::None;
  /** Wait this long before serving or failing (fixed + distribution sample). */
  std::chrono::microseconds extra_latency{0};
  int http_status = FaultSpec::kDefaultHttpStatus;
  int grpc_code = FaultSpec::kDefaultGrpcCode;
  std::optional<std::string> retry_after;
  std::optional<int64_t> grpc_pushback_ms;
  /** > 0: trickle the response body at this rate. */
  int64_t slow_body_bytes_per_sec = 0;
};

/** Exit code of an injected crash (EX_SOFTWARE), so tests can tell it from a clean exit. */
inline constexpr int kCrashExitCode = 70;

/** Exits the process at once, without flushing or draining: the injected "crash". */
[[noreturn]] void crashNow();

/**
 * Holds the fault spec of a process, replaceable at run time by the control endpoint, and draws
 * a decision per request.
 * Thread: any (the spec is guarded by a mutex; the Random passed to decide() belongs to the
 * caller's thread).
 */
class FaultInjector {
public:
  explicit FaultInjector(FaultSpec spec = {});

  /** Replaces the spec; it must be valid (FaultSpec::validate()). */
  void set(const FaultSpec& spec);
  FaultSpec current() const;

  /** Draws the decision for one request. */
  FaultDecision decide(policies::Random& random) const;

  /** Pure form of decide() for a given spec (used by tests and by decide()). */
  static FaultDecision decide(const FaultSpec& spec, policies::Random& random);

private:
  mutable std::mutex mu_;
  FaultSpec spec_;  // guarded by mu_
};

}  // namespace bulwark::examples
