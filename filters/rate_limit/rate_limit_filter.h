#pragma once

// Route `rateLimit`: a token bucket per route, or per key (a request header or the
// client IP), answering 429 + Retry-After + RateLimit headers when empty.

#include <memory>
#include <optional>
#include <string>

#include <prometheus/counter.h>

#include "filters/filter_support.h"
#include "policies/rate_limit/token_bucket.h"
#include "proxy/config/spec.h"
#include "proxy/http/filter.h"

namespace bulwark::filters::rate_limit {

/**
 * One route's buckets and metric handles, shared by every worker and kept across reloads while
 * the block is unchanged (FactoryContext::sharedState), so a reload does not refill buckets.
 * Thread: any (RateLimiter locks internally; the rest is immutable after construction).
 */
struct RateLimitState {
  RateLimitState(const config::RateLimitSpec& spec, policies::RateLimitHeaderStyle style,
                 std::string route_name, prometheus::Counter& limited);

  const config::RateLimitSpec spec;
  const policies::RateLimitHeaderStyle style;
  const std::string route_name;  // the policy identifier in the RateLimit headers
  policies::RateLimiter limiter;
  prometheus::Counter& limited;  // bulwark_rate_limited_total{route}
  FilterClock clock;
};
using RateLimitStateSharedPtr = std::shared_ptr<RateLimitState>;

/**
 * Takes one token for the request's key in onRequestHeaders. Empty bucket: local reply 429
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

private:
  RateLimitStateSharedPtr state_;
  std::optional<policies::RateLimitDecision> allowed_;  // set when the request got a token
};

/** The factory for filters/builtin.cc: enabled by a route's `rateLimit` block. */
http::FilterFactoryPtr makeFactory();

}  // namespace bulwark::filters::rate_limit
