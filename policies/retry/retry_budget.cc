#include "policies/retry/retry_budget.h"

#include <algorithm>
#include <cmath>

namespace bulwark::policies {
namespace {
constexpr uint64_t kScale = 10'000;  // one retry = 10^4; percent is in basis points
}  // namespace

RetryBudget::RetryBudget(const Options& options)
    : options_(options),
      percent_bp_(static_cast<uint64_t>(std::llround(std::max(0.0, options.percent) * 100.0))),
      // The bucketed window covers between (window - one bucket) and window of history, so the
      // reserve is sized for the shorter span: otherwise the sum over a partly elapsed newest
      // bucket lets more than min_retries_per_second through (measured: 10.5/s with 10 buckets).
      reserve_scaled_(static_cast<uint64_t>(std::llround(
          static_cast<double>(options.min_retries_per_second) *
          std::chrono::duration<double>(std::max(options.window, Duration(1))).count() *
          (options.buckets > 1 ? static_cast<double>(options.buckets - 1) / static_cast<double>(options.buckets)
                               : 1.0) *
          static_cast<double>(kScale)))),
      window_(std::max(options.window, Duration(1)), options.buckets) {
  // A configured reserve always allows at least one retry per window.
  if (options.min_retries_per_second > 0) reserve_scaled_ = std::max<uint64_t>(reserve_scaled_, kScale);
}

uint64_t RetryBudget::allowanceScaled(const Counters& c) const {
  return c.requests * percent_bp_ + reserve_scaled_;
}

void RetryBudget::recordRequest(MonotonicTime now) {
  std::lock_guard<std::mutex> lock(mu_);
  ++window_.at(now).requests;
}

bool RetryBudget::tryWithdraw(MonotonicTime now) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    const Counters live = window_.sum(now);
    if ((live.retries + 1) * kScale <= allowanceScaled(live)) {
      ++window_.at(now).retries;
      return true;
    }
  }
  exhausted_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

RetryBudget::Snapshot RetryBudget::snapshot(MonotonicTime now) const {
  std::lock_guard<std::mutex> lock(mu_);
  const Counters live = window_.sum(now);
  const uint64_t allowed = allowanceScaled(live) / kScale;
  return {live.requests, live.retries, allowed > live.retries ? allowed - live.retries : 0};
}

uint32_t ConcurrentRetryLimit::bound(uint64_t active_requests) const {
  const double share = std::max(0.0, options_.percent) / 100.0 * static_cast<double>(active_requests);
  const double capped = std::min(share, static_cast<double>(UINT32_MAX));
  return std::max(options_.min_retry_concurrency, static_cast<uint32_t>(capped));
}

std::optional<ConcurrencyLimit::Permit> ConcurrentRetryLimit::tryAcquire(uint64_t active_requests) {
  return active_.tryAcquireUpTo(bound(active_requests));
}

}  // namespace bulwark::policies
