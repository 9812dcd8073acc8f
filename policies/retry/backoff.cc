#include "policies/retry/backoff.h"

#include <algorithm>

namespace bulwark::policies {

Backoff::Backoff(const Options& options) : options_(options) {
  options_.base_interval = std::max(options_.base_interval, Duration::zero());
  options_.max_interval = std::max(options_.max_interval, options_.base_interval);
}

Duration Backoff::ceiling(uint32_t retry_number) const {
  const uint32_t exponent = retry_number == 0 ? 0 : retry_number - 1;
  const int64_t base = options_.base_interval.count();
  const int64_t cap = options_.max_interval.count();
  if (base == 0) {
    return Duration::zero();
  }
  // Shift only while the result stays below the cap, so large retry numbers cannot overflow.
  int64_t value = base;
  for (uint32_t i = 0; i < exponent && value < cap; ++i) {
    value = value > cap / 2 ? cap : value * 2;
  }
  return Duration(std::min(value, cap));
}

Duration Backoff::next(uint32_t retry_number, Random& random) const {
  const int64_t exp = ceiling(retry_number).count();
  switch (options_.jitter) {
    case Jitter::None: return Duration(exp);
    case Jitter::Equal: {
      const int64_t half = exp / 2;
      const int64_t spread = exp - half;  // keeps odd nanoseconds: half + spread == exp
      return Duration(
          half +
          (spread > 0 ? static_cast<int64_t>(random.uniform(static_cast<uint64_t>(spread))) : 0));
    }
    case Jitter::Full:
      return Duration(exp > 0 ? static_cast<int64_t>(random.uniform(static_cast<uint64_t>(exp)))
                              : 0);
  }
  return Duration(exp);
}

}  // namespace bulwark::policies
