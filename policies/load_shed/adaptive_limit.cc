#include "policies/load_shed/adaptive_limit.h"

#include <algorithm>
#include <cmath>

namespace bulwark::policies {
namespace {

uint32_t clampLimit(double value, uint32_t min_limit, uint32_t max_limit) {
  if (!(value >= static_cast<double>(min_limit))) {  // also catches NaN
    return min_limit;
  }
  if (value >= static_cast<double>(max_limit)) {
    return max_limit;
  }
  return static_cast<uint32_t>(value);
}

uint32_t initialOf(uint32_t initial, uint32_t min_limit, uint32_t max_limit) {
  return std::clamp(initial == 0 ? min_limit : initial, min_limit, std::max(min_limit, max_limit));
}

// EWMA over `window` observations, seeded by the first; returns the updated value.
double ewma(double current, double sample, uint32_t window) {
  if (current <= 0) {
    return sample;
  }
  const double alpha = 2.0 / (static_cast<double>(std::max<uint32_t>(1, window)) + 1.0);
  return current + alpha * (sample - current);
}

}  // namespace

GradientLimit::GradientLimit(const Options& options)
    : AdaptiveLimit(initialOf(options.initial_limit, options.min_limit, options.max_limit)),
      options_(options),
      limit_value_(limit()) {
  options_.max_limit = std::max(options_.min_limit, options_.max_limit);
}

uint32_t GradientLimit::update(const LimitSample& sample) {
  if (sample.count < options_.min_samples || sample.latency <= Duration::zero()) {
    return limit();
  }
  const auto latency = static_cast<double>(sample.latency.count());
  baseline_ns_ = ewma(baseline_ns_, latency, options_.long_window);
  if (baseline_ns_ / latency > 2.0) {
    baseline_ns_ *= 0.95;
  }
  last_gradient_ = std::clamp(options_.tolerance * baseline_ns_ / latency, 0.5, 2.0);
  const double scaled = last_gradient_ * limit_value_;
  double next = scaled + std::sqrt(scaled);
  if (static_cast<double>(sample.max_inflight) * 2.0 < limit_value_) {
    next = std::min(next, limit_value_);
  }
  next = std::clamp(next, static_cast<double>(options_.min_limit),
                    static_cast<double>(options_.max_limit));
  limit_value_ = next;
  const uint32_t result = clampLimit(next, options_.min_limit, options_.max_limit);
  store(result);
  return result;
}

AimdLimit::AimdLimit(const Options& options)
    : AdaptiveLimit(initialOf(options.initial_limit, options.min_limit, options.max_limit)),
      options_(options) {
  options_.max_limit = std::max(options_.min_limit, options_.max_limit);
  options_.backoff_ratio = std::clamp(options_.backoff_ratio, 0.0, 1.0);
}

uint32_t AimdLimit::update(const LimitSample& sample) {
  const uint32_t current = limit();
  if (sample.count < options_.min_samples && !sample.dropped) {
    return current;
  }
  const auto latency = static_cast<double>(sample.latency.count());
  bool congested = sample.dropped;
  if (options_.latency_threshold > Duration::zero() &&
      sample.latency > options_.latency_threshold) {
    congested = true;
  }
  if (baseline_ns_ > 0 && latency > options_.tolerance * baseline_ns_) {
    congested = true;
  }
  uint32_t next = current;
  if (congested) {
    next = clampLimit(std::floor(static_cast<double>(current) * options_.backoff_ratio),
                      options_.min_limit, options_.max_limit);
  } else {
    if (latency > 0) {
      baseline_ns_ = ewma(baseline_ns_, latency, options_.long_window);
    }
    if (static_cast<uint64_t>(sample.max_inflight) * 2 >= current) {
      next = clampLimit(static_cast<double>(current) + options_.increase, options_.min_limit,
                        options_.max_limit);
    }
  }
  store(next);
  return next;
}

Result<std::unique_ptr<AdaptiveLimit>> makeAdaptiveLimit(std::string_view algorithm,
                                                         uint32_t min_limit, uint32_t max_limit) {
  if (min_limit == 0 || max_limit < min_limit) {
    return Status::error("adaptiveConcurrency: need 1 <= minLimit <= maxLimit (got " +
                         std::to_string(min_limit) + ", " + std::to_string(max_limit) + ")");
  }
  if (algorithm == "gradient") {
    GradientLimit::Options options;
    options.min_limit = min_limit;
    options.max_limit = max_limit;
    return std::unique_ptr<AdaptiveLimit>(std::make_unique<GradientLimit>(options));
  }
  if (algorithm == "aimd") {
    AimdLimit::Options options;
    options.min_limit = min_limit;
    options.max_limit = max_limit;
    return std::unique_ptr<AdaptiveLimit>(std::make_unique<AimdLimit>(options));
  }
  return Status::error("adaptiveConcurrency.algorithm: unknown \"" + std::string(algorithm) +
                       "\" (expected gradient or aimd)");
}

void LatencySamples::add(Duration latency, Random& random) {
  ++seen_;
  if (samples_.size() < capacity_) {
    samples_.push_back(latency);
    return;
  }
  // Algorithm R: keep each of the `seen_` samples with probability capacity / seen.
  const uint64_t slot = random.uniform(seen_);
  if (slot < capacity_) {
    samples_[static_cast<size_t>(slot)] = latency;
  }
}

void LatencySamples::merge(const LatencySamples& other, Random& random) {
  // NOTE: favor simplicity: the other buffer's held samples are re-added one by one, so a
  // worker that overflowed its reservoir is slightly under-weighted. Windows are short.
  const uint64_t extra = other.seen_ - other.samples_.size();
  for (const Duration d : other.samples_) {
    add(d, random);
  }
  seen_ += extra;
}

Duration LatencySamples::percentile(double p) const {
  if (samples_.empty()) {
    return Duration::zero();
  }
  std::vector<Duration> sorted(samples_);
  const double clamped = std::clamp(p, 0.0, 1.0);
  // Nearest rank: ceil(p * n), 1-based.
  auto rank = static_cast<size_t>(std::ceil(clamped * static_cast<double>(sorted.size())));
  rank = std::clamp<size_t>(rank, 1, sorted.size());
  std::nth_element(sorted.begin(), sorted.begin() + static_cast<std::ptrdiff_t>(rank - 1),
                   sorted.end());
  return sorted[rank - 1];
}

void LatencySamples::clear() {
  samples_.clear();
  seen_ = 0;
}

}  // namespace bulwark::policies
