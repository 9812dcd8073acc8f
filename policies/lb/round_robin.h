#pragma once

#include <string_view>

#include "policies/lb/load_balancer.h"

namespace bulwark::policies::lb {

inline constexpr std::string_view kRoundRobinName = "ROUND_ROBIN";

/**
 * ROUND_ROBIN: smooth weighted round robin (nginx `ngx_http_upstream_get_peer`). Each pick adds
 * every allowed host's weight to its running score and takes the highest, then subtracts the
 * total from the winner. Over any W = sum(weights) consecutive picks with a stable host set,
 * host i is chosen exactly weight_i times, and picks of a heavy host are spread out instead of
 * bunched (weights {5,1,1} give a a b a c a a, not a a a a a b c).
 *
 * Picker state (scores) is per worker, so with N workers the global sequence is N interleaved
 * sequences, each exact. Each worker breaks ties starting at a random host so that workers
 * (and proxies) started together do not all send their first request to host 0.
 * Cost: O(hosts) per pick.
 */
LbFactoryPtr makeRoundRobinFactory();

}  // namespace bulwark::policies::lb
