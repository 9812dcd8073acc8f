#pragma once

// Shared fixtures for load-balancer tests: host sets with live state, pickers built through the
// real registry, and pick counting.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "policies/lb/load_balancer.h"
#include "policies/lb/register_builtin_lb.h"
#include "policies/random.h"

namespace bulwark::policies::lb::lbtest {

/** A snapshot plus direct handles on each host's live state. Thread: test thread. */
struct TestHosts {
  LbHostSetConstSharedPtr set;
  std::vector<LbHostStateSharedPtr> states;

  LbHostState& state(size_t i) { return *states[i]; }
};

/** Hosts named "10.0.0.<i>:8080" (i from `first`) with the given weights. */
inline TestHosts makeHosts(const std::vector<uint32_t>& weights, uint32_t first = 0) {
  TestHosts out;
  auto set = std::make_shared<LbHostSet>();
  for (size_t i = 0; i < weights.size(); ++i) {
    auto state = std::make_shared<LbHostState>();
    out.states.push_back(state);
    set->push_back({"10.0.0." + std::to_string(first + i) + ":8080", weights[i], state});
  }
  out.set = set;
  return out;
}

/** `n` hosts of weight 1. */
inline TestHosts makeEqualHosts(size_t n, uint32_t first = 0) {
  return makeHosts(std::vector<uint32_t>(n, 1), first);
}

/** The registry every test uses, filled by the production registration list. */
inline const LbRegistry& builtinRegistry() {
  static const LbRegistry registry = [] {
    LbRegistry r;
    registerBuiltinLoadBalancers(r);
    return r;
  }();
  return registry;
}

/** Builds the balancer `name` for `hosts` through the registry; fails the test on error. */
inline LoadBalancerConstSharedPtr makeBalancer(std::string_view name, const TestHosts& hosts,
                                               const LbConfig& config = {}) {
  const LbFactory* factory = builtinRegistry().find(name);
  EXPECT_NE(nullptr, factory) << name;
  if (factory == nullptr) {
    return nullptr;
  }
  auto lb = factory->create(hosts.set, config);
  EXPECT_TRUE(lb.isOk()) << lb.error();
  return lb.isOk() ? *lb : nullptr;
}

/** Counts picks per host index over `picks` calls with the same context. */
inline std::vector<uint32_t> countPicks(LbPicker& picker, size_t host_count, size_t picks,
                                        const LbContext& ctx = {}) {
  std::vector<uint32_t> counts(host_count, 0);
  for (size_t i = 0; i < picks; ++i) {
    auto host = picker.pick(ctx);
    EXPECT_TRUE(host.has_value());
    if (host) {
      ++counts.at(*host);
    }
  }
  return counts;
}

}  // namespace bulwark::policies::lb::lbtest
