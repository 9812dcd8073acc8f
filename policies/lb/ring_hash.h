#pragma once

#include <cstdint>
#include <string_view>

#include "policies/lb/load_balancer.h"

namespace bulwark::policies::lb {

inline constexpr std::string_view kRingHashName = "RING_HASH";

/** Ketama's points per unit of weight; also the floor once the ring is large enough. */
inline constexpr uint64_t kRingPointsPerWeight = 160;

/**
 * RING_HASH: Ketama-style consistent hashing. Host i owns weight_i × k points at
 * xxHash64("<name>_<j>"), j = 0 .. weight_i·k − 1; a key goes to the first point at or after
 * hashKey() on the ring (wrapping). With no hash key a pick uses a random key.
 *
 * Points per unit of weight: k = max(160, bit_ceil(ceil(min_ring_size / total_weight))), so the
 * ring has at least min_ring_size points and k depends only on which power of two the ratio
 * falls under. A host's points depend on its own name, weight and k, so adding a host moves
 * only the keys the new host takes (~1/(N+1)) as long as k does not change. NOTE: k halves
 * when total weight crosses a power-of-two fraction of min_ring_size (with the default 1024:
 * 2, 4 and 8 weight units; from 8 on it is always 160); such a change moves more keys once.
 * Envoy instead rescales every host on every change, which moves extra keys on every change.
 * If total_weight × k exceeds max_ring_size, points are scaled down proportionally (at least one
 * per host), trading evenness for memory.
 *
 * Unavailable or excluded hosts: the lookup walks clockwise to the next point of an allowed
 * host, so a failed host's keys spread over its ring neighbours and return when it recovers.
 * The ring is built once per snapshot and shared by all workers (16 bytes per point).
 */
LbFactoryPtr makeRingHashFactory();

}  // namespace bulwark::policies::lb
