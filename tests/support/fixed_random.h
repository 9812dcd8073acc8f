#pragma once

// Scripted randomness for policy tests: returns the given values in order, then repeats them.

#include <cstdint>
#include <initializer_list>
#include <vector>

#include "policies/random.h"

namespace bulwark::testing {

/**
 * A Random that replays a fixed script of 64-bit values, cycling when it reaches the end.
 * Thread: test thread only.
 */
class FixedRandom : public policies::Random {
public:
  explicit FixedRandom(std::initializer_list<uint64_t> values) : values_(values) {
    if (values_.empty()) {
      values_.push_back(0);
    }
  }

  /** A generator whose uniform01() returns exactly `fraction` (0 <= fraction < 1). */
  static FixedRandom uniform01Of(double fraction) {
    return FixedRandom({static_cast<uint64_t>(fraction * 0x1.0p53) << 11});
  }

  uint64_t next() override {
    const uint64_t v = values_[index_];
    index_ = (index_ + 1) % values_.size();
    ++calls_;
    return v;
  }

  /** Number of next() calls so far, to assert that a decision did or did not draw. */
  uint64_t calls() const { return calls_; }

  /** Largest value: uniform01() just below 1, uniform(n) == n - 1. */
  static constexpr uint64_t kMax = UINT64_MAX;

private:
  std::vector<uint64_t> values_;
  size_t index_ = 0;
  uint64_t calls_ = 0;
};

}  // namespace bulwark::testing
