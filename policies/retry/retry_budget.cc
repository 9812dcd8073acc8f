#include "policies/retry/retry_budget.h"

#include <algorithm>
#include <cmath>

namespace bulwark::policies {
namespace {
constexpr uint64_t kScale = 10'000;                // one retry = 10^4; percent is in basis points
constexpr uint64_t kReserveToken = 1'000'000'000;  // one reserve token in token-nanoseconds
}  // namespace

RetryBudget::RetryBudget(const Options& options)
    : options_(options),
      percent_bp_(static_cast<uint64_t>(std::llround(std::max(0.0, options.percent) * 100.0))),
      reserve_capacity_(options.min_retries_per_second > 0
                            ? std::max<uint64_t>(1, options.reserve_burst) * kReserveToken
                            : 0),
      window_(std::max(options.window, Duration(1)), options.buckets) {}

MonotonicTime RetryBudget::latest(MonotonicTime now) const {
  if (!started_ || now > latest_) {
    latest_ = now;
  }
  if (!started_) {
    started_ = true;
    // A new budget starts with its burst, so the first failures of a quiet upstream can be
    // retried at once; the burst is an advance on the rate, paid back before the bucket refills,
    // so from the start the reserve never grants more than max(burst, rate x T).
    reserve_ = reserve_capacity_;
    reserve_debt_ = reserve_capacity_;
    reserve_refilled_ = latest_;
  }
  return latest_;
}

void RetryBudget::refillReserve(MonotonicTime now) const {
  if (reserve_capacity_ == 0 || now <= reserve_refilled_) {
    return;
  }
  const uint64_t rate = options_.min_retries_per_second;
  // Only the time needed to repay the advance and fill the bucket counts: that keeps
  // elapsed_ns x rate inside 64 bits (at most 2 x 2^32 tokens = 8.6 x 10^18 token-ns).
  const uint64_t needed = reserve_debt_ + (reserve_capacity_ - reserve_);
  const uint64_t to_full_ns = (needed + rate - 1) / rate;
  const auto elapsed =
      std::min<uint64_t>(static_cast<uint64_t>((now - reserve_refilled_).count()), to_full_ns);
  uint64_t earned = elapsed * rate;
  const uint64_t repaid = std::min(earned, reserve_debt_);
  reserve_debt_ -= repaid;
  earned -= repaid;
  reserve_ = std::min<uint64_t>(reserve_capacity_, reserve_ + earned);
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
  const uint64_t ratio_left =
      ratio_allowed > live.ratio_retries ? ratio_allowed - live.ratio_retries : 0;
  return {live.requests, live.ratio_retries + live.reserve_retries,
          ratio_left + reserve_ / kReserveToken};
}

uint32_t ConcurrentRetryLimit::bound(uint64_t active_requests) const {
  const double share =
      std::max(0.0, options_.percent) / 100.0 * static_cast<double>(active_requests);
  const double capped = std::min(share, static_cast<double>(UINT32_MAX));
  return std::max(options_.min_retry_concurrency, static_cast<uint32_t>(capped));
}

std::optional<ConcurrencyLimit::Permit> ConcurrentRetryLimit::tryAcquire(uint64_t active_requests) {
  return active_.tryAcquireUpTo(bound(active_requests));
}

}  // namespace bulwark::policies
