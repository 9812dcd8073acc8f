#include "proxy/config/inheritance.h"

namespace bulwark::config {
namespace {

template <typename T>
void inherit(std::optional<T>& route_block, const std::optional<T>& default_block) {
  if (!route_block && default_block) {
    route_block = default_block;
  }
}

}  // namespace

void applyInheritance(ProxyConfigSpec& spec) {
  const PolicyBlocks& d = spec.defaults;
  for (RouteSpec& route : spec.routes) {
    PolicyBlocks& p = route.policies;
    inherit(p.timeouts, d.timeouts);
    inherit(p.retries, d.retries);
    inherit(p.hedging, d.hedging);
    inherit(p.bulkhead, d.bulkhead);
    inherit(p.load_shedding, d.load_shedding);
    inherit(p.rate_limit, d.rate_limit);
    inherit(p.idempotency, d.idempotency);
    inherit(p.fallback, d.fallback);
    if (!p.timeouts) {
      p.timeouts = TimeoutsSpec{};
    }
    if (!p.retries) {
      p.retries = RetriesSpec{};
    }
  }
  for (ListenerSpec& listener : spec.listeners) {
    if (listener.routes.empty()) {
      for (const RouteSpec& route : spec.routes) {
        if (!route.name.empty()) {
          listener.routes.push_back(route.name);
        }
      }
    }
  }
}

}  // namespace bulwark::config
