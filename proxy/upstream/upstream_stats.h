#pragma once

#include <memory>
#include <string>
#include <string_view>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "policies/circuit_breaker/circuit_breaker.h"
#include "policies/outlier/outlier_detector.h"
#include "proxy/stats/stats.h"

namespace bulwark::upstream {

/** Which upstream limit refused (label `limit` of bulwark_connection_pool_overflow_total). */
enum class OverflowLimit { Connections, Pending, Requests, Retries };

/** @return "connections", "pending", "requests" or "retries". */
std::string_view overflowLimitLabel(OverflowLimit limit);

/**
 * Metric handles of one upstream: limits, breaker, outlier
 * detection, health checks and endpoint counts. Families are looked up by name in the process
 * registry (prometheus-cpp merges a family registered twice under one name), so upstreams created
 * by a reload reuse the same series.
 * Thread: any (prometheus-cpp metrics are internally synchronised).
 */
class UpstreamStats {
public:
  UpstreamStats(prometheus::Registry& registry, std::string upstream);

  void overflow(OverflowLimit limit);
  /** Sets the state gauge: 1 for `state`, 0 for the others. */
  void breakerState(policies::BreakerState state);
  void breakerTransition(policies::BreakerState from, policies::BreakerState to);
  /** perHost: one host breaker's transition (same counter; no upstream-wide state gauge). */
  void hostBreakerTransition(policies::BreakerState from, policies::BreakerState to);
  /** perHost: hosts whose breaker is in each state (bulwark_circuit_breaker_hosts), at scrape. */
  void hostBreakerStates(size_t closed, size_t open, size_t half_open);
  void breakerRejected();
  /** bulwark_dry_run_decisions_total{upstream, policy, decision}. */
  void dryRun(std::string_view policy, std::string_view decision);
  /** A connection to one of the upstream's hosts failed (refused, timed out, reset early). */
  void connectFailure();
  void ejection(policies::EjectionReason reason);
  /** An ejection ended before its time; reason: "active_health_check". */
  void unejection(std::string_view reason);
  void ejectedEndpoints(size_t count);
  /** result: "success" | "failure" | "timeout". */
  void healthCheck(std::string_view result);
  /** One TLS handshake to a host: "ok" or the failure reason; resumed sessions counted too. */
  void tlsHandshake(std::string_view result, std::chrono::steady_clock::duration duration,
                    bool resumed);
  /** Endpoint counts by health, refreshed at scrape time (circuit_open: perHost breaker open). */
  void endpoints(size_t healthy, size_t unhealthy, size_t ejected, size_t draining,
                 size_t circuit_open = 0);

private:
  prometheus::Registry& registry_;
  std::string upstream_;
  prometheus::Family<prometheus::Counter>& overflow_;
  prometheus::Family<prometheus::Gauge>& breaker_state_;
  prometheus::Family<prometheus::Counter>& breaker_transitions_;
  prometheus::Family<prometheus::Gauge>& breaker_hosts_;
  prometheus::Counter& breaker_rejected_;
  prometheus::Counter& connect_failures_;
  prometheus::Family<prometheus::Counter>& ejections_;
  prometheus::Family<prometheus::Counter>& unejections_;
  prometheus::Gauge& ejected_endpoints_;
  prometheus::Family<prometheus::Counter>& health_checks_;
  stats::TlsHandshakeMetrics tls_;
  prometheus::Family<prometheus::Gauge>& endpoints_;
};
using UpstreamStatsSharedPtr = std::shared_ptr<UpstreamStats>;

}  // namespace bulwark::upstream
