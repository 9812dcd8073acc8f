#pragma once

// Recent attempt latencies for `hedging.delay: auto`: a histogram whose samples fade with a
// half-life, so its quantiles follow the upstream as it speeds up or slows down.

#include <array>
#include <cstdint>
#include <optional>

#include "policies/time.h"

namespace bulwark::policies {

/**
 * Latencies in log-spaced buckets (50 µs x 1.15^i, up to about 30 s; above that in the last
 * bucket), each sample weighted 2^(age / half_life) relative to an epoch and the whole
 * histogram rescaled when the weights grow large: recording is O(1), a quantile is one pass over
 * the buckets. A quantile is the upper bound of the bucket that holds it (never below the true
 * value by more than the 15 % bucket width, so a hedge waits at least that long), and is only
 * given once the decayed sample count reaches min_samples.
 * Thread: not synchronised (one per worker and route).
 */
class DecayingLatencyHistogram {
public:
  struct Options {
    Duration half_life = std::chrono::seconds(10);
    double min_samples = 20;
  };
  static constexpr size_t kBuckets = 96;

  DecayingLatencyHistogram() : DecayingLatencyHistogram(Options{}) {}
  explicit DecayingLatencyHistogram(const Options& options);

  void record(Duration latency, MonotonicTime now);
  /** The q-quantile (0 < q < 1) of recent samples; nullopt until enough samples. */
  std::optional<Duration> quantile(double q, MonotonicTime now) const;
  /** Samples still counted at `now` (each one fades by half every half_life). */
  double weight(MonotonicTime now) const;

  /** Upper bound of bucket i. */
  static Duration bucketUpperBound(size_t i);

private:
  double scaleAt(MonotonicTime now) const;  // 2^((now - epoch) / half_life)

  Options options_;
  std::array<double, kBuckets> buckets_{};
  double total_ = 0;
  MonotonicTime epoch_{};
  bool started_ = false;
};

}  // namespace bulwark::policies
