#include "policies/retry/hedge_policy.h"

#include <algorithm>

namespace bulwark::policies {

std::string_view noHedgeReasonLabel(NoHedgeReason reason) {
  switch (reason) {
    case NoHedgeReason::NotIdempotent: return "not_idempotent";
    case NoHedgeReason::MaxRequests: return "max_requests";
    case NoHedgeReason::ResponseStarted: return "response_started";
    case NoHedgeReason::DeadlineExceeded: return "deadline_exceeded";
    case NoHedgeReason::BudgetExhausted: return "budget_exhausted";
  }
  return "not_idempotent";
}

std::optional<Duration> HedgePolicy::delayFor(const DecayingLatencyHistogram& recent,
                                              MonotonicTime now) const {
  if (!options_.adaptive) {
    return options_.delay;
  }
  auto observed = recent.quantile(options_.percentile, now);
  if (!observed) {
    return std::nullopt;
  }
  return std::max(*observed, options_.min_delay);
}

bool HedgePolicy::eligible(const Request& request) const {
  if (options_.max_requests < 2) {
    return false;
  }
  return request.grpc || isIdempotentMethod(request.method) ||
         options_.non_idempotent == NonIdempotentPolicy::Always ||
         (request.has_idempotency_key && options_.non_idempotent != NonIdempotentPolicy::Never);
}

std::optional<NoHedgeReason> HedgePolicy::decide(const Request& request,
                                                 RetryBudget* budget) const {
  if (!eligible(request)) {
    return options_.max_requests < 2 ? NoHedgeReason::MaxRequests : NoHedgeReason::NotIdempotent;
  }
  if (request.response_started) {
    return NoHedgeReason::ResponseStarted;
  }
  if (request.attempts_started >= options_.max_requests) {
    return NoHedgeReason::MaxRequests;
  }
  const Duration least = options_.adaptive ? options_.min_delay : options_.delay;
  if (request.deadline.has_value() && saturatingAdd(request.now, least) >= *request.deadline) {
    return NoHedgeReason::DeadlineExceeded;
  }
  if (budget != nullptr && !budget->tryWithdraw(request.now)) {
    return NoHedgeReason::BudgetExhausted;
  }
  return std::nullopt;
}

}  // namespace bulwark::policies
