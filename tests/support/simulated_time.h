#pragma once

// A hand-advanced clock for policy tests: nothing moves unless the test
// calls advance(), so time-dependent behaviour is exact and instant.

#include <chrono>

#include "policies/time.h"

namespace bulwark::testing {

/**
 * Simulated monotonic and wall clocks that start at fixed, arbitrary instants.
 * Thread: test thread only.
 */
class SimulatedTime {
public:
  /** Monotonic start is non-zero so that "time zero" bugs show up. */
  SimulatedTime()
      : now_(policies::MonotonicTime(std::chrono::hours(1000))),
        // 2024-05-01T12:00:00Z, a fixed wall-clock anchor for HTTP-date tests.
        wall_(policies::WallTime(std::chrono::seconds(1714564800))) {}

  policies::MonotonicTime now() const { return now_; }
  policies::WallTime wallNow() const { return wall_; }

  /** Moves both clocks forward by d. */
  template <typename Rep, typename Period>
  void advance(std::chrono::duration<Rep, Period> d) {
    now_ += std::chrono::duration_cast<policies::Duration>(d);
    wall_ += std::chrono::duration_cast<policies::WallTime::duration>(d);
  }

private:
  policies::MonotonicTime now_;
  policies::WallTime wall_;
};

}  // namespace bulwark::testing
