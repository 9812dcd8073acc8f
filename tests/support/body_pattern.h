#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace bulwark::testing {

/**
 * The deterministic byte stream used for generated bodies (large downloads from FakeUpstream,
 * streaming uploads from the clients). Byte i depends only on i, with a period of
 * kBodyPatternPeriod (a prime, so a dropped, duplicated or reordered block shows up as a
 * mismatch), which lets a receiver verify gigabytes without ever storing them.
 * Thread: any (pure functions over constant data).
 */
inline constexpr size_t kBodyPatternPeriod = 251;

/** Largest span bodyPatternAt() can return in one call. */
inline constexpr size_t kBodyPatternMaxSpan = 64 * 1024;

/**
 * A pointer to static storage holding pattern bytes [offset, offset + kBodyPatternMaxSpan).
 * Zero-copy producers (evbuffer_add_reference) hand out slices of it.
 */
const char* bodyPatternAt(uint64_t offset);

/** Copies `len` pattern bytes starting at stream offset `offset` into `dst`. */
void fillBodyPattern(uint64_t offset, char* dst, size_t len);

/** The first `len` pattern bytes as a string (small sizes only; it allocates). */
std::string bodyPattern(size_t len);

/** True when `data` equals the pattern starting at stream offset `offset`. */
bool matchesBodyPattern(uint64_t offset, std::string_view data);

}  // namespace bulwark::testing
