#include "policies/lb/peak_ewma.h"

#include <algorithm>
#include <utility>
#include <vector>

#include "policies/lb/choice_picker.h"
#include "policies/lb/least_request.h"

namespace bulwark::policies::lb {
namespace {

/** Lower expected latency (latency estimate x (in flight + 1) / weight) is better. */
struct LowestEwmaCost {
  static bool better(const LbConfig& config, const LbHost& a, const LbHost& b, MonotonicTime now) {
    return cost(config, a, now) < cost(config, b, now);
  }
  static double cost(const LbConfig& config, const LbHost& host, MonotonicTime now) {
    const Duration latency =
        std::max(ewmaLatency(*host.state, now, config.ewma_decay, config.ewma_default_rtt),
                 outstandingLatencyFloor(*host.state, now));
    const uint32_t active = host.state->active_requests.load(std::memory_order_relaxed);
    return static_cast<double>(latency.count()) * (static_cast<double>(active) + 1.0) /
           static_cast<double>(host.weight);
  }
};

using PeakEwmaPicker = ChoicePicker<LowestEwmaCost>;
using PeakEwmaLoadBalancer = SharedStateLoadBalancer<PeakEwmaPicker, WeightedHosts>;

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
        std::make_shared<const WeightedHosts>(std::move(hosts), config));
  }
};

}  // namespace

LbFactoryPtr makePeakEwmaFactory() { return std::make_unique<PeakEwmaFactory>(); }

}  // namespace bulwark::policies::lb
