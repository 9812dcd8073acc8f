#pragma once

// The retry decision: one pure function of the failed
// attempt, the request and the route's retry policy. The Router calls decide() after every
// failed attempt and, on Retry, arms a timer for the delay (never retries inline).

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "common/result.h"
#include "policies/outcome.h"
#include "policies/random.h"
#include "policies/retry/backoff.h"
#include "policies/retry/retry_after.h"
#include "policies/retry/retry_budget.h"
#include "policies/time.h"

namespace bulwark::policies {

/**
 * The `retryOn` conditions (Envoy/Istio vocabulary) plus
 * `retriableStatusCodes`. Semantics follow Envoy's RetryStateImpl:
 *   5xx                     any 5xx, and every "no response" failure (connect failure/timeout,
 *                           reset, refused stream, GOAWAY, per-try timeout, protocol error)
 *   gateway-error           502/503/504, and every "no response" failure (as Envoy)
 *   reset                   every "no response" failure except connect failure/timeout
 *   reset-before-request    "no response" failures where no request byte reached the host
 *   connect-failure         connect failure or connect timeout
 *   refused-stream          REFUSED_STREAM, and streams above a GOAWAY's last-stream-id
 *                           (gRPC maps both to "not processed, retry elsewhere")
 *   retriable-4xx           409 only (as Envoy)
 *   retriable-status-codes  any status in retriableStatusCodes
 *   cancelled | deadline-exceeded | internal | resource-exhausted | unavailable
 *                           that gRPC status, from headers *or trailers*; for gRPC calls without
 *                           grpc-status the HTTP status is mapped (503 -> unavailable)
 * HTTP tokens never match a gRPC status (gRPC errors are HTTP 200).
 * Thread: value type, immutable after parse.
 */
class RetryOn {
public:
  enum Condition : uint32_t {
    k5xx = 1u << 0,
    kGatewayError = 1u << 1,
    kReset = 1u << 2,
    kResetBeforeRequest = 1u << 3,
    kConnectFailure = 1u << 4,
    kRefusedStream = 1u << 5,
    kRetriable4xx = 1u << 6,
    kRetriableStatusCodes = 1u << 7,
    kGrpcCancelled = 1u << 8,
    kGrpcDeadlineExceeded = 1u << 9,
    kGrpcInternal = 1u << 10,
    kGrpcResourceExhausted = 1u << 11,
    kGrpcUnavailable = 1u << 12,
  };

  RetryOn() = default;

  /**
   * Parses tokens; an unknown token is an error naming it (the config layer adds the field path).
   * @param tokens e.g. {"5xx", "reset", "unavailable"}.
   * @param retriable_status_codes used by `retriable-status-codes`; codes must be 100..599.
   */
  static Result<RetryOn> parse(const std::vector<std::string>& tokens,
                               const std::vector<uint32_t>& retriable_status_codes = {});

  /** @return true when the attempt's result is retriable under these conditions. */
  bool matches(const AttemptResult& result) const;

  /**
   * @return true when the match is a server-declared gRPC status token (cancelled, ...,
   *         unavailable). Such a status is the route's explicit opt-in for that RPC, as in gRPC's
   *         own retryPolicy (A6), so method idempotency does not gate it.
   */
  bool matchesGrpcStatusToken(const AttemptResult& result) const;

