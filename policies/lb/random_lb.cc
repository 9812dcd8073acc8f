#include "policies/lb/random_lb.h"

#include <utility>

#include "policies/lb/choice_picker.h"

namespace bulwark::policies::lb {
namespace {

class RandomPicker : public LbPicker {
public:
  RandomPicker(std::shared_ptr<const WeightedHosts> shared, Random& random)
      : shared_(std::move(shared)),
        random_(random),
        filter_(shared_->config.panic_threshold_percent) {}

  std::optional<uint32_t> pick(const LbContext& ctx) override {
    filter_.compute(*shared_->hosts, ctx);
    if (filter_.allowedCount() == 0) {
      return std::nullopt;
    }
    return shared_->weights.sample(*shared_->hosts, filter_, random_);
  }

private:
  std::shared_ptr<const WeightedHosts> shared_;
  Random& random_;
  HostFilter filter_;
};

using RandomLoadBalancer = SharedStateLoadBalancer<RandomPicker, WeightedHosts>;

class RandomFactory : public LbFactory {
public:
  std::string_view name() const override { return kRandomName; }

protected:
  LoadBalancerConstSharedPtr build(LbHostSetConstSharedPtr hosts,
                                   const LbConfig& config) const override {
    return std::make_shared<RandomLoadBalancer>(
        std::make_shared<const WeightedHosts>(std::move(hosts), config));
  }
};

}  // namespace

LbFactoryPtr makeRandomFactory() { return std::make_unique<RandomFactory>(); }

}  // namespace bulwark::policies::lb
