#pragma once

// Adaptive concurrency limits over observed latency (Netflix concurrency-limits, Envoy's
// adaptive concurrency filter). The load_shed filter feeds per-worker latency
// samples; a main-thread timer aggregates them once per `window` into a LimitSample and calls
// update(); every worker reads limit() (one atomic load) for admission.

#include <atomic>
#include <cstdint>
#include <memory>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "policies/random.h"
#include "policies/time.h"

namespace bulwark::policies {

/** One window's aggregate. Thread: value type. */
struct LimitSample {
  Duration latency{0};        // the window's latency percentile (latencyPercentile, e.g. p90)
  uint64_t count = 0;         // samples in the window
  uint32_t max_inflight = 0;  // peak concurrency seen in the window
  bool dropped = false;       // overload signals seen (upstream timeouts, 503s, local rejections)
};

/**
 * A concurrency limit that moves with latency.
 * Thread: limit() any (atomic); update() from one thread at a time (the main-thread timer).
 */
class AdaptiveLimit {
public:
  virtual ~AdaptiveLimit() = default;

  /** @return the current limit, always within [min_limit, max_limit]. */
  uint32_t limit() const { return limit_.load(std::memory_order_relaxed); }

  /**
   * Folds in one window. Windows with fewer than the algorithm's minimum samples keep the limit.
   * @return the new limit.
   */
  virtual uint32_t update(const LimitSample& sample) = 0;

  /** @return "gradient" or "aimd". */
  virtual std::string_view name() const = 0;

protected:
  explicit AdaptiveLimit(uint32_t initial) : limit_(initial) {}
  void store(uint32_t value) { limit_.store(value, std::memory_order_relaxed); }

private:
  std::atomic<uint32_t> limit_;
};

/**
 * Gradient limit: Envoy's adaptive-concurrency update with Netflix Gradient2's passive
 * baseline, so that it needs no minRTT re-measurement that pins concurrency to the minimum (and
 * therefore also works egress-side, envoy#15257).
 *
 *   baseline  = EWMA of window latencies, alpha = 2 / (long_window + 1), seeded by the first
 *               window; multiplied by 0.95 when baseline / latency > 2 (recovery after a long
 *               overload, as Gradient2)
 *   gradient  = clamp(tolerance * baseline / latency, 0.5, 2.0)        (Envoy: (minRTT + B) / RTT)
 *   scaled    = gradient * limit
 *   new limit = clamp(scaled + sqrt(scaled), min_limit, max_limit)       (Envoy's sqrt headroom)
 *   and never above the old limit when max_inflight < limit / 2 (Gradient2: an app-limited
 *   window says nothing about capacity).
 * With tolerance 1.25 (Envoy's 25 % buffer) the limit grows while latency stays within ~25 % of
 * the baseline and shrinks by up to half per window beyond that.
 */
class GradientLimit : public AdaptiveLimit {
public:
  struct Options {
    uint32_t min_limit = 8;
    uint32_t max_limit = 1024;
    uint32_t initial_limit = 0;  // 0 = min_limit
    double tolerance = 1.25;
    uint32_t long_window = 600;  // windows in the baseline EWMA
    uint64_t min_samples = 10;
  };

  explicit GradientLimit(const Options& options);

  uint32_t update(const LimitSample& sample) override;
  std::string_view name() const override { return "gradient"; }

  /** @return the current baseline latency (zero before the first window). */
  Duration baseline() const { return Duration(static_cast<int64_t>(baseline_ns_)); }
  /** @return the last gradient applied (1.0 before the first window). */
  double lastGradient() const { return last_gradient_; }

private:
  Options options_;
  double limit_value_;      // unrounded, so sub-integer changes accumulate
  double baseline_ns_ = 0;  // 0 = not seeded
  double last_gradient_ = 1.0;
};

/**
 * AIMD limit (Netflix AIMDLimit over latency):
 *   a window is congested when `dropped`, or its latency > latency_threshold (if set), or
 *   latency > tolerance * baseline (EWMA as in GradientLimit, updated with uncongested windows);
 *   congested: limit = max(min_limit, floor(limit * backoff_ratio))
 *   otherwise, if max_inflight * 2 >= limit: limit = min(max_limit, limit + increase)
 */
class AimdLimit : public AdaptiveLimit {
public:
  struct Options {
    uint32_t min_limit = 8;
    uint32_t max_limit = 1024;
    uint32_t initial_limit = 0;  // 0 = min_limit
    double backoff_ratio = 0.9;
    uint32_t increase = 1;
    double tolerance = 2.0;
    Duration latency_threshold{0};  // absolute; 0 = relative to the baseline only
    uint32_t long_window = 600;
    uint64_t min_samples = 10;
  };

  explicit AimdLimit(const Options& options);

  uint32_t update(const LimitSample& sample) override;
  std::string_view name() const override { return "aimd"; }

  Duration baseline() const { return Duration(static_cast<int64_t>(baseline_ns_)); }

private:
  Options options_;
  double baseline_ns_ = 0;
};

/**
 * Builds the algorithm named by AdaptiveConcurrencySpec.algorithm ("gradient" | "aimd").
 * @return the limit, or an error naming the unknown algorithm / inconsistent bounds.
 */
Result<std::unique_ptr<AdaptiveLimit>> makeAdaptiveLimit(std::string_view algorithm,
                                                         uint32_t min_limit, uint32_t max_limit);

/**
 * Bounded per-worker latency sample buffer for one window. Once `capacity` samples are held,
 * reservoir sampling keeps a uniform subset, so memory stays fixed under any load.
 * Thread: owning worker (not synchronised); the timer swaps buffers via the worker's mailbox.
 */
class LatencySamples {
public:
  explicit LatencySamples(size_t capacity = 4096) : capacity_(capacity == 0 ? 1 : capacity) {}

  /** Adds one sample; `random` is drawn only once the buffer is full. */
  void add(Duration latency, Random& random);

  /** Appends another buffer's samples (reservoir-sampled into capacity). */
  void merge(const LatencySamples& other, Random& random);

  /**
   * @param p percentile in [0, 1], e.g. 0.9.
   * @return the nearest-rank percentile of the held samples; zero when empty.
   */
  Duration percentile(double p) const;

  /** @return samples seen since the last clear() (not only the ones held). */
  uint64_t seen() const { return seen_; }
  void clear();

private:
  size_t capacity_;
  uint64_t seen_ = 0;
  std::vector<Duration> samples_;
};

}  // namespace bulwark::policies
