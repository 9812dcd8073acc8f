#include "policies/lb/round_robin.h"

#include <utility>
#include <vector>

#include "policies/lb/host_filter.h"

namespace bulwark::policies::lb {
namespace {

class RoundRobinPicker : public LbPicker {
public:
  RoundRobinPicker(LbHostSetConstSharedPtr hosts, uint32_t panic_threshold_percent,
                   uint32_t tie_offset)
      : hosts_(std::move(hosts)),
        filter_(panic_threshold_percent),
        scores_(hosts_->size(), 0),
        tie_offset_(tie_offset) {}

  std::optional<uint32_t> pick(const LbContext& ctx) override {
    const LbHostSet& hosts = *hosts_;
    filter_.compute(hosts, ctx);
    if (filter_.allowedCount() == 0) {
      return std::nullopt;
    }
    const auto n = static_cast<uint32_t>(hosts.size());
    int64_t total = 0;
    uint32_t best = n;
    for (uint32_t k = 0; k < n; ++k) {
      const uint32_t i = (tie_offset_ + k) % n;
      if (!filter_.allowed(i)) {
        continue;
      }
      scores_[i] += hosts[i].weight;
      total += hosts[i].weight;
      if (best == n || scores_[i] > scores_[best]) {
        best = i;
      }
    }
    scores_[best] -= total;
    return best;
  }

private:
  LbHostSetConstSharedPtr hosts_;
  HostFilter filter_;
  std::vector<int64_t> scores_;
  uint32_t tie_offset_;
};

class RoundRobinLoadBalancer : public LoadBalancer {
public:
  RoundRobinLoadBalancer(LbHostSetConstSharedPtr hosts, const LbConfig& config)
      : hosts_(std::move(hosts)), config_(config) {}

  LbPickerPtr createPicker(Random& random) const override {
    const auto offset = hosts_->empty() ? 0 : static_cast<uint32_t>(random.uniform(hosts_->size()));
    return std::make_unique<RoundRobinPicker>(hosts_, config_.panic_threshold_percent, offset);
  }

  const LbHostSet& hosts() const override { return *hosts_; }

private:
  LbHostSetConstSharedPtr hosts_;
  LbConfig config_;
};

class RoundRobinFactory : public LbFactory {
public:
  std::string_view name() const override { return kRoundRobinName; }

protected:
  LoadBalancerConstSharedPtr build(LbHostSetConstSharedPtr hosts,
                                   const LbConfig& config) const override {
    return std::make_shared<RoundRobinLoadBalancer>(std::move(hosts), config);
  }
};

}  // namespace

LbFactoryPtr makeRoundRobinFactory() { return std::make_unique<RoundRobinFactory>(); }

}  // namespace bulwark::policies::lb
