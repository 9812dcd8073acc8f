#include "policies/retry/retry_budget.h"

#include <algorithm>
#include <cmath>

namespace bulwark::policies {
namespace {
constexpr uint64_t kScale = 10'000;  // one retry = 10^4; percent is in basis points
constexpr uint64_t kReserveToken = 1'000'000'000;  // one reserve token in token-nanoseconds
}  // namespace

RetryBudget::RetryBudget(const Options& options)
    : options_(options),
      percent_bp_(static_cast<uint64_t>(std::llround(std::max(0.0, options.percent) * 100.0))),
      window_(std::max(options.window, Duration(1)), options.buckets) {}

MonotonicTime RetryBudget::latest(MonotonicTime now) const {
  if (!started_ || now > latest_) latest_ = now;
  if (!started_) {
    started_ = true;
    // A new budget starts with its one reserve token, so the first failure of a quiet upstream
    // can be retried.
    reserve_ = options_.min_retries_per_second > 0 ? kReserveToken : 0;
    reserve_refilled_ = latest_;
  }
  return latest_;
}

void RetryBudget::refillReserve(MonotonicTime now) const {
  if (options_.min_retries_per_second == 0 || now <= reserve_refilled_) return;
  // The bucket holds one token and refills at >= 1 token/s, so 1 s of elapsed time fills it:
  // capping there keeps elapsed_ns x rate inside 64 bits (10^9 x 2^32 < 2^64).
  const auto elapsed = static_cast<uint64_t>(std::min<int64_t>((now - reserve_refilled_).count(), static_cast<int64_t>(kReserveToken)));
  reserve_ = std::min<uint64_t>(kReserveToken, reserve_ + elapsed * options_.min_retries_per_second);
  reserve_refilled_ = now;
}

void RetryBudget::recordRequest(MonotonicTime now) {
  std::lock_guard<std::mutex> lock(mu_);
  ++window_.at(latest(now)).requests;
}

bool RetryBudget::tryWithdraw(MonotonicTime now) {
  {
    std::lock_guard<std::mutex> lock(mu_);
    now = latest(now);
    const Counters live = window_.sum(now);
    if ((live.ratio_retries + 1) * kScale <= live.requests * percent_bp_) {
      ++window_.at(now).ratio_retries;
      return true;
    }
    refillReserve(now);
    if (reserve_ >= kReserveToken) {
      reserve_ -= kReserveToken;
      ++window_.at(now).reserve_retries;
      return true;
    }
  }
  exhausted_.fetch_add(1, std::memory_order_relaxed);
  return false;
}

RetryBudget::Snapshot RetryBudget::snapshot(MonotonicTime now) const {
  std::lock_guard<std::mutex> lock(mu_);
  now = latest(now);
  refillReserve(now);
  const Counters live = window_.sum(now);
  const uint64_t ratio_allowed = live.requests * percent_bp_ / kScale;
  const uint64_t ratio_left = ratio_allowed > live.ratio_retries ? ratio_allowed - live.ratio_retries : 0;
  return {live.requests, live.ratio_retries + live.reserve_retries, ratio_left + reserve_ / kReserveToken};
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
