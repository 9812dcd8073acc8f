#include "proxy/config/feature_gate.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "proxy/config/parser.h"
#include "tests/unit/proxy/config/test_util.h"

namespace bulwark::config {
namespace {

using test::formatted;

struct GateCase {
  Feature feature;
  std::string upstream_extra;  // appended to the upstream's mapping
  std::string route_extra;     // appended to the route's mapping
  std::string path;            // where the gate error must point
};

std::string configWith(const GateCase& c) {
  return R"(apiVersion: bulwark.dev/v1alpha1
kind: ProxyConfig
listeners:
- {name: main, address: 127.0.0.1:0}
upstreams:
- name: u
  endpoints:
    static: [{address: 127.0.0.1:8081}]
)" + c.upstream_extra +
         R"(routes:
- name: r
  upstream: u
)" + c.route_extra;
}

std::vector<GateCase> gateCases() {
  return {
      {Feature::Retries, "", "  retries: {attempts: 2}\n", "routes[0].retries.attempts"},
      {Feature::Hedging, "", "  hedging: {delay: 10ms}\n", "routes[0].hedging"},
      {Feature::Idempotency, "", "  idempotency: {}\n", "routes[0].idempotency"},
      {Feature::Bulkhead, "", "  bulkhead: {maxConcurrentRequests: 1}\n", "routes[0].bulkhead"},
      {Feature::LoadShedding, "", "  loadShedding: {}\n", "routes[0].loadShedding"},
      {Feature::RateLimit, "", "  rateLimit: {requestsPerSecond: 1}\n", "routes[0].rateLimit"},
      {Feature::Fallback, "", "  fallback: {on: [shed]}\n", "routes[0].fallback"},
      {Feature::CircuitBreaker, "  circuitBreaker: {}\n", "", "upstreams[0].circuitBreaker"},
      {Feature::OutlierDetection, "  outlierDetection: {}\n", "", "upstreams[0].outlierDetection"},
      {Feature::HealthCheck, "  healthCheck: {tcp: {}}\n", "", "upstreams[0].healthCheck"},
      {Feature::DnsDiscovery, "    dns: {name: u.local, port: 80}\n", "",
       "upstreams[0].endpoints.dns"},
      {Feature::AdvancedBalancing, "  loadBalancer: {simple: PEAK_EWMA}\n", "",
       "upstreams[0].loadBalancer.simple"},
      {Feature::PerHostCircuitBreaker, "  circuitBreaker: {perHost: true}\n", "",
       "upstreams[0].circuitBreaker.perHost"},
  };
}

// Every feature has one row in the table and one case here.
TEST(FeatureGateTest, TableCoversEveryFeature) {
  EXPECT_EQ(featureTable().size(), gateCases().size());
  for (const GateCase& c : gateCases()) {
    auto it = std::find_if(featureTable().begin(), featureTable().end(),
                           [&](const FeatureInfo& f) { return f.feature == c.feature; });
    EXPECT_NE(it, featureTable().end());
  }
}

// A block that is present but not implemented is one BW0501 error at its path; once the
// table marks it implemented the same file loads.
TEST(FeatureGateTest, EachGatedBlockIsReportedAtItsPath) {
  for (const GateCase& c : gateCases()) {
    std::string yaml = configWith(c);
    if (c.feature == Feature::DnsDiscovery) {
      // dns replaces static endpoints (they cannot be combined).
      yaml.replace(yaml.find("    static: [{address: 127.0.0.1:8081}]\n"),
                   std::string("    static: [{address: 127.0.0.1:8081}]\n").size(), "");
    }
    LoadResult result = loadConfigString(yaml, "g.yaml");
    SCOPED_TRACE(yaml);
    if (isImplemented(c.feature)) {
      EXPECT_TRUE(result.ok()) << ::testing::PrintToString(formatted(result));
      continue;
    }
    ASSERT_EQ(result.diagnostics.size(), 1u) << ::testing::PrintToString(formatted(result));
    const ConfigDiagnostic& d = result.diagnostics[0];
    EXPECT_EQ(d.code, codes::kNotImplemented);
    EXPECT_EQ(d.field_path, c.path);
    EXPECT_GT(d.line, 0);
    EXPECT_THAT(d.message, ::testing::HasSubstr("not implemented yet in this build (issue #"));
    // Without the gate the same file is valid: the gate is the only reason it fails.
    LoadResult ungated = test::loadUngated(yaml);
    EXPECT_TRUE(ungated.ok()) << ::testing::PrintToString(formatted(ungated));
  }
}

// One attempt, and the three basic balancers, are what this build enforces.
TEST(FeatureGateTest, AllowsSingleAttemptAndBasicBalancers) {
  for (const char* lb : {"ROUND_ROBIN", "LEAST_REQUEST", "RANDOM"}) {
    GateCase c{Feature::Retries, std::string("  loadBalancer: {simple: ") + lb + "}\n",
               "  retries: {attempts: 1, retryOn: [reset]}\n", ""};
    LoadResult result = loadConfigString(configWith(c), "g.yaml");
    EXPECT_TRUE(result.ok()) << lb << ::testing::PrintToString(formatted(result));
  }
}

// The idempotency block is enforced (filters/idempotency): in defaults it is inherited by every
// route without its own block, and a route's block replaces it.
TEST(FeatureGateTest, IdempotencyInDefaultsLoadsAndIsInherited) {
  const std::string yaml = R"(apiVersion: bulwark.dev/v1alpha1
kind: ProxyConfig
defaults:
  idempotency: {onMissing: noRetry}
upstreams:
- {name: u, endpoints: {static: [{address: 127.0.0.1:1}]}}
routes:
- {name: a, upstream: u}
- {name: b, upstream: u}
- {name: c, upstream: u, idempotency: {onMissing: reject, dedupe: {enabled: true, maxBodyBytes: 64Ki}}}
)";
  LoadResult result = loadConfigString(yaml, "d.yaml");
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(formatted(result));
  const auto& routes = result.config->routes;
  ASSERT_EQ(routes.size(), 3u);
  ASSERT_TRUE(routes[0].policies.idempotency);
  EXPECT_EQ(routes[0].policies.idempotency->on_missing, "noRetry");
  EXPECT_FALSE(routes[0].policies.idempotency->dedupe_enabled);
  ASSERT_TRUE(routes[1].policies.idempotency);
  ASSERT_TRUE(routes[2].policies.idempotency);
  EXPECT_EQ(routes[2].policies.idempotency->on_missing, "reject");
  EXPECT_TRUE(routes[2].policies.idempotency->dedupe_enabled);
  EXPECT_EQ(routes[2].policies.idempotency->dedupe_max_body_bytes, 64u * 1024u);
}

}  // namespace
}  // namespace bulwark::config
