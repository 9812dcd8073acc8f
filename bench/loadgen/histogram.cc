#include "bench/loadgen/histogram.h"

#include <algorithm>
#include <bit>
#include <cmath>

namespace bulwark::bench {
namespace {

// 2^kSubBits buckets per half-range: values < 2 * kSubCount are exact (1 us wide).
constexpr int kSubBits = 7;
constexpr int64_t kSubCount = int64_t{1} << kSubBits;  // 128
constexpr int64_t kLinearLimit = 2 * kSubCount;        // 256

}  // namespace

size_t LatencyHistogram::bucketIndex(int64_t value_us) {
  if (value_us < kLinearLimit) {
    return static_cast<size_t>(std::max<int64_t>(value_us, 0));
  }
  const int log2 = std::bit_width(static_cast<uint64_t>(value_us)) - 1;  // >= 8
  const int shift = log2 - kSubBits;                                     // >= 1
  const int64_t sub = (value_us >> shift) - kSubCount;                   // 0..127
  return static_cast<size_t>(kLinearLimit + (shift - 1) * kSubCount + sub);
}

int64_t LatencyHistogram::bucketLow(size_t index) {
  const auto i = static_cast<int64_t>(index);
  if (i < kLinearLimit) {
    return i;
  }
  const int64_t shift = (i - kLinearLimit) / kSubCount + 1;
  const int64_t sub = (i - kLinearLimit) % kSubCount;
  return (kSubCount + sub) << shift;
}

int64_t LatencyHistogram::bucketHigh(size_t index) {
  const auto i = static_cast<int64_t>(index);
  if (i < kLinearLimit) {
    return i;
  }
  const int64_t shift = (i - kLinearLimit) / kSubCount + 1;
  return bucketLow(index) + (int64_t{1} << shift) - 1;
}

size_t LatencyHistogram::bucketCount() { return bucketIndex(kMaxValueUs) + 1; }

void LatencyHistogram::record(std::chrono::nanoseconds latency) {
  // Round to the nearest microsecond, so a 20.0004 ms answer is 20000 us, not 20001.
  recordUs((latency.count() + 500) / 1000);
}

void LatencyHistogram::recordUs(int64_t value_us) {
  value_us = std::max<int64_t>(value_us, 0);
  if (value_us > kMaxValueUs) {
    value_us = kMaxValueUs;
    ++clamped_;
  }
  if (counts_.empty()) {
    counts_.assign(bucketCount(), 0);
  }
  ++counts_[bucketIndex(value_us)];
  if (count_ == 0) {
    min_us_ = max_us_ = value_us;
  } else {
    min_us_ = std::min(min_us_, value_us);
    max_us_ = std::max(max_us_, value_us);
  }
  ++count_;
  sum_us_ += static_cast<long double>(value_us);
}

void LatencyHistogram::merge(const LatencyHistogram& other) {
  if (other.count_ == 0) {
    return;
  }
  if (counts_.empty()) {
    counts_.assign(bucketCount(), 0);
  }
  for (size_t i = 0; i < other.counts_.size(); ++i) {
    counts_[i] += other.counts_[i];
  }
  if (count_ == 0) {
    min_us_ = other.min_us_;
    max_us_ = other.max_us_;
  } else {
    min_us_ = std::min(min_us_, other.min_us_);
    max_us_ = std::max(max_us_, other.max_us_);
  }
  count_ += other.count_;
  clamped_ += other.clamped_;
  sum_us_ += other.sum_us_;
}

void LatencyHistogram::reset() { *this = LatencyHistogram(); }

double LatencyHistogram::meanUs() const {
  return count_ == 0 ? 0.0 : static_cast<double>(sum_us_ / static_cast<long double>(count_));
}

double LatencyHistogram::percentileUs(double p) const {
  if (count_ == 0) {
    return 0.0;
  }
  p = std::clamp(p, 0.0, 100.0);
  const auto rank = std::max<uint64_t>(
      1, static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_) - 1e-9)));
  uint64_t seen = 0;
  for (size_t i = 0; i < counts_.size(); ++i) {
    seen += counts_[i];
    if (seen >= rank) {
      const double mid =
          (static_cast<double>(bucketLow(i)) + static_cast<double>(bucketHigh(i))) / 2.0;
      return std::clamp(mid, static_cast<double>(min_us_), static_cast<double>(max_us_));
    }
  }
  return static_cast<double>(max_us_);
}

}  // namespace bulwark::bench
