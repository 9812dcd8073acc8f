#include "proxy/config/feature_gate.h"

#include <fmt/format.h>

#include "proxy/config/effective_json.h"

namespace bulwark::config {
namespace {

// Flip `implemented` when the data path enforces the block (and update the golden tests).
const std::vector<FeatureInfo> kFeatures = {
    {Feature::Retries, "retries with attempts > 1", "#5", true},
    {Feature::Hedging, "hedging", "#5", true},
    {Feature::Idempotency, "idempotency", "#5", true},
    {Feature::Bulkhead, "bulkhead", "#6", true},
    {Feature::LoadShedding, "loadShedding", "#6", true},
    {Feature::RateLimit, "rateLimit", "#6", true},
    {Feature::Fallback, "fallback", "#6", true},
    {Feature::CircuitBreaker, "circuitBreaker", "#6", true},
    {Feature::OutlierDetection, "outlierDetection", "#6", true},
    {Feature::HealthCheck, "healthCheck", "#7", true},
    {Feature::DnsDiscovery, "endpoints.dns", "#7", true},
    {Feature::AdvancedBalancing,
     "loadBalancer policies other than ROUND_ROBIN, LEAST_REQUEST, RANDOM", "#7", true},
    {Feature::PerHostCircuitBreaker, "circuitBreaker.perHost", "#6", true},
};

const FeatureInfo& info(Feature feature) {
  for (const FeatureInfo& f : kFeatures) {
    if (f.feature == feature) {
      return f;
    }
  }
  return kFeatures.front();  // unreachable: every enum value has a row (tested)
}

/** Collects gate errors for one config. Thread: the loading thread. */
class Gate {
public:
  Gate(const MarkTable& marks, const std::string& file) : marks_(marks), file_(file) {}

  /** Reports `path` when `feature` is not implemented. */
  void check(Feature feature, const std::string& path, std::string_view what,
             std::string_view hint) {
    const FeatureInfo& f = info(feature);
    if (f.implemented) {
      return;
    }
    const Mark mark = marks_.find(path);
    const std::string prefix = what.empty() ? std::string() : fmt::format("{} is ", what);
    out_.push_back(ConfigDiagnostic{
        file_, mark.line, mark.column, path,
        fmt::format("{}not implemented yet in this build (issue {}); {}", prefix, f.issue, hint),
        false, std::string(codes::kNotImplemented)});
  }

  /** Policy blocks of `defaults` or of one route; `own` tells a route's own block apart. */
  template <typename Own>
  void checkBlocks(const PolicyBlocks& p, const std::string& base, Own own) {
    const std::string remove = "remove the block";
    if (p.retries && p.retries->attempts > 1 && own("retries")) {
      check(Feature::Retries, base + ".retries.attempts", "attempts > 1", "set attempts: 1");
    }
    if (p.hedging && own("hedging")) {
      check(Feature::Hedging, base + ".hedging", "", remove);
    }
    if (p.idempotency && own("idempotency")) {
      check(Feature::Idempotency, base + ".idempotency", "", remove);
    }
    if (p.bulkhead && own("bulkhead")) {
      check(Feature::Bulkhead, base + ".bulkhead", "", remove);
    }
    if (p.load_shedding && own("loadShedding")) {
      check(Feature::LoadShedding, base + ".loadShedding", "", remove);
    }
    if (p.rate_limit && own("rateLimit")) {
      check(Feature::RateLimit, base + ".rateLimit", "", remove);
    }
    if (p.fallback && own("fallback")) {
      check(Feature::Fallback, base + ".fallback", "", remove);
    }
  }

  std::vector<ConfigDiagnostic> take() { return std::move(out_); }

private:
  const MarkTable& marks_;
  const std::string& file_;
  std::vector<ConfigDiagnostic> out_;
};

}  // namespace

const std::vector<FeatureInfo>& featureTable() { return kFeatures; }

bool isImplemented(Feature feature) { return info(feature).implemented; }

std::vector<ConfigDiagnostic> checkFeatureGate(const ProxyConfigSpec& spec, const MarkTable& marks,
                                               const std::string& file) {
  Gate gate(marks, file);
  gate.checkBlocks(spec.defaults, "defaults", [](std::string_view) { return true; });
  for (size_t i = 0; i < spec.routes.size(); ++i) {
    const std::string base = fmt::format("routes[{}]", i);
    gate.checkBlocks(spec.routes[i].policies, base, [&](std::string_view block) {
      return marks.has(fmt::format("{}.{}", base, block));
    });
  }
  const std::string remove = "remove the block";
  for (size_t i = 0; i < spec.upstreams.size(); ++i) {
    const UpstreamSpec& u = spec.upstreams[i];
    const std::string base = fmt::format("upstreams[{}]", i);
    if (u.circuit_breaker) {
      gate.check(Feature::CircuitBreaker, base + ".circuitBreaker", "", remove);
      if (u.circuit_breaker->per_host) {
        gate.check(Feature::PerHostCircuitBreaker, base + ".circuitBreaker.perHost",
                   "perHost: true", "use one breaker per upstream (perHost: false)");
      }
    }
    if (u.outlier_detection) {
      gate.check(Feature::OutlierDetection, base + ".outlierDetection", "", remove);
    }
    if (u.health_check) {
      gate.check(Feature::HealthCheck, base + ".healthCheck", "", remove);
    }
    if (u.dns) {
      gate.check(Feature::DnsDiscovery, base + ".endpoints.dns", "", "use endpoints.static");
    }
    const LbPolicy policy = u.load_balancer.policy;
    if (policy != LbPolicy::RoundRobin && policy != LbPolicy::LeastRequest &&
        policy != LbPolicy::Random) {
      const std::string path = marks.has(base + ".loadBalancer.simple")
                                   ? base + ".loadBalancer.simple"
                                   : base + ".loadBalancer.consistentHash";
      gate.check(Feature::AdvancedBalancing, path, toString(policy),
                 "use ROUND_ROBIN, LEAST_REQUEST or RANDOM");
    }
  }
  return gate.take();
}

}  // namespace bulwark::config
