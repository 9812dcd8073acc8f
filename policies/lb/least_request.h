#pragma once

#include <string_view>

#include "policies/lb/load_balancer.h"

namespace bulwark::policies::lb {

inline constexpr std::string_view kLeastRequestName = "LEAST_REQUEST";

/**
 * LEAST_REQUEST: power of `choice_count` choices (Envoy N_CHOICES, Linkerd/Finagle P2C). Each
 * pick draws choice_count distinct allowed hosts (weighted by weight, without replacement; all
 * allowed hosts when there are fewer) and takes the one with the fewest active requests per
 * unit of weight (active / weight; ties go to the first drawn). Unlike Envoy, candidates are
 * distinct (as in tower's p2c), so a slow host never wins just by being drawn twice. Sampling
 * by weight makes an idle upstream follow the weights; normalising by weight makes a loaded one
 * converge to active requests proportional to weight.
 *
 * Active requests are the shared LbHostState counters (all workers' attempts), maintained by
 * onAttemptStart() / onAttemptEnd(). Cost: O(hosts) per pick (the eligibility scan) plus
 * O(choice_count²) for the draws.
 */
LbFactoryPtr makeLeastRequestFactory();

/** Shared check of LbConfig::choice_count for the P2C algorithms. */
Status validateChoiceCount(const LbConfig& config);

}  // namespace bulwark::policies::lb
