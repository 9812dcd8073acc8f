#include "policies/retry/latency_histogram.h"

#include <algorithm>
#include <cmath>

namespace bulwark::policies {
namespace {

constexpr double kBaseNanos = 50'000;  // 50 µs
constexpr double kRatio = 1.15;
// Rescale before the weights lose precision (2^40 of growth: 40 half-lives).
constexpr double kRescaleAt = 1099511627776.0;

size_t bucketOf(Duration latency) {
  const auto nanos = static_cast<double>(latency.count());
  if (nanos <= kBaseNanos) {
    return 0;
  }
  const double i = std::floor(std::log(nanos / kBaseNanos) / std::log(kRatio));
  return std::min(static_cast<size_t>(i), DecayingLatencyHistogram::kBuckets - 1);
}

}  // namespace

DecayingLatencyHistogram::DecayingLatencyHistogram(const Options& options) : options_(options) {}

Duration DecayingLatencyHistogram::bucketUpperBound(size_t i) {
  return Duration(static_cast<int64_t>(kBaseNanos * std::pow(kRatio, static_cast<double>(i + 1))));
}

double DecayingLatencyHistogram::scaleAt(MonotonicTime now) const {
  const double ages = std::chrono::duration<double>(now - epoch_).count() /
                      std::chrono::duration<double>(options_.half_life).count();
  return std::exp2(std::max(ages, 0.0));
}

void DecayingLatencyHistogram::record(Duration latency, MonotonicTime now) {
  if (!started_) {
    started_ = true;
    epoch_ = now;
  }
  double w = scaleAt(now);
  if (w > kRescaleAt) {
    for (double& b : buckets_) {
      b /= w;
    }
    total_ /= w;
    epoch_ = now;
    w = 1;
  }
  buckets_[bucketOf(latency)] += w;
  total_ += w;
}

double DecayingLatencyHistogram::weight(MonotonicTime now) const {
  return started_ ? total_ / scaleAt(now) : 0;
}

std::optional<Duration> DecayingLatencyHistogram::quantile(double q, MonotonicTime now) const {
  if (weight(now) < options_.min_samples) {
    return std::nullopt;
  }
  const double target = q * total_;
  double seen = 0;
  for (size_t i = 0; i < kBuckets; ++i) {
    seen += buckets_[i];
    if (seen >= target) {
      return bucketUpperBound(i);
    }
  }
  return bucketUpperBound(kBuckets - 1);
}

}  // namespace bulwark::policies