  bool has(Condition c) const { return (conditions_ & c) != 0; }
  uint32_t conditions() const { return conditions_; }
  const std::vector<uint32_t>& retriableStatusCodes() const { return status_codes_; }

private:
  uint32_t conditions_ = 0;
  std::vector<uint32_t> status_codes_;
};

enum class NonIdempotentPolicy : uint8_t { Never, WithIdempotencyKey, Always };

/** @return true for RFC 9110 idempotent methods: GET HEAD OPTIONS TRACE PUT DELETE. */
bool isIdempotentMethod(std::string_view method);

/** Why a failed attempt is not retried (metric and access-log `reason`). */
enum class NoRetryReason : uint8_t {
  NotRetriable,       // success, or the outcome matches no retryOn condition
  ResponseStarted,    // response bytes already went downstream
  AttemptsExhausted,  // `attempts` reached (bulwark_retry_limit_exceeded_total)
  BodyNotBuffered,    // request body exceeded retryBufferLimit; cannot replay
  NonIdempotent,      // unsafe method, request may have been processed, not allowed
  ServerPushback,     // grpc pushback "do not retry", or Retry-After above maxRetryAfter
  DeadlineExceeded,   // the delay would reach the request deadline
  BudgetExhausted,    // RetryBudget refused (bulwark_retry_budget_exhausted_total)
};

/** @return a stable label, e.g. "budget_exhausted". */
std::string_view noRetryReasonLabel(NoRetryReason reason);

/** The decision. Thread: value type. */
struct RetryDecision {
  bool retry = false;
  /** When retry: wait this long (on a timer, even if zero). */
  Duration delay{0};
  /** When retry: reasonLabel() of the outcome, for bulwark_retries_total{reason}. */
  std::string_view reason;
  /** When retry: true if the delay came from Retry-After / grpc-retry-pushback-ms. */
  bool pushback_honored = false;
  /** When !retry: why not. */
  NoRetryReason why = NoRetryReason::NotRetriable;

  static RetryDecision retryAfter(Duration delay, std::string_view reason, bool pushback) {
    return {true, delay, reason, pushback, NoRetryReason::NotRetriable};
  }
  static RetryDecision doNotRetry(NoRetryReason why) {
    return {false, Duration{0}, {}, false, why};
  }
};

/** What the Router knows about the request and the failed attempt. Thread: value type. */
struct RetryRequest {
  AttemptResult result;                   // the attempt that just failed
  uint32_t attempts_made = 1;             // attempts so far, including the one that failed
  bool response_started = false;          // response bytes went downstream
  bool body_buffered = true;              // whole request body is held for replay
  std::string_view method = "GET";        // request method (gRPC calls are POST)
  bool has_idempotency_key = false;       // request carries the route's idempotency header
  Pushback pushback;                      // parsed Retry-After / grpc-retry-pushback-ms, if any
  std::optional<MonotonicTime> deadline;  // request deadline (route timeout / grpc-timeout)
  MonotonicTime now;
};

/**
 * A route's retry policy (RetriesSpec): combines retryOn, attempts, the "nothing sent
 * downstream" rule, body replayability, idempotency, server pushback, the request deadline and
 * the upstream's retry budget, in that order, into one RetryDecision. The first failing check
 * names the reason; the budget is consulted last because withdrawing from it is a side effect.
 *
 * Idempotency: a non-idempotent request (POST, PATCH, ...) is retried only when it
 * provably never reached the host (requestNeverProcessed()), unless nonIdempotent is `always`,
 * or `withIdempotencyKey` and the request carries the key. A gRPC-status token match is exempt
 * (see RetryOn::matchesGrpcStatusToken).
 *
 * Pushback (respectRetryAfter): a Delay up to maxRetryAfter replaces the backoff; HTTP
 * Retry-After delays get up to +50 % jitter (never beyond maxRetryAfter) so clients told the same
 * instant do not return together; gRPC pushback is waited exactly (A6). A longer ask, or gRPC
 * "do not retry", stops retrying so the upstream's answer is returned as is.
 *
 * Thread: any (immutable after construction; the budget is thread-safe; `random` is the
 * caller's per-worker generator).
 */
class RetryPolicy {
public:
  struct Options {
    RetryOn retry_on;
    uint32_t attempts = 1;  // total attempts including the first
    Backoff::Options backoff;
    bool respect_retry_after = true;
    Duration max_retry_after = std::chrono::seconds(2);
    NonIdempotentPolicy non_idempotent = NonIdempotentPolicy::Never;
  };

  explicit RetryPolicy(Options options)
      : options_(std::move(options)), backoff_(options_.backoff) {}

  /**
   * Decides whether to retry after a failed attempt.
   * @param request the attempt's result and the request's state.
   * @param budget the upstream's budget, or nullptr when budgets are off. Withdrawn from only
   *        when every other check passed and the answer is Retry.
   * @param random per-worker generator for the jitter.
   */
  RetryDecision decide(const RetryRequest& request, RetryBudget* budget, Random& random) const;

  const Options& options() const { return options_; }
  const Backoff& backoff() const { return backoff_; }

private:
  Options options_;
  Backoff backoff_;
};

}  // namespace bulwark::policies
