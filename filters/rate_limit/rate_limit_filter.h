#pragma once

// Route `rateLimit`: a token bucket per route, or per key (a request header or the
// client IP), answering 429 + Retry-After + RateLimit headers when empty. `scope: global` keeps
// the bucket in the shared-state Redis instead (one GCRA script call per request), so every
// bulwark instance draws from the same budget; `failureMode` says what happens when Redis does
// not answer in time.

#include <array>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include <prometheus/counter.h>

#include "filters/filter_support.h"
#include "policies/rate_limit/token_bucket.h"
#include "proxy/config/spec.h"
#include "proxy/http/filter.h"
#include "proxy/redis/redis_client.h"

namespace bulwark::filters::rate_limit {

/**
 * One route's buckets and metric handles, shared by every worker and kept across reloads while
 * the block is unchanged (FactoryContext::sharedState), so a reload does not refill buckets.
 * Thread: any (RateLimiter locks internally; the rest is immutable after construction).
 */
struct RateLimitState {
  /** bulwark_rate_limit_decisions_total{decision}, in this order. */
  enum Decision : uint8_t {
    kAllowed,          // a token was taken (local bucket, or the global one through Redis)
    kLimited,          // 429
    kFailureAllowed,   // global, Redis unavailable, failureMode allow
    kFailureDenied,    // global, Redis unavailable, failureMode deny (503)
    kFallbackAllowed,  // global, Redis unavailable, failureMode local: the local bucket allowed
    kFallbackLimited,  // ... and limited (429)
    kDecisionCount
  };
  static constexpr std::array<std::string_view, kDecisionCount> kDecisionLabels = {
      "allowed",        "limited",          "failure_allowed",
      "failure_denied", "fallback_allowed", "fallback_limited"};

  RateLimitState(const config::RateLimitSpec& spec, policies::RateLimitHeaderStyle style,
                 std::string route_name, prometheus::Counter& limited,
                 prometheus::Family<prometheus::Counter>& decisions,
                 prometheus::Counter* dry_run_limited);

  void count(Decision decision) const { decisions[decision]->Increment(); }

  const config::RateLimitSpec spec;
  const std::string route_name;
  const bool global;
  const uint32_t burst;  // the effective capacity (spec.burst, or one second's worth)
  const policies::RateLimitHeaders headers;  // the route name is their policy identifier
  // scope local: the buckets; scope global with failureMode local: the per-instance share.
  policies::RateLimiter limiter;
  prometheus::Counter& limited;  // bulwark_rate_limited_total{route}
  std::array<prometheus::Counter*, kDecisionCount> decisions{};
  prometheus::Counter* dry_run_limited;  // mode dryRun: bulwark_dry_run_decisions_total; else null
  FilterClock clock;
};
using RateLimitStateSharedPtr = std::shared_ptr<RateLimitState>;

/**
 * Takes one token for the request's key in onRequestHeaders (global scope: pauses the chain
 * until Redis answers or redis.timeout passes). Empty bucket: local reply 429
 * (gRPC: UNAVAILABLE + grpc-retry-pushback-ms, Envoy's default for local rate limits and the
 * gRPC mapping of 429) with Retry-After and, unless `headers: off`, the
 * RateLimit headers. Allowed requests carry the RateLimit headers on their response.
 * The key is the header's first value (requests without it share the "" bucket, so omitting
 * the header does not escape the limit) or the TCP peer's IP (never X-Forwarded-For, which the
 * client controls).
 * Thread: owning worker; one instance per request.
 */
class RateLimitFilter : public http::HttpFilter {
public:
  explicit RateLimitFilter(RateLimitStateSharedPtr state) : state_(std::move(state)) {}

  // http::HttpFilter
  http::FilterStatus onRequestHeaders(http::RequestHeaders& headers, bool end_stream) override;
  void onResponseHeaders(http::ResponseHeaders& headers, bool end_stream) override;

  /** The GCRA script of the global scope (exposed for its unit test). */
  static const redis::Script& globalScript();

private:
  http::FilterStatus acquireGlobal(std::string_view key);
  void onGlobalReply(const redis::RedisClient::Reply& reply);
  /** Redis did not answer: applies failureMode. `deferred`: the chain is paused on this filter. */
  http::FilterStatus applyFailureMode(std::string_view key, bool deferred);
  /** Admits or answers 429 per `decision`, counting it as `allowed` / `limited`. */
  http::FilterStatus apply(const policies::RateLimitDecision& decision,
                           RateLimitState::Decision allowed, RateLimitState::Decision limited);

  RateLimitStateSharedPtr state_;
  std::optional<policies::RateLimitDecision> allowed_;  // set when the request got a token
  redis::RedisClientSharedPtr redis_;                   // kept while an operation is out
  redis::RedisClient::HandlePtr pending_;
  std::string pending_key_;
  std::string key_;  // the bucket key, kept for the decision record
};

/** The factory for filters/builtin.cc: enabled by a route's `rateLimit` block. */
http::FilterFactoryPtr makeFactory();

}  // namespace bulwark::filters::rate_limit
