#pragma once

#include <memory>
#include <vector>

#include "proxy/config/spec.h"
#include "proxy/http/filter.h"
#include "proxy/http/path.h"
#include "proxy/network/tls.h"
#include "proxy/router/route.h"
#include "proxy/stats/stats.h"
#include "proxy/upstream/upstream.h"

namespace bulwark::router {

/** A route bound to its live upstream, metric handles and filter chain. Immutable. Thread: any. */
struct RouteEntry {
  RouteConstSharedPtr route;
  upstream::UpstreamSharedPtr upstream;
  std::shared_ptr<stats::RouteStats> stats;
  std::vector<http::FilterFactoryCb> filters;  // this route's chain, in order
};

/** A listener's routes in match order (first match wins). Immutable. Thread: any. */
struct ListenerConfig {
  config::ListenerSpec spec;
  network::TlsContextSharedPtr tls;  // set when the listener terminates TLS
  http::PathOptions path;            // compiled from spec.http
  std::vector<RouteEntry> routes;
  const RouteEntry* match(const http::RequestHeaders& headers) const {
    for (const auto& entry : routes) {
      if (entry.route->matches(headers)) {
        return &entry;
      }
    }
    return nullptr;
  }
};

}  // namespace bulwark::router
