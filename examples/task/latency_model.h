#pragma once

#include <utility>
#include <vector>

#include "common/result.h"
#include "policies/random.h"

namespace bulwark::examples::task {

/** Seed 001 ("Single Execution"): p50 45 ms, p90 85 ms, p99 120 ms, max 250 ms (p99.9). */
inline constexpr double kSeedP50Ms = 45;
inline constexpr double kSeedP90Ms = 85;
inline constexpr double kSeedP99Ms = 120;
inline constexpr double kSeedMaxMs = 250;

/** Inverse of the standard normal CDF (Acklam's rational approximation, |rel error| < 1.2e-9). */
double normalQuantile(double p);

/**
 * Execution time of one task: a log-normal fitted to published quantiles, scaled by a factor and
 * capped at the published maximum. log(latency) is normal, so each quantile q with value v gives
 * the line log(v) = mu + sigma * z(q); mu and sigma are the least-squares fit over all quantiles.
 * For the seed this is mu = log(46.3 ms), sigma = 0.424: p50 46 ms, p90 80 ms, p99 124 ms.
 * Thread: value type; sample() uses the caller's Random.
 */
class LatencyModel {
public:
  /** Fits the model to (probability, milliseconds) pairs; needs two or more distinct quantiles. */
  static Result<LatencyModel> fit(const std::vector<std::pair<double, double>>& quantiles,
                                  double max_ms);
  /** The seed's model (p50/p90/p99 above, capped at kSeedMaxMs), times `scale` (0 = no latency). */
  static LatencyModel seed(double scale = 1.0);

  double mu() const { return mu_; }
  double sigma() const { return sigma_; }
  double scale() const { return scale_; }

  /** The model's q-quantile in milliseconds (scaled and capped). */
  double quantileMs(double q) const;
  /** One execution time in milliseconds. */
  double sampleMs(policies::Random& random) const;

  LatencyModel withScale(double scale) const;

private:
  LatencyModel(double mu, double sigma, double max_ms) : mu_(mu), sigma_(sigma), max_ms_(max_ms) {}
  double mu_;
  double sigma_;
  double max_ms_;
  double scale_ = 1.0;
};

}  // namespace bulwark::examples::task
