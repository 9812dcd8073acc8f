#include "policies/lb/least_request.h"

#include <string>
#include <utility>
#include <vector>

#include "policies/lb/host_filter.h"

namespace bulwark::policies::lb {
namespace {

constexpr uint32_t kMaxChoiceCount = 100;

struct LeastRequestShared {
  LeastRequestShared(LbHostSetConstSharedPtr h, const LbConfig& c)
      : hosts(std::move(h)), config(c), weights(*hosts) {}

  LbHostSetConstSharedPtr hosts;
  LbConfig config;
  CumulativeWeights weights;
};

class LeastRequestPicker : public LbPicker {
public:
  LeastRequestPicker(std::shared_ptr<const LeastRequestShared> shared, Random& random)
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
    uint64_t best_active = hosts[best].state->active_requests.load(std::memory_order_relaxed);
    for (size_t c = 1; c < candidates_.size(); ++c) {
      const uint32_t candidate = candidates_[c];
      const uint64_t active =
          hosts[candidate].state->active_requests.load(std::memory_order_relaxed);
      // active / weight < best_active / best_weight, without division (128-bit: both factors
      // can use all 32 bits). Ties keep the earlier draw, which was weighted.
      if (static_cast<unsigned __int128>(active) * hosts[best].weight <
          static_cast<unsigned __int128>(best_active) * hosts[candidate].weight) {
        best = candidate;
        best_active = active;
      }
    }
    return best;
  }

private:
  std::shared_ptr<const LeastRequestShared> shared_;
  Random& random_;
  HostFilter filter_;
  std::vector<uint32_t> candidates_;
  std::vector<uint32_t> scratch_;
};

class LeastRequestLoadBalancer : public LoadBalancer {
public:
  explicit LeastRequestLoadBalancer(std::shared_ptr<const LeastRequestShared> shared)
      : shared_(std::move(shared)) {}

  LbPickerPtr createPicker(Random& random) const override {
    return std::make_unique<LeastRequestPicker>(shared_, random);
  }

  const LbHostSet& hosts() const override { return *shared_->hosts; }

private:
  std::shared_ptr<const LeastRequestShared> shared_;
};

class LeastRequestFactory : public LbFactory {
public:
  std::string_view name() const override { return kLeastRequestName; }

  Status validate(const LbConfig& config) const override {
    if (Status s = LbFactory::validate(config); !s) {
      return s;
    }
    return validateChoiceCount(config);
  }

protected:
  LoadBalancerConstSharedPtr build(LbHostSetConstSharedPtr hosts,
                                   const LbConfig& config) const override {
    return std::make_shared<LeastRequestLoadBalancer>(
        std::make_shared<const LeastRequestShared>(std::move(hosts), config));
  }
};

}  // namespace

Status validateChoiceCount(const LbConfig& config) {
  if (config.choice_count < 1 || config.choice_count > kMaxChoiceCount) {
    return Status::error("loadBalancer.choiceCount: must be 1.." + std::to_string(kMaxChoiceCount) +
                         ", got " + std::to_string(config.choice_count));
  }
  return Status::ok();
}

LbFactoryPtr makeLeastRequestFactory() { return std::make_unique<LeastRequestFactory>(); }

}  // namespace bulwark::policies::lb
