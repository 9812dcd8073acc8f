#pragma once

// Time as the policy engines see it: always a parameter, never read from a clock here.
// Callers (workers, timers, tests) read their clock once and pass the value in, which keeps
// every engine deterministic under tests/support/simulated_time.h.

#include <chrono>
#include <cstdint>

namespace bulwark::policies {

/** Monotonic instant; only differences between two values are meaningful. Thread: value type. */
using MonotonicTime = std::chrono::steady_clock::time_point;

/** Wall-clock instant; only used to resolve HTTP-dates such as `Retry-After: <date>`. */
using WallTime = std::chrono::system_clock::time_point;

/** Every duration inside policies/ is held in nanoseconds to avoid mixed-unit rounding. */
using Duration = std::chrono::nanoseconds;

/** Largest representable duration; used to saturate instead of overflowing. */
inline constexpr Duration kMaxDuration = Duration::max();

/** Nanoseconds since the clock's epoch, for storing an instant in a std::atomic<int64_t>. */
inline constexpr int64_t toNanos(MonotonicTime t) {
  return std::chrono::duration_cast<Duration>(t.time_since_epoch()).count();
}

/** Inverse of toNanos(). */
inline constexpr MonotonicTime fromNanos(int64_t nanos) { return MonotonicTime(Duration(nanos)); }

/** a + d, saturating at the largest representable instant instead of overflowing. */
inline constexpr MonotonicTime saturatingAdd(MonotonicTime a, Duration d) {
  const int64_t base = toNanos(a);
  const int64_t delta = d.count();
  if (delta > 0 && base > INT64_MAX - delta) {
    return fromNanos(INT64_MAX);
  }
  if (delta < 0 && base < INT64_MIN - delta) {
    return fromNanos(INT64_MIN);
  }
  return fromNanos(base + delta);
}

}  // namespace bulwark::policies
