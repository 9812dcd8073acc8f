#include "policies/lb/load_balancer.h"

#include <string>
#include <unordered_set>

namespace bulwark::policies::lb {

Status LbFactory::validate(const LbConfig& config) const {
  if (config.panic_threshold_percent > 100) {
    return Status::error("loadBalancer.panicThresholdPercent: must be 0..100, got " +
                         std::to_string(config.panic_threshold_percent));
  }
  return Status::ok();
}

Status LbFactory::validateHosts(const LbHostSet& /*hosts*/, const LbConfig& /*config*/) const {
  return Status::ok();
}

Result<LoadBalancerConstSharedPtr> LbFactory::create(LbHostSetConstSharedPtr hosts,
                                                     const LbConfig& config) const {
  if (hosts == nullptr) {
    return Status::error(std::string(name()) + ": null host set");
  }
  if (Status s = validate(config); !s) {
    return s;
  }
  if (Status s = validateHostSet(*hosts); !s) {
    return s;
  }
  if (Status s = validateHosts(*hosts, config); !s) {
    return s;
  }
  return build(std::move(hosts), config);
}

Status LbRegistry::add(LbFactoryPtr factory) {
  if (factory == nullptr) {
    return Status::error("load balancer registry: null factory");
  }
  if (find(factory->name()) != nullptr) {
    return Status::error("load balancer registry: duplicate name " + std::string(factory->name()));
  }
  factories_.push_back(std::move(factory));
  return Status::ok();
}

const LbFactory* LbRegistry::find(std::string_view name) const {
  for (const auto& factory : factories_) {
    if (factory->name() == name) {
      return factory.get();
    }
  }
  return nullptr;
}

std::vector<std::string_view> LbRegistry::names() const {
  std::vector<std::string_view> out;
  out.reserve(factories_.size());
  for (const auto& factory : factories_) {
    out.push_back(factory->name());
  }
  return out;
}

Status validateHostSet(const LbHostSet& hosts) {
  for (size_t i = 0; i < hosts.size(); ++i) {
    if (hosts[i].state == nullptr) {
      return Status::error("hosts[" + std::to_string(i) + "] (" + hosts[i].name +
                           "): missing live state");
    }
    if (hosts[i].weight == 0) {
      return Status::error("hosts[" + std::to_string(i) + "] (" + hosts[i].name +
                           ").weight: must be >= 1");
    }
  }
  return Status::ok();
}

Status requireUniqueNames(const LbHostSet& hosts, std::string_view algorithm) {
  std::unordered_set<std::string_view> seen;
  seen.reserve(hosts.size());
  for (const auto& host : hosts) {
    if (!seen.insert(host.name).second) {
      return Status::error(std::string(algorithm) + ": duplicate host name " + host.name);
    }
  }
  return Status::ok();
}

}  // namespace bulwark::policies::lb
