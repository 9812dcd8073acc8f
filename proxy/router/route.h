#pragma once

#include <algorithm>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include <re2/re2.h>

#include "common/grpc_status.h"
#include "common/reload_state.h"
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

/** A route's `timeouts` block. Zero means none. */
struct RouteTimeouts {
  std::chrono::milliseconds request{0};
  std::chrono::milliseconds idle{0};  // per stream, bytes either way
  bool honor_grpc_deadline = true;    // a gRPC client's grpc-timeout tightens `request`
  std::chrono::milliseconds grpc_deadline_offset{0};
  std::chrono::milliseconds grpc_max_deadline{0};
};

/** The parts of a route's `retries` block the router reads per attempt. */
struct RetrySettings {
  std::chrono::nanoseconds per_try_timeout{0};  // 0 = bounded by the request deadline only
  bool ignore_previous_hosts = true;
  uint64_t buffer_limit = 0;  // request body bytes kept for replay
};

/**
 * A compiled route: matcher and everything the router and the connection manager read per
 * request, built once from the validated spec so the request path reads no config. Immutable.
 * Thread: any.
 */
class Route {
public:
  /**
   * Compiles a validated spec. State that must survive reloads (the retry budget, shared by
   * every route to the same upstream with the same budget settings) comes from `state`.
   * Fails only on what the loader cannot see (never in practice).
   */
  static Result<std::shared_ptr<const Route>> create(const config::RouteSpec& spec,
                                                     ReloadableState& state);
  bool matches(const http::RequestHeaders& headers) const;
  const std::string& name() const { return name_; }
  const RouteTimeouts& timeouts() const { return timeouts_; }
  const RetrySettings& retrySettings() const { return retry_settings_; }
  /** Lower-case name of the header carrying the idempotency key. */
  const std::string& idempotencyKeyHeader() const { return idempotency_key_header_; }
  /** True when `upgrade` (a lower-case protocol token) is in the route's `upgrades`. */
  bool allowsUpgrade(std::string_view upgrade) const {
    return std::find(upgrades_.begin(), upgrades_.end(), upgrade) != upgrades_.end();
  }
  /** The route's fallback answer, or null when it has none. */
  const Fallback* fallback() const { return fallback_ ? &*fallback_ : nullptr; }

  /** Retry decisions for this route (attempts = 1 when the route has no retries block). */
  const policies::RetryPolicy& retryPolicy() const { return *retry_policy_; }
  /** Budget shared by every route with the same upstream and budget settings. */
  policies::RetryBudget& retryBudget() const { return *retry_budget_; }
  /** Hedging, when the route has a hedging block. */
  const policies::HedgePolicy* hedgePolicy() const { return hedge_policy_.get(); }
  /**
   * Where each worker keeps this route's recent attempt latencies (hedging delay: auto), or
   * kNoLatencySlot. The same route name and upstream keep their slot across reloads.
   */
  static constexpr uint32_t kNoLatencySlot = UINT32_MAX;
  uint32_t latencySlot() const { return latency_slot_; }
  /** Retries in flight at once (Envoy's budget form: max(percent x active, minRetryConcurrency)).
   */
  policies::ConcurrentRetryLimit& retryConcurrency() const { return *retry_concurrency_; }

private:
  explicit Route(const config::RouteSpec& spec);

  std::string name_;
  config::RouteMatchSpec match_;
  std::unique_ptr<re2::RE2> path_regex_;
  std::vector<std::unique_ptr<re2::RE2>> header_regexes_;  // parallel to match_.headers
  std::string grpc_prefix_;  // "/pkg.Service/" or "/pkg.Service/Method"
  RouteTimeouts timeouts_;
  RetrySettings retry_settings_;
  std::string idempotency_key_header_;
  std::vector<std::string> upgrades_;
  std::shared_ptr<const policies::RetryPolicy> retry_policy_;
  std::shared_ptr<policies::RetryBudget> retry_budget_;
  std::shared_ptr<uint32_t> latency_slot_holder_;  // keeps the slot filed while in use
  uint32_t latency_slot_ = kNoLatencySlot;
  std::shared_ptr<policies::ConcurrentRetryLimit> retry_concurrency_;
  std::unique_ptr<policies::HedgePolicy> hedge_policy_;
  std::optional<Fallback> fallback_;
};
using RouteConstSharedPtr = std::shared_ptr<const Route>;

}  // namespace bulwark::router
