#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <re2/re2.h>

#include "common/grpc_status.h"
#include "common/result.h"
#include "policies/retry/hedge_policy.h"
#include "policies/retry/retry_budget.h"
#include "policies/retry/retry_policy.h"
#include "proxy/config/spec.h"
#include "proxy/config/vocabulary.h"
#include "proxy/http/headers.h"

namespace bulwark::router {

/** A route's `fallback` block, ready to send. Immutable. Thread: any. */
struct Fallback {
  uint32_t triggers = 0;  // bit (1 << FallbackTrigger) for each trigger in `on`
  uint32_t status = 200;
  http::HeaderMap headers;  // lower-cased names, without content-length
  std::string body;
  GrpcStatus grpc_status = GrpcStatus::Unavailable;
  std::string grpc_message;

  bool answers(config::FallbackTrigger trigger) const {
    return (triggers & (1u << static_cast<uint32_t>(trigger))) != 0;
  }
};

/** A compiled route: matcher plus what the router needs. Immutable. Thread: any. */
class Route {
public:
  /** Compiles a validated spec; fails only on what the loader cannot see (never in practice). */
  static Result<std::shared_ptr<const Route>> create(const config::RouteSpec& spec);
  explicit Route(const config::RouteSpec& spec);
  bool matches(const http::RequestHeaders& headers) const;
  const config::RouteSpec& spec() const { return spec_; }
  const std::string& name() const { return spec_.name; }
  const std::string& upstreamName() const { return spec_.upstream; }
  config::TimeoutsSpec timeouts() const {
    return spec_.policies.timeouts.value_or(config::TimeoutsSpec{});
  }
  bool isGrpcRoute() const { return spec_.match.grpc.has_value(); }
  /** The route's fallback answer, or null when it has none. */
  const Fallback* fallback() const { return fallback_ ? &*fallback_ : nullptr; }

  /** Retry decisions for this route (attempts = 1 when the route has no retries block). */
  const policies::RetryPolicy& retryPolicy() const { return *retry_policy_; }
  /** Budget shared by every route with the same upstream and budget settings. */
  policies::RetryBudget& retryBudget() const { return *retry_budget_; }
  /** Hedging, when the route has a hedging block. */
  const policies::HedgePolicy* hedgePolicy() const { return hedge_policy_.get(); }
  const config::RetriesSpec& retries() const { return retries_; }
  /** Retries in flight at once (Envoy's budget form: max(percent x active, minRetryConcurrency)).
   */
  policies::ConcurrentRetryLimit& retryConcurrency() const { return *retry_concurrency_; }

private:
  config::RouteSpec spec_;
  std::unique_ptr<re2::RE2> path_regex_;
  std::vector<std::unique_ptr<re2::RE2>> header_regexes_;  // parallel to spec_.match.headers
  std::string grpc_prefix_;  // "/pkg.Service/" or "/pkg.Service/Method"
  config::RetriesSpec retries_;
  std::shared_ptr<const policies::RetryPolicy> retry_policy_;
  std::shared_ptr<policies::RetryBudget> retry_budget_;
  std::shared_ptr<policies::ConcurrentRetryLimit> retry_concurrency_;
  std::unique_ptr<policies::HedgePolicy> hedge_policy_;
  std::optional<Fallback> fallback_;
};
using RouteConstSharedPtr = std::shared_ptr<const Route>;

}  // namespace bulwark::router
