#pragma once

// Byte tests a word at a time ("SWAR"): eight bytes per step where a loop would test one, for
// scans that run over every request (header values, access-log strings). Thread: any.

#include <cstdint>
#include <cstring>

namespace bulwark::swar {

constexpr uint64_t kEachByte = 0x0101010101010101ULL;
constexpr uint64_t kHighBits = 0x8080808080808080ULL;

/**
 * High bit set in some byte when a byte of `word` is below `bound` (<= 0x80). The borrow can
 * mark a byte above one that really is below, never when none is: exact for "any byte".
 */
constexpr uint64_t bytesBelow(uint64_t word, uint64_t bound) {
  return (word - kEachByte * bound) & ~word & kHighBits;
}

/** Nonzero when some byte of `word` is `c` (same caveat: exact for "any byte"). */
constexpr uint64_t bytesEqual(uint64_t word, unsigned char c) {
  return bytesBelow(word ^ (kEachByte * c), 1);
}

/** Eight bytes from `p`, unaligned. */
inline uint64_t load(const char* p) {
  uint64_t word;
  std::memcpy(&word, p, sizeof(word));
  return word;
}

}  // namespace bulwark::swar
