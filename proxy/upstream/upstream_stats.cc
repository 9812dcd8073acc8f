#include "proxy/upstream/upstream_stats.h"

#include <array>

namespace bulwark::upstream {

std::string_view overflowLimitLabel(OverflowLimit limit) {
  switch (limit) {
    case OverflowLimit::Connections: return "connections";
    case OverflowLimit::Pending: return "pending";
    case OverflowLimit::Requests: return "requests";
    case OverflowLimit::Retries: return "retries";
  }
  return "requests";
}

UpstreamStats::UpstreamStats(prometheus::Registry& registry, std::string upstream)
    : registry_(registry),
      upstream_(std::move(upstream)),
      overflow_(prometheus::BuildCounter()
                    .Name("bulwark_connection_pool_overflow_total")
                    .Help("Attempts refused by an upstream limit")
                    .Register(registry_)),
      breaker_state_(prometheus::BuildGauge()
                         .Name("bulwark_circuit_breaker_state")
                         .Help("1 for the circuit breaker's current state")
                         .Register(registry_)),
      breaker_transitions_(prometheus::BuildCounter()
                               .Name("bulwark_circuit_breaker_transitions_total")
                               .Help("Circuit breaker state transitions")
                               .Register(registry_)),
      breaker_hosts_(prometheus::BuildGauge()
                         .Name("bulwark_circuit_breaker_hosts")
                         .Help("Hosts whose own circuit breaker (perHost) is in each state")
                         .Register(registry_)),
      breaker_rejected_(prometheus::BuildCounter()
                            .Name("bulwark_circuit_breaker_rejected_total")
                            .Help("Attempts refused by an open circuit breaker")
                            .Register(registry_)
                            .Add({{"upstream", upstream_}})),
      connect_failures_(prometheus::BuildCounter()
                            .Name("bulwark_upstream_connect_failures_total")
                            .Help("Connections to the upstream's hosts that failed to open")
                            .Register(registry_)
                            .Add({{"upstream", upstream_}})),
      ejections_(prometheus::BuildCounter()
                     .Name("bulwark_outlier_ejections_total")
                     .Help("Hosts ejected by outlier detection")
                     .Register(registry_)),
      unejections_(
          prometheus::BuildCounter()
              .Name("bulwark_outlier_unejections_total")
              .Help("Outlier ejections ended before their time (reason: active_health_check)")
              .Register(registry_)),
      ejected_endpoints_(prometheus::BuildGauge()
                             .Name("bulwark_outlier_ejected_endpoints")
                             .Help("Hosts currently ejected by outlier detection")
                             .Register(registry_)
                             .Add({{"upstream", upstream_}})),
      health_checks_(prometheus::BuildCounter()
                         .Name("bulwark_health_checks_total")
                         .Help("Active health checks by result")
                         .Register(registry_)),
      tls_(registry_),
      endpoints_(prometheus::BuildGauge()
                     .Name("bulwark_upstream_endpoints")
                     .Help("Endpoints per upstream")
                     .Register(registry_)) {}

void UpstreamStats::overflow(OverflowLimit limit) {
  overflow_.Add({{"upstream", upstream_}, {"limit", std::string(overflowLimitLabel(limit))}})
      .Increment();
}

void UpstreamStats::breakerState(policies::BreakerState state) {
  constexpr std::array<policies::BreakerState, 3> kStates = {policies::BreakerState::Closed,
                                                             policies::BreakerState::Open,
                                                             policies::BreakerState::HalfOpen};
  for (auto s : kStates) {
    breaker_state_
        .Add({{"upstream", upstream_}, {"state", std::string(policies::breakerStateLabel(s))}})
        .Set(s == state ? 1 : 0);
  }
}

void UpstreamStats::breakerTransition(policies::BreakerState from, policies::BreakerState to) {
  breaker_transitions_
      .Add({{"upstream", upstream_},
            {"from", std::string(policies::breakerStateLabel(from))},
            {"to", std::string(policies::breakerStateLabel(to))}})
      .Increment();
  breakerState(to);
}

void UpstreamStats::hostBreakerTransition(policies::BreakerState from, policies::BreakerState to) {
  breaker_transitions_
      .Add({{"upstream", upstream_},
            {"from", std::string(policies::breakerStateLabel(from))},
            {"to", std::string(policies::breakerStateLabel(to))}})
      .Increment();
}

void UpstreamStats::hostBreakerStates(size_t closed, size_t open, size_t half_open) {
  auto set = [&](policies::BreakerState s, size_t n) {
    breaker_hosts_
        .Add({{"upstream", upstream_}, {"state", std::string(policies::breakerStateLabel(s))}})
        .Set(static_cast<double>(n));
  };
  set(policies::BreakerState::Closed, closed);
  set(policies::BreakerState::Open, open);
  set(policies::BreakerState::HalfOpen, half_open);
}

void UpstreamStats::breakerRejected() { breaker_rejected_.Increment(); }

void UpstreamStats::dryRun(std::string_view policy, std::string_view decision) {
  // Rare (a dry-run refusal): the lookup per call is fine.
  prometheus::BuildCounter()
      .Name(stats::kDryRunDecisionsName)
      .Help(stats::kDryRunDecisionsHelp)
      .Register(registry_)
      .Add({{"upstream", upstream_},
            {"policy", std::string(policy)},
            {"decision", std::string(decision)}})
      .Increment();
}

void UpstreamStats::connectFailure() { connect_failures_.Increment(); }

void UpstreamStats::ejection(policies::EjectionReason reason) {
  ejections_
      .Add(
          {{"upstream", upstream_}, {"reason", std::string(policies::ejectionReasonLabel(reason))}})
      .Increment();
}

void UpstreamStats::unejection(std::string_view reason) {
  unejections_.Add({{"upstream", upstream_}, {"reason", std::string(reason)}}).Increment();
}

void UpstreamStats::ejectedEndpoints(size_t count) {
  ejected_endpoints_.Set(static_cast<double>(count));
}

void UpstreamStats::tlsHandshake(std::string_view result,
                                 std::chrono::steady_clock::duration duration, bool resumed) {
  tls_.record("upstream", upstream_, result, duration, resumed);
}

void UpstreamStats::healthCheck(std::string_view result) {
  health_checks_.Add({{"upstream", upstream_}, {"result", std::string(result)}}).Increment();
}

void UpstreamStats::endpoints(size_t healthy, size_t unhealthy, size_t ejected, size_t draining,
                              size_t circuit_open) {
  endpoints_.Add({{"upstream", upstream_}, {"health", "healthy"}})
      .Set(static_cast<double>(healthy));
  endpoints_.Add({{"upstream", upstream_}, {"health", "unhealthy"}})
      .Set(static_cast<double>(unhealthy));
  endpoints_.Add({{"upstream", upstream_}, {"health", "ejected"}})
      .Set(static_cast<double>(ejected));
  endpoints_.Add({{"upstream", upstream_}, {"health", "draining"}})
      .Set(static_cast<double>(draining));
  endpoints_.Add({{"upstream", upstream_}, {"health", "circuit_open"}})
      .Set(static_cast<double>(circuit_open));
}

}  // namespace bulwark::upstream
