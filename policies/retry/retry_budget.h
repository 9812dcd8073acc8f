#pragma once

// Retry budgets: the defence against retry storms (resilience-features.md §1 "Retry budget",
// idea 1 "dual retry budget, on by default").

#include <atomic>
#include <cstdint>
#include <mutex>
#include <optional>

#include "policies/bulkhead/concurrency_limit.h"
#include "policies/sliding_window.h"
#include "policies/time.h"

namespace bulwark::policies {

/**
 * Time-window ratio budget per upstream, in the Finagle/Linkerd form
 * (linkerd2-proxy-api `RetryBudget {retry_ratio, min_retries_per_second, ttl}`, Finagle
 * `RetryBudget(ttl, minRetriesPerSec, percentCanRetry)`):
 *
 *   a retry is allowed iff  retries_in_window + 1 <= percent/100 * requests_in_window
 *                                                   + min_retries_per_second * window_seconds
 *
 * where `requests` are original requests only (recordRequest()) and `retries` are retries and
 * hedges (tryWithdraw()). Why this form: retries never earn budget, so the extra load they add
 * is bounded by the ratio of *client* traffic, not of total traffic, and the reserve keeps
 * low-traffic routes retryable. Over any horizon T that is a multiple of the window, the upstream
 * sees at most (1 + percent/100) * client_requests + min_retries_per_second * T attempts; with the
 * defaults (20 %, 10/s) a 100 %-failing upstream gets at most 1.2x the client rate + 10/s
 * (tests/unit/policies/retry_budget_test.cc proves it at 1000 req/s for 20 s).
 * Arithmetic is exact: integers scaled by 10^4 (percent in basis points).
 *
 * NOTE: the window is bucketed (SlidingWindow), so a retry is forgotten between window - width
 * and window after it happened; the bound above holds because requests and retries expire
 * together.
 *
 * Thread: any. A small mutex guards the bucket ring (two counters per bucket, a few ns held);
 * rejected-count and totals for metrics are atomics readable without it.
 */
class RetryBudget {
public:
  struct Options {
    double percent = 20.0;                 // extra load retries may add; RetriesSpec.budget.percent
    uint32_t min_retries_per_second = 10;  // the reserve ("free" retries per second)
    Duration window = std::chrono::seconds(10);  // Linkerd ttl / Istio budgetInterval
    uint32_t buckets = 10;
  };

  explicit RetryBudget(const Options& options);

  /** Records one original (first-attempt) request. Thread: any. */
  void recordRequest(MonotonicTime now);

  /**
   * Takes one retry (or hedge) from the budget if the formula above allows it.
   * Thread: any.
   * @return true when the retry may be sent; false is a budget exhaustion (metric
   *         bulwark_retry_budget_exhausted_total).
   */
  bool tryWithdraw(MonotonicTime now);

  struct Snapshot {
    uint64_t requests = 0;   // original requests in the window
    uint64_t retries = 0;    // retries taken in the window
    uint64_t available = 0;  // retries that tryWithdraw() would still grant now
  };

  /** @return the live window counts. Thread: any. */
  Snapshot snapshot(MonotonicTime now) const;

  /** @return retries refused since construction. Thread: any (relaxed read). */
  uint64_t exhaustedTotal() const { return exhausted_.load(std::memory_order_relaxed); }

  const Options& options() const { return options_; }

private:
  struct Counters {
    uint64_t requests = 0;
    uint64_t retries = 0;
    Counters& operator+=(const Counters& o) {
      requests += o.requests;
      retries += o.retries;
      return *this;
    }
  };

  uint64_t allowanceScaled(const Counters& c) const;

  Options options_;
  uint64_t percent_bp_;      // percent * 100 (basis points)
  uint64_t reserve_scaled_;  // min_retries_per_second * window_seconds * 10^4
  mutable std::mutex mu_;
  SlidingWindow<Counters> window_;  // guarded by mu_
  std::atomic<uint64_t> exhausted_{0};
};

/**
 * Envoy's concurrent retry budget (`retry_budget {budget_percent, min_retry_concurrency}`):
 *   concurrent retries <= max(min_retry_concurrency, percent/100 * active_requests)
 * The caller holds the returned permit for the duration of the retry attempt.
 * Exact: a CAS loop, never exceeded even under contention.
 * Thread: any (atomics). The limit must outlive its permits.
 */
class ConcurrentRetryLimit {
public:
  struct Options {
    double percent = 20.0;               // RetriesSpec.budget.percent
    uint32_t min_retry_concurrency = 3;  // RetriesSpec.budget.minRetryConcurrency
  };

  explicit ConcurrentRetryLimit(const Options& options) : options_(options), active_(0) {}

  /**
   * @param active_requests requests currently active (plus pending) on the upstream.
   * @return a permit for one concurrent retry, or nullopt (metric: limit="retries" overflow).
   */
  std::optional<ConcurrencyLimit::Permit> tryAcquire(uint64_t active_requests);

  /** @return the bound tryAcquire() would apply for `active_requests`. */
  uint32_t bound(uint64_t active_requests) const;

  /** @return retries in flight. */
  uint32_t active() const { return active_.active(); }

private:
  Options options_;
  ConcurrencyLimit active_;  // its own max is unused; the bound is computed per call
};

}  // namespace bulwark::policies
