#pragma once

// The eligibility rules of load_balancer.h (availability, panic mode, skipping attempted hosts),
// computed once per pick so that every algorithm applies them the same way.

#include <cstdint>
#include <vector>

#include "policies/lb/lb_host.h"
#include "policies/lb/load_balancer.h"
#include "policies/random.h"

namespace bulwark::policies::lb {

/**
 * Per-pick snapshot of which hosts may be chosen. The live flags are read once per pick, so a
 * pick sees one consistent view even while health checks flip them concurrently.
 * Thread: owning worker (scratch buffers are reused across picks).
 */
class HostFilter {
public:
  explicit HostFilter(uint32_t panic_threshold_percent)
      : panic_threshold_percent_(panic_threshold_percent) {}

  /** Recomputes the allowed set for one pick. */
  void compute(const LbHostSet& hosts, const LbContext& ctx);

  /** @return true when every host is allowed (the fast path: no mask consulted). */
  bool allowsAll() const { return allows_all_; }

  /** @return true when host i may be chosen by this pick. */
  bool allowed(uint32_t i) const { return allows_all_ || mask_[i] != 0; }

  /** @return indices of allowed hosts in ascending order; valid only when !allowsAll(). */
  const std::vector<uint32_t>& allowedIndices() const { return allowed_; }

  /** @return the number of allowed hosts (0 only for an empty snapshot). */
  uint32_t allowedCount() const { return allowed_count_; }

  /** @return true when the last pick ran in panic mode (all hosts treated as available). */
  bool panic() const { return panic_; }

private:
  uint32_t panic_threshold_percent_;
  bool allows_all_ = true;
  bool panic_ = false;
  uint32_t allowed_count_ = 0;
  std::vector<uint8_t> mask_;
  std::vector<uint32_t> allowed_;
};

/**
 * Weighted sampling over a snapshot: O(log n) by binary search over cumulative weights when
 * every host is allowed, O(allowed) otherwise.
 * Thread: any (immutable after construction).
 */
class CumulativeWeights {
public:
  explicit CumulativeWeights(const LbHostSet& hosts);

  /**
   * @return a host drawn with probability weight / (sum of allowed weights).
   * Requires filter.allowedCount() > 0.
   */
  uint32_t sample(const LbHostSet& hosts, const HostFilter& filter, Random& random) const;

  /**
   * Draws min(count, allowed) DISTINCT allowed hosts, each draw weighted among the hosts not yet
   * drawn (weighted sampling without replacement), in draw order. Distinct candidates matter for
   * P2C: with replacement, a slow host among 3 would still win 1/9 of the picks by being drawn
   * twice (tower's p2c samples distinct indices too). Cost O(count² + count · log hosts), or
   * O(count · allowed) while some are excluded.
   * @param out replaced with the drawn indices; `scratch` is working space. Both belong to the
   *        calling picker, so their capacity is reused and this object stays shareable.
   */
  void sampleDistinct(const LbHostSet& hosts, const HostFilter& filter, Random& random,
                      uint32_t count, std::vector<uint32_t>& out,
                      std::vector<uint32_t>& scratch) const;

private:
  uint32_t sampleExcluding(const LbHostSet& hosts, const HostFilter& filter, Random& random,
                           const std::vector<uint32_t>& sorted_excluded) const;

  std::vector<uint64_t> cumulative_;  // cumulative_[i] = weight[0] + ... + weight[i]
};

}  // namespace bulwark::policies::lb
