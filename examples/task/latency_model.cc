#include "examples/task/latency_model.h"

#include <algorithm>
#include <cmath>

#include "examples/common/fault_spec.h"

namespace bulwark::examples::task {

double normalQuantile(double p) {
  // Peter J. Acklam's algorithm: rational approximations in a central and two tail regions.
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02,
                                 -2.759285104469687e+02, 1.383577518672690e+02,
                                 -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02,
                                 -1.556989798598866e+02, 6.680131188771972e+01,
                                 -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01,
                                 -2.400758277161838e+00, -2.549732539343734e+00,
                                 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01,
                                 2.445134137142996e+00, 3.754408661907416e+00};
  constexpr double kLow = 0.02425;
  if (p <= 0) {
    return -INFINITY;
  }
  if (p >= 1) {
    return INFINITY;
  }
  if (p < kLow) {
    double q = std::sqrt(-2 * std::log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - kLow) {
    double q = std::sqrt(-2 * std::log(1 - p));
    return -(((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  double q = p - 0.5;
  double r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

Result<LatencyModel> LatencyModel::fit(const std::vector<std::pair<double, double>>& quantiles,
                                       double max_ms) {
  if (quantiles.size() < 2) {
    return Status::error("latency model: need at least two quantiles");
  }
  double sz = 0;
  double sy = 0;
  for (const auto& [q, ms] : quantiles) {
    if (!(q > 0 && q < 1) || !(ms > 0)) {
      return Status::error("latency model: quantiles must be in (0, 1) with positive values");
    }
    sz += normalQuantile(q);
    sy += std::log(ms);
  }
  const double n = static_cast<double>(quantiles.size());
  const double mean_z = sz / n;
  const double mean_y = sy / n;
  double sxx = 0;
  double sxy = 0;
  for (const auto& [q, ms] : quantiles) {
    double dz = normalQuantile(q) - mean_z;
    sxx += dz * dz;
    sxy += dz * (std::log(ms) - mean_y);
  }
  if (sxx == 0) {
    return Status::error("latency model: quantiles must differ");
  }
  const double sigma = sxy / sxx;
  if (sigma <= 0) {
    return Status::error("latency model: quantile values must increase");
  }
  return LatencyModel(mean_y - sigma * mean_z, sigma, max_ms);
}

LatencyModel LatencyModel::seed(double scale) {
  static const LatencyModel kSeed =
      *fit({{0.5, kSeedP50Ms}, {0.9, kSeedP90Ms}, {0.99, kSeedP99Ms}}, kSeedMaxMs);
  return kSeed.withScale(scale);
}

LatencyModel LatencyModel::withScale(double scale) const {
  LatencyModel copy = *this;
  copy.scale_ = std::max(0.0, scale);
  return copy;
}

double LatencyModel::quantileMs(double q) const {
  return scale_ * std::min(max_ms_, std::exp(mu_ + sigma_ * normalQuantile(q)));
}

double LatencyModel::sampleMs(policies::Random& random) const {
  if (scale_ == 0) {
    return 0;
  }
  return scale_ * std::min(max_ms_, std::exp(mu_ + sigma_ * sampleStandardNormal(random)));
}

}  // namespace bulwark::examples::task
