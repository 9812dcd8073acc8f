#include "policies/retry/retry_policy.h"

#include <algorithm>
#include <array>
#include <utility>

namespace bulwark::policies {
namespace {

struct Token {
  std::string_view name;
  RetryOn::Condition condition;
};

constexpr std::array<Token, 13> kTokens = {{
    {"5xx", RetryOn::k5xx},
    {"gateway-error", RetryOn::kGatewayError},
    {"reset", RetryOn::kReset},
    {"reset-before-request", RetryOn::kResetBeforeRequest},
    {"connect-failure", RetryOn::kConnectFailure},
    {"refused-stream", RetryOn::kRefusedStream},
    {"retriable-4xx", RetryOn::kRetriable4xx},
    {"retriable-status-codes", RetryOn::kRetriableStatusCodes},
    {"cancelled", RetryOn::kGrpcCancelled},
    {"deadline-exceeded", RetryOn::kGrpcDeadlineExceeded},
    {"internal", RetryOn::kGrpcInternal},
    {"resource-exhausted", RetryOn::kGrpcResourceExhausted},
    {"unavailable", RetryOn::kGrpcUnavailable},
}};

// Outcomes where no usable response arrived ("does not respond at all" in Envoy's docs).
bool isNoResponse(Outcome o) {
  switch (o) {
    case Outcome::ConnectFailure:
    case Outcome::ConnectTimeout:
    case Outcome::ResetBeforeRequest:
    case Outcome::Reset:
    case Outcome::RefusedStream:
    case Outcome::GoAwayBeforeProcessing:
    case Outcome::PerTryTimeout:
    case Outcome::ProtocolError: return true;
    default: return false;
  }
}

uint32_t grpcConditionFor(Outcome o) {
  switch (o) {
    case Outcome::GrpcCancelled: return RetryOn::kGrpcCancelled;
    case Outcome::GrpcDeadlineExceeded: return RetryOn::kGrpcDeadlineExceeded;
    case Outcome::GrpcInternal: return RetryOn::kGrpcInternal;
    case Outcome::GrpcResourceExhausted: return RetryOn::kGrpcResourceExhausted;
    case Outcome::GrpcUnavailable: return RetryOn::kGrpcUnavailable;
    default: return 0;
  }
}

}  // namespace

Result<RetryOn> RetryOn::parse(const std::vector<std::string>& tokens,
                               const std::vector<uint32_t>& retriable_status_codes) {
  RetryOn on;
  for (const auto& token : tokens) {
    const auto it = std::find_if(kTokens.begin(), kTokens.end(),
                                 [&](const Token& t) { return t.name == token; });
    if (it == kTokens.end()) {
      std::string message = "unknown retryOn condition \"" + token + "\" (expected one of: ";
      std::string_view separator;
      for (const auto& t : kTokens) {
        message += separator;
        message += t.name;
        separator = ", ";
      }
      message += ')';
      return Status::error(std::move(message));
    }
    on.conditions_ |= it->condition;
  }
  for (const uint32_t code : retriable_status_codes) {
    if (code < 100 || code > 599) {
      return Status::error("retriableStatusCodes: " + std::to_string(code) +
                           " is not an HTTP status (100..599)");
    }
    on.status_codes_.push_back(code);
  }
  return on;
}

bool RetryOn::matches(const AttemptResult& result) const {
  const Outcome outcome = classify(result);
  if (isNoResponse(outcome)) {
    // Envoy: 5xx, gateway-error and reset cover every reset; connect-failure only connects.
    const bool is_connect =
        outcome == Outcome::ConnectFailure || outcome == Outcome::ConnectTimeout;
    if (has(k5xx) || has(kGatewayError)) {
      return true;
    }
    if (has(kReset) && !is_connect) {
      return true;
    }
    if (has(kConnectFailure) && is_connect) {
      return true;
    }
    if (has(kResetBeforeRequest) && requestNeverProcessed(result)) {
      return true;
    }
    if (has(kRefusedStream) &&
        (outcome == Outcome::RefusedStream || outcome == Outcome::GoAwayBeforeProcessing)) {
      return true;
    }
    return false;
  }
  if (const uint32_t grpc = grpcConditionFor(outcome); grpc != 0) {
    return (conditions_ & grpc) != 0;
  }
  if (result.grpc_status.has_value() || result.grpc) {
    return false;  // gRPC answers are judged by their status only (HTTP 200 otherwise)
  }
  const uint32_t status = result.http_status;
  if (has(k5xx) && status >= 500 && status <= 599) {
    return true;
  }
  if (has(kGatewayError) && (status == 502 || status == 503 || status == 504)) {
    return true;
  }
  if (has(kRetriable4xx) && status == 409) {
    return true;
  }
  if (has(kRetriableStatusCodes) &&
      std::find(status_codes_.begin(), status_codes_.end(), status) != status_codes_.end()) {
    return true;
  }
  return false;
}

bool RetryOn::matchesGrpcStatusToken(const AttemptResult& result) const {
  const uint32_t grpc = grpcConditionFor(classify(result));
  return grpc != 0 && (conditions_ & grpc) != 0;
}

bool isIdempotentMethod(std::string_view method) {
  return method == "GET" || method == "HEAD" || method == "OPTIONS" || method == "TRACE" ||
         method == "PUT" || method == "DELETE";
}

std::string_view noRetryReasonLabel(NoRetryReason reason) {
  switch (reason) {
    case NoRetryReason::NotRetriable: return "not_retriable";
    case NoRetryReason::ResponseStarted: return "response_started";
    case NoRetryReason::AttemptsExhausted: return "attempts_exhausted";
    case NoRetryReason::BodyNotBuffered: return "body_not_buffered";
    case NoRetryReason::NonIdempotent: return "non_idempotent";
    case NoRetryReason::ServerPushback: return "server_pushback";
    case NoRetryReason::DeadlineExceeded: return "deadline_exceeded";
    case NoRetryReason::BudgetExhausted: return "budget_exhausted";
  }
  return "not_retriable";
}

RetryDecision RetryPolicy::decide(const RetryRequest& request, RetryBudget* budget,
                                  Random& random) const {
  const Outcome outcome = classify(request.result);
  if (!options_.retry_on.matches(request.result)) {
    return RetryDecision::doNotRetry(NoRetryReason::NotRetriable);
  }
  if (request.response_started) {
    return RetryDecision::doNotRetry(NoRetryReason::ResponseStarted);
  }
  if (request.attempts_made >= options_.attempts) {
    return RetryDecision::doNotRetry(NoRetryReason::AttemptsExhausted);
  }
  if (!request.body_buffered) {
    return RetryDecision::doNotRetry(NoRetryReason::BodyNotBuffered);
  }
  if (!isIdempotentMethod(request.method) && !requestNeverProcessed(request.result) &&
      !options_.retry_on.matchesGrpcStatusToken(request.result)) {
    const bool allowed = options_.non_idempotent == NonIdempotentPolicy::Always ||
                         (options_.non_idempotent == NonIdempotentPolicy::WithIdempotencyKey &&
                          request.has_idempotency_key);
    if (!allowed) {
      return RetryDecision::doNotRetry(NoRetryReason::NonIdempotent);
    }
  }

  Duration delay{0};
  bool pushback_honored = false;
  if (options_.respect_retry_after && request.pushback.kind != Pushback::Kind::None) {
    if (request.pushback.kind == Pushback::Kind::DoNotRetry ||
        request.pushback.delay > options_.max_retry_after) {
      return RetryDecision::doNotRetry(NoRetryReason::ServerPushback);
    }
    delay = request.pushback.delay;
    if (!request.result.grpc) {
      // delay * U[1, 1.5), never past maxRetryAfter (which delay itself does not exceed).
      const auto extra =
          std::chrono::duration_cast<Duration>(std::chrono::duration<double, std::nano>(
              static_cast<double>(delay.count()) * 0.5 * random.uniform01()));
      delay = std::min(delay + extra, std::max(delay, options_.max_retry_after));
    }
    pushback_honored = true;
  } else {
    delay = backoff_.next(request.attempts_made, random);
  }

  if (request.deadline.has_value() && saturatingAdd(request.now, delay) >= *request.deadline) {
    return RetryDecision::doNotRetry(NoRetryReason::DeadlineExceeded);
  }
  if (budget != nullptr && !budget->tryWithdraw(request.now)) {
    return RetryDecision::doNotRetry(NoRetryReason::BudgetExhausted);
  }
  return RetryDecision::retryAfter(delay, reasonLabel(outcome), pushback_honored);
}

}  // namespace bulwark::policies
