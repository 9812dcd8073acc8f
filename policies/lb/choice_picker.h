#pragma once

#include <memory>
#include <optional>
#include <utility>
#include <vector>

#include "policies/lb/host_filter.h"
#include "policies/lb/load_balancer.h"

namespace bulwark::policies::lb {

/** The host set with its cumulative weights and the config: what weighted pickers read. Immutable.
 */
struct WeightedHosts {
  WeightedHosts(LbHostSetConstSharedPtr h, const LbConfig& c)
      : hosts(std::move(h)), config(c), weights(*hosts) {}

  LbHostSetConstSharedPtr hosts;
  LbConfig config;
  CumulativeWeights weights;
};

/**
 * Power of N choices: filters the hosts (health, ejection, already attempted, panic), draws
 * `choice_count` distinct ones by weight and keeps the best by `Scorer::better`, earlier draws
 * winning ties (they were weighted). LEAST_REQUEST and PEAK_EWMA differ only in the scorer.
 * Thread: one worker (the picker is per worker; the shared part is immutable).
 */
template <typename Scorer>
class ChoicePicker : public LbPicker {
public:
  ChoicePicker(std::shared_ptr<const WeightedHosts> shared, Random& random)
      : shared_(std::move(shared)),
        random_(random),
        filter_(shared_->config.panic_threshold_percent) {}

  std::optional<uint32_t> pick(const LbContext& ctx) override {
    const LbHostSet& hosts = *shared_->hosts;
    filter_.compute(hosts, ctx);
    if (filter_.allowedCount() == 0) {
      return std::nullopt;
    }
    shared_->weights.sampleDistinct(hosts, filter_, random_, shared_->config.choice_count,
                                    candidates_, scratch_);
    uint32_t best = candidates_.front();
    for (size_t c = 1; c < candidates_.size(); ++c) {
      if (Scorer::better(shared_->config, hosts[candidates_[c]], hosts[best], ctx.now)) {
        best = candidates_[c];
      }
    }
    return best;
  }

private:
  std::shared_ptr<const WeightedHosts> shared_;
  Random& random_;
  HostFilter filter_;
  std::vector<uint32_t> candidates_;
  std::vector<uint32_t> scratch_;
};

}  // namespace bulwark::policies::lb
