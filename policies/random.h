#pragma once

// Randomness for policy engines comes through this interface so tests can seed or script it
// (tests/support/fixed_random.h). Workers own one SeededRandom each.

#include <cstdint>
#include <random>

namespace bulwark::policies {

/**
 * Source of uniformly distributed 64-bit values.
 * Thread: an instance is not synchronised; give each worker its own.
 */
class Random {
public:
  virtual ~Random() = default;

  /** @return the next uniformly distributed 64-bit value. */
  virtual uint64_t next() = 0;

  /** @return a double uniformly distributed in [0, 1) (53 random bits). */
  double uniform01() { return static_cast<double>(next() >> 11) * 0x1.0p-53; }

  /**
   * @param bound exclusive upper limit; must be > 0.
   * @return a value uniformly distributed in [0, bound) (Lemire's multiply-shift; the bias is
   *         below 2^-64 * bound, irrelevant for jitter and picking).
   */
  uint64_t uniform(uint64_t bound) {
    return static_cast<uint64_t>((static_cast<unsigned __int128>(next()) * bound) >> 64);
  }
};

/**
 * std::mt19937_64 behind the Random interface; the same seed gives the same sequence.
 * Thread: owning worker (not synchronised).
 */
class SeededRandom : public Random {
public:
  explicit SeededRandom(uint64_t seed) : engine_(seed) {}

  uint64_t next() override { return engine_(); }

private:
  std::mt19937_64 engine_;
};

}  // namespace bulwark::policies
