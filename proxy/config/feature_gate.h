#pragma once

// The one list of policy blocks the schema accepts but the data path does not enforce yet.
// A config that uses one is rejected with the issue that will implement it, instead of loading
// and silently not doing what it says. Enabling a feature is a one-line change of its row in
// feature_gate.cc. Thread: any (constant table, pure functions).

#include <string>
#include <string_view>
#include <vector>

#include "proxy/config/diagnostic.h"
#include "proxy/config/spec.h"

namespace bulwark::config {

enum class Feature {
  Retries,  // retries.attempts > 1
  Hedging,
  Idempotency,
  Bulkhead,
  LoadShedding,
  RateLimit,
  Fallback,
  CircuitBreaker,
  OutlierDetection,
  HealthCheck,
  DnsDiscovery,           // endpoints.dns
  AdvancedBalancing,      // loadBalancer policies other than ROUND_ROBIN, LEAST_REQUEST, RANDOM
  PerHostCircuitBreaker,  // circuitBreaker.perHost: true
};

struct FeatureInfo {
  Feature feature;
  std::string_view name;   // for messages and tests
  std::string_view issue;  // "#6"
  bool implemented;
};

/** Every gated feature, one row each. */
const std::vector<FeatureInfo>& featureTable();
bool isImplemented(Feature feature);

/**
 * One error per present-but-not-implemented block, e.g.
 * `routes[0].bulkhead: not implemented yet in this build (issue #6); remove the block`.
 * Route blocks copied from `defaults` are reported once, at `defaults.<block>`.
 * @param marks field positions from the load (to tell own blocks from inherited ones).
 * @param file the FILE part of each diagnostic.
 */
std::vector<ConfigDiagnostic> checkFeatureGate(const ProxyConfigSpec& spec, const MarkTable& marks,
                                               const std::string& file);

}  // namespace bulwark::config
