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

/**
 * `word` with its ASCII capitals A-Z made lower case, every other byte as it was. Exact per byte:
 * the additions below stay inside each byte (7-bit values plus at most 0x3f).
 */
constexpr uint64_t asciiLower(uint64_t word) {
  const uint64_t low7 = word & ~kHighBits;
  const uint64_t above_z = low7 + kEachByte * (0x7f - 'Z');  // high bit: byte > 'Z'
  const uint64_t from_a = low7 + kEachByte * (0x80 - 'A');   // high bit: byte >= 'A'
  const uint64_t capital = (from_a ^ above_z) & ~word & kHighBits;
  return word | (capital >> 2);  // 0x80 >> 2 is the case bit 0x20
}

/** Eight bytes from `p`, unaligned. */
inline uint64_t load(const char* p) {
  uint64_t word;
  std::memcpy(&word, p, sizeof(word));
  return word;
}

/** Stores eight bytes at `p`, unaligned. */
inline void store(char* p, uint64_t word) { std::memcpy(p, &word, sizeof(word)); }

}  // namespace bulwark::swar
