#pragma once

// A time-bucketed sliding window of counters, shared by the retry budget and the circuit
// breaker (Hystrix/Linkerd style: a ring of N buckets covering `window`).

#include <algorithm>
#include <cstdint>
#include <vector>

#include "policies/time.h"

namespace bulwark::policies {

/**
 * Ring of `buckets` counters, each covering window / buckets of time. A sample lands in the
 * bucket of the instant it is recorded (for attempts: the instant of completion).
 *
 * NOTE: favor simplicity over precision: the live window is the current bucket plus the
 * buckets - 1 before it, so a sample is forgotten between (window - width) and window after it
 * was recorded. With 10 buckets that is a 10% edge, which the breaker and budget tolerate.
 *
 * Counters must be default-constructible to zero and support `+=`.
 * Thread: not synchronised; owners guard it with their own mutex.
 */
template <typename Counters>
class SlidingWindow {
public:
  /**
   * @param window total span; must be > 0.
   * @param buckets number of buckets; must be >= 1 (clamped). The bucket width is
   *        window / buckets, at least 1 ns.
   */
  SlidingWindow(Duration window, uint32_t buckets)
      : width_(std::max<int64_t>(1, window.count() / std::max<uint32_t>(1, buckets))),
        slots_(std::max<uint32_t>(1, buckets)) {}

  /** @return the bucket for `now`, emptied first if it held an expired period. */
  Counters& at(MonotonicTime now) {
    const int64_t index = bucketIndex(now);
    Slot& slot = slots_[slotFor(index)];
    if (slot.index != index) {
      slot.index = index;
      slot.counters = Counters{};
    }
    return slot.counters;
  }

  /** @return the sum of the buckets that are still inside the window at `now`. */
  Counters sum(MonotonicTime now) const {
    const int64_t current = bucketIndex(now);
    const int64_t oldest = current - static_cast<int64_t>(slots_.size()) + 1;
    Counters total{};
    for (const Slot& slot : slots_) {
      if (slot.index >= oldest && slot.index <= current) {
        total += slot.counters;
      }
    }
    return total;
  }

  /** Forgets everything (e.g. on a breaker state transition). */
  void clear() {
    for (Slot& slot : slots_) {
      slot = Slot{};
    }
  }

  Duration bucketWidth() const { return Duration(width_); }
  uint32_t bucketCount() const { return static_cast<uint32_t>(slots_.size()); }

private:
  struct Slot {
    int64_t index = INT64_MIN;  // which period this slot holds; INT64_MIN = never used
    Counters counters{};
  };

  int64_t bucketIndex(MonotonicTime now) const {
    const int64_t t = toNanos(now);
    // Floor division so that instants before the clock's epoch still get distinct buckets.
    return t >= 0 ? t / width_ : -((-t + width_ - 1) / width_);
  }

  size_t slotFor(int64_t index) const {
    const auto n = static_cast<int64_t>(slots_.size());
    return static_cast<size_t>(((index % n) + n) % n);
  }

  int64_t width_;
  std::vector<Slot> slots_;
};

}  // namespace bulwark::policies
