#include "policies/lb/peak_ewma.h"

#include <utility>
#include <vector>

#include "policies/lb/host_filter.h"
#include "policies/lb/least_request.h"

namespace bulwark::policies::lb {
namespace {

struct PeakEwmaShared {
  PeakEwmaShared(LbHostSetConstSharedPtr h, const LbConfig& c)
      : hosts(std::move(h)), config(c), weights(*hosts) {}

  LbHostSetConstSharedPtr hosts;
  LbConfig config;
  CumulativeWeights weights;
};

class PeakEwmaPicker : public LbPicker {
public:
  PeakEwmaPicker(std::shared_ptr<const PeakEwmaShared> shared, Random& random)
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
    double best_cost = cost(hosts[best], ctx.now);
    for (size_t c = 1; c < candidates_.size(); ++c) {
      const uint32_t candidate = candidates_[c];
      const double candidate_cost = cost(hosts[candidate], ctx.now);
      if (candidate_cost < best_cost) {
        best = candidate;
        best_cost = candidate_cost;
      }
    }
    return best;
  }

private:
  double cost(const LbHost& host, MonotonicTime now) const {
    const Duration latency =
        ewmaLatency(*host.state, now, shared_->config.ewma_decay, shared_->config.ewma_default_rtt);
    const uint32_t active = host.state->active_requests.load(std::memory_order_relaxed);
    return static_cast<double>(latency.count()) * (static_cast<double>(active) + 1.0) /
           static_cast<double>(host.weight);
  }

  std::shared_ptr<const PeakEwmaShared> shared_;
  Random& random_;
  HostFilter filter_;
  std::vector<uint32_t> candidates_;
  std::vector<uint32_t> scratch_;
};

class PeakEwmaLoadBalancer : public LoadBalancer {
public:
  explicit PeakEwmaLoadBalancer(std::shared_ptr<const PeakEwmaShared> shared)
      : shared_(std::move(shared)) {}

  LbPickerPtr createPicker(Random& random) const override {
    return std::make_unique<PeakEwmaPicker>(shared_, random);
  }

  const LbHostSet& hosts() const override { return *shared_->hosts; }

private:
  std::shared_ptr<const PeakEwmaShared> shared_;
};

class PeakEwmaFactory : public LbFactory {
public:
  std::string_view name() const override { return kPeakEwmaName; }

  Status validate(const LbConfig& config) const override {
    if (Status s = LbFactory::validate(config); !s) {
      return s;
    }
    if (Status s = validateChoiceCount(config); !s) {
      return s;
    }
    if (config.ewma_decay <= Duration::zero()) {
      return Status::error("loadBalancer.peakEwma.decay: must be > 0");
    }
    if (config.ewma_default_rtt <= Duration::zero()) {
      return Status::error("loadBalancer.peakEwma.defaultRtt: must be > 0");
    }
    return Status::ok();
  }

protected:
  LoadBalancerConstSharedPtr build(LbHostSetConstSharedPtr hosts,
                                   const LbConfig& config) const override {
    return std::make_shared<PeakEwmaLoadBalancer>(
        std::make_shared<const PeakEwmaShared>(std::move(hosts), config));
  }
};

}  // namespace

LbFactoryPtr makePeakEwmaFactory() { return std::make_unique<PeakEwmaFactory>(); }

}  // namespace bulwark::policies::lb
