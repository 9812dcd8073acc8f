#pragma once

// Exponential backoff with AWS-style jitter ("Exponential Backoff And Jitter", AWS
// Architecture Blog): with cap = maxInterval and exp = min(cap, base * 2^(n-1)) for retry n,
//   full:  U[0, exp)
//   equal: exp/2 + U[0, exp/2)
//   none:  exp
// Full jitter spreads synchronised clients best and is the default (as Envoy's full jitter).

#include <cstdint>

#include "policies/random.h"
#include "policies/time.h"

namespace bulwark::policies {

enum class Jitter : uint8_t { Full, Equal, None };

/**
 * Delay before the n-th retry. Stateless apart from its options; the random source is passed
 * per call so one Backoff can be shared by all workers.
 * Thread: any (immutable after construction).
 */
class Backoff {
public:
  struct Options {
    Duration base_interval = std::chrono::milliseconds(25);
    Duration max_interval = std::chrono::milliseconds(250);  // clamped to >= base_interval
    Jitter jitter = Jitter::Full;
  };

  explicit Backoff(const Options& options);

  /**
   * @param retry_number 1 for the first retry (the second attempt), 2 for the next, ...;
   *        0 is treated as 1.
   * @param random draws at most one value; none for Jitter::None.
   * @return the delay, always in [0, maxInterval].
   */
  Duration next(uint32_t retry_number, Random& random) const;

  /** @return the un-jittered exponential ceiling for retry n: min(max, base * 2^(n-1)). */
  Duration ceiling(uint32_t retry_number) const;

  const Options& options() const { return options_; }

private:
  Options options_;
};

}  // namespace bulwark::policies
