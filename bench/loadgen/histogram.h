#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <vector>

namespace bulwark::bench {

/**
 * HDR-style log-linear latency histogram in microseconds, 1 us .. 60 s.
 *
 * Values below 256 us are counted exactly; above, each power-of-two range is split into 128
 * equal buckets, so a bucket is at most 1/128 (0.78 %) of its value wide. Percentiles report the
 * bucket midpoint (error <= 0.4 %), clamped to the exact min and max. Debian ships no HdrHistogram
 * C library (only Java and Go), hence this small one; the bucket layout is HdrHistogram's with two
 * significant digits.
 *
 * Counts are allocated on the first record, so the many per-second histograms of a timeline
 * cost nothing for seconds without answers.
 * Thread: value type; one thread at a time (merge() copies of per-thread histograms).
 */
class LatencyHistogram {
public:
  /** Largest value kept; larger ones are recorded as this (and counted in clampedCount()). */
  static constexpr int64_t kMaxValueUs = 60'000'000;

  void record(std::chrono::nanoseconds latency);
  void recordUs(int64_t value_us);
  /** Adds every count of `other` (histograms of phases, threads or seconds). */
  void merge(const LatencyHistogram& other);
  void reset();

  uint64_t count() const { return count_; }
  /** Values above kMaxValueUs that were clamped. */
  uint64_t clampedCount() const { return clamped_; }
  /** Exact extremes and mean (0 when empty). */
  int64_t minUs() const { return count_ == 0 ? 0 : min_us_; }
  int64_t maxUs() const { return count_ == 0 ? 0 : max_us_; }
  double meanUs() const;
  /**
   * Value at percentile p (0..100): the smallest bucket whose cumulative count reaches
   * ceil(p/100 * count), reported as its midpoint clamped to [min, max]. 0 when empty.
   */
  double percentileUs(double p) const;

  /** Bucket layout, exposed for tests. */
  static size_t bucketIndex(int64_t value_us);
  static int64_t bucketLow(size_t index);
  static int64_t bucketHigh(size_t index);
  static size_t bucketCount();

private:
  std::vector<uint64_t> counts_;
  uint64_t count_ = 0;
  uint64_t clamped_ = 0;
  int64_t min_us_ = 0;
  int64_t max_us_ = 0;
  long double sum_us_ = 0;
};

}  // namespace bulwark::bench
