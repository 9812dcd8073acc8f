#pragma once

// A 64-bit hash that is identical on every run, build and machine. Consistent hashing needs
// that: a ring or Maglev table rebuilt after a restart (or by another bulwark replica) must send
// each key to the same host, which std::hash does not promise.

#include <cstdint>
#include <string_view>

namespace bulwark::policies::lb {

/**
 * XXH64 (xxHash, 64-bit variant) of `data`, as Envoy uses for ring hash and Maglev. Output is
 * byte-order independent: the input is read as little-endian words on every platform.
 * Thread: any (pure).
 * @param data bytes to hash; may be empty.
 * @param seed XXH64 seed; Maglev derives a host's offset with seed 0 and its skip with seed 1.
 */
uint64_t xxHash64(std::string_view data, uint64_t seed = 0);

/**
 * The hash of a request's consistent-hashing input (header value, cookie, source IP) that the
 * caller puts in LbContext::hash_key. Thread: any (pure).
 */
inline uint64_t hashKey(std::string_view value) { return xxHash64(value, 0); }

}  // namespace bulwark::policies::lb
