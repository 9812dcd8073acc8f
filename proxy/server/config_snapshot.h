#pragma once

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "proxy/config/spec.h"
#include "proxy/http/filter.h"
#include "proxy/router/route_table.h"
#include "proxy/stats/stats.h"
#include "proxy/upstream/upstream.h"

namespace bulwark::server {

/** A route bound to its live upstream and metric handles. Immutable. */
struct RouteEntry {
  router::RouteConstSharedPtr route;
  upstream::UpstreamSharedPtr upstream;
  std::shared_ptr<stats::RouteStats> stats;
  std::vector<http::FilterFactoryCb> filters;  // this route's chain, in order
};

struct ListenerConfig {
  config::ListenerSpec spec;
  std::vector<RouteEntry> routes;  // match order
  const RouteEntry* match(const http::RequestHeaders& headers) const {
    for (const auto& entry : routes) {
      if (entry.route->matches(headers)) {
        return &entry;
      }
    }
    return nullptr;
  }
};

/**
 * Everything a worker needs to serve with one config version. Built on the main thread,
 * published to workers by shared_ptr; in-flight streams keep their snapshot alive (RCU).
 * Thread: immutable, any.
 */
struct ConfigSnapshot {
  config::ProxyConfigSpec spec;
  std::map<std::string, ListenerConfig> listeners;
  std::map<std::string, upstream::UpstreamSharedPtr> upstreams;
  uint64_t generation = 0;
};
using ConfigSnapshotConstSharedPtr = std::shared_ptr<const ConfigSnapshot>;

}  // namespace bulwark::server
