#pragma once

#include "policies/lb/load_balancer.h"

namespace bulwark::policies::lb {

/**
 * Registers every built-in algorithm: ROUND_ROBIN, LEAST_REQUEST, RANDOM, RING_HASH, MAGLEV,
 * PEAK_EWMA. The one list of built-ins (no static-initialiser registration).
 * Thread: main, before workers start. Call once per registry.
 */
void registerBuiltinLoadBalancers(LbRegistry& registry);

}  // namespace bulwark::policies::lb
