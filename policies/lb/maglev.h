#pragma once

#include <string_view>

#include "policies/lb/load_balancer.h"

namespace bulwark::policies::lb {

inline constexpr std::string_view kMaglevName = "MAGLEV";

/**
 * MAGLEV: Google's Maglev consistent hashing (Eisenbud et al., NSDI 2016) with Envoy's weighted
 * table build. Each host has a permutation of the M table slots, offset = xxHash64(name, 0) % M
 * and skip = xxHash64(name, 1) % (M − 1) + 1 (M prime, so every skip walks all slots). Hosts
 * take turns claiming their next free slot; a host of weight w claims on the iterations where
 * w × iteration reaches its next target (targets advance by the largest weight), so slot counts
 * are proportional to weight. A key goes to slot hashKey() % M; with no key a pick uses a random
 * slot. Adding a host to N takes ~M/(N+1) slots and disturbs few others (the paper's "minimal
 * disruption" is approximate, unlike a ring's).
 *
 * Unavailable or excluded hosts: the lookup scans forward from the key's slot to the next slot
 * of an allowed host. Table entries are in effect randomly ordered, so a failed host's keys
 * spread over all others in proportion to weight. The table (4 bytes × M) is built once per
 * snapshot on the main thread and shared by all workers.
 */
LbFactoryPtr makeMaglevFactory();

}  // namespace bulwark::policies::lb
