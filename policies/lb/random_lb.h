#pragma once

#include <string_view>

#include "policies/lb/load_balancer.h"

namespace bulwark::policies::lb {

inline constexpr std::string_view kRandomName = "RANDOM";

/**
 * RANDOM: each pick draws an allowed host with probability weight / (sum of allowed weights),
 * from the worker's RNG. Stateless apart from the RNG, so it needs no coordination between
 * workers and has no synchronised start. Cost: O(hosts) per pick (the eligibility scan).
 */
LbFactoryPtr makeRandomFactory();

}  // namespace bulwark::policies::lb
