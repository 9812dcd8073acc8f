#pragma once

// Hedging (route `hedging: {delay, maxRequests}`): after `delay` without a response,
// send another attempt to a different host; the first complete response wins. With
// `delay: auto` the delay is the recent `percentile` of the route's attempt latencies (per
// worker, DecayingLatencyHistogram), never below `minDelay`. This is the
// decision taken when the Router's hedge timer fires; the Router owns timers and cancellation.

#include <cstdint>
#include <optional>
#include <string_view>

#include "policies/retry/latency_histogram.h"
#include "policies/retry/retry_budget.h"
#include "policies/retry/retry_policy.h"
#include "policies/time.h"

namespace bulwark::policies {

/** Why no hedge is sent (metric / access-log reason). */
enum class NoHedgeReason : uint8_t {
  NotIdempotent,     // only idempotent requests are hedged
  MaxRequests,       // maxRequests attempts already started
  ResponseStarted,   // an attempt already answered (or the response went downstream)
  DeadlineExceeded,  // the request deadline is too close to be worth another attempt
  BudgetExhausted,   // hedges spend the upstream's retry budget
};

/** @return a stable label, e.g. "max_requests". */
std::string_view noHedgeReasonLabel(NoHedgeReason reason);

/**
 * Hedge decisions for one route.
 *   - eligible: an idempotent method (isIdempotentMethod), any method when the route's retries
 *     say nonIdempotent: always (a read sent as POST), a request carrying the idempotency key
 *     when nonIdempotent is not `never`, or a gRPC call (configuring hedging on a gRPC route is
 *     the per-method opt-in gRPC's hedgingPolicy uses, since every RPC is a POST);
 *   - at most max_requests attempts in total, including the original;
 *   - not once a response has started;
 *   - not when now + delay would reach the deadline (the hedge could not win anyway);
 *   - each hedge withdraws from the RetryBudget,
 *     checked last.
 * Thread: any (immutable; the budget is thread-safe).
 */
class HedgePolicy {
public:
  struct Options {
    Duration delay = std::chrono::milliseconds(100);
    uint32_t max_requests = 2;  // total attempts including the original; < 2 disables hedging
    NonIdempotentPolicy non_idempotent = NonIdempotentPolicy::Never;
    bool adaptive = false;                              // delay: auto
    Duration min_delay = std::chrono::milliseconds(5);  // adaptive: never hedge earlier
    double percentile = 0.95;                           // adaptive: quantile of recent attempts
  };

  struct Request {
    std::string_view method = "GET";
    bool grpc = false;
    bool has_idempotency_key = false;
    uint32_t attempts_started = 1;  // attempts started so far, including the original
    bool response_started = false;
    std::optional<MonotonicTime> deadline;
    MonotonicTime now;
  };

  explicit HedgePolicy(const Options& options) : options_(options) {}

  /** @return true when the request may be hedged at all (checked before arming the timer). */
  bool eligible(const Request& request) const;

  /**
   * Called when the hedge timer fires.
   * @return nullopt to send the hedge now (one budget token was taken), or why not.
   */
  std::optional<NoHedgeReason> decide(const Request& request, RetryBudget* budget) const;

  /** @return the delay after which to hedge (the timer's duration); fixed delays only. */
  Duration delay() const { return options_.delay; }
  /**
   * The hedge timer's duration: the fixed delay, or (adaptive) the recent percentile of
   * `recent`, at least min_delay; nullopt while `recent` has too few samples to say (a cold
   * route is not hedged on a guess).
   */
  std::optional<Duration> delayFor(const DecayingLatencyHistogram& recent, MonotonicTime now) const;
  const Options& options() const { return options_; }

private:
  Options options_;
};

}  // namespace bulwark::policies
