#include "policies/lb/random_lb.h"

#include <utility>

#include "policies/lb/host_filter.h"

namespace bulwark::policies::lb {
namespace {

struct RandomShared {
  RandomShared(LbHostSetConstSharedPtr h, const LbConfig& c)
      : hosts(std::move(h)), config(c), weights(*hosts) {}

  LbHostSetConstSharedPtr hosts;
  LbConfig config;
  CumulativeWeights weights;
};

class RandomPicker : public LbPicker {
public:
  RandomPicker(std::shared_ptr<const RandomShared> shared, Random& random)
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
  std::shared_ptr<const RandomShared> shared_;
  Random& random_;
  HostFilter filter_;
};

class RandomLoadBalancer : public LoadBalancer {
public:
  explicit RandomLoadBalancer(std::shared_ptr<const RandomShared> shared)
      : shared_(std::move(shared)) {}

  LbPickerPtr createPicker(Random& random) const override {
    return std::make_unique<RandomPicker>(shared_, random);
  }

  const LbHostSet& hosts() const override { return *shared_->hosts; }

private:
  std::shared_ptr<const RandomShared> shared_;
};

class RandomFactory : public LbFactory {
public:
  std::string_view name() const override { return kRandomName; }

protected:
  LoadBalancerConstSharedPtr build(LbHostSetConstSharedPtr hosts,
                                   const LbConfig& config) const override {
    return std::make_shared<RandomLoadBalancer>(
        std::make_shared<const RandomShared>(std::move(hosts), config));
  }
};

}  // namespace

LbFactoryPtr makeRandomFactory() { return std::make_unique<RandomFactory>(); }

}  // namespace bulwark::policies::lb
