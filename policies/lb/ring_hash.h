#pragma once

#include <string_view>

#include "policies/lb/load_balancer.h"

namespace bulwark::policies::lb {

inline constexpr std::string_view kRingHashName = "RING_HASH";

/**
 * RING_HASH: Ketama-style consistent hashing. Host i owns p_i points at xxHash64("<name>_<j>"),
 * j = 0 .. p_i − 1; a key goes to the first point at or after its hashKey() on the ring
 * (wrapping). With no hash key a pick uses a random key.
 *
 * Points: p_i = ceil(min_ring_size × weight_i / max_weight), i.e. the heaviest host owns
 * min_ring_size points and the ring has at least that many. A host's points depend only on its
 * own name and weight relative to the heaviest, not on how many hosts there are, so adding or
 * removing a host moves only the keys that host takes or gives back (~1/(N+1)). Envoy instead
 * spreads min_ring_size over all hosts, which changes every host's points on every host-set
 * change, so keys also move between hosts that stayed.
 * The price is memory: 16 bytes × min_ring_size × N for equal weights (1.6 MB for 100 hosts),
 * shared by all workers. If the total exceeds max_ring_size, every host's points are scaled
 * down proportionally (at least one each), trading evenness and stability for memory.
 *
 * Unavailable or excluded hosts: the lookup walks clockwise to the next point of an allowed
 * host, so a failed host's keys spread over its ring neighbours and return when it recovers.
 */
LbFactoryPtr makeRingHashFactory();

}  // namespace bulwark::policies::lb
