#include "policies/lb/least_request.h"

#include <string>
#include <utility>
#include <vector>

#include "policies/lb/choice_picker.h"

namespace bulwark::policies::lb {
namespace {

constexpr uint32_t kMaxChoiceCount = 100;

/** Fewer requests in flight per unit of weight is better. */
struct LeastActivePerWeight {
  static bool better(const LbConfig&, const LbHost& a, const LbHost& b, MonotonicTime) {
    const uint64_t active_a = a.state->active_requests.load(std::memory_order_relaxed);
    const uint64_t active_b = b.state->active_requests.load(std::memory_order_relaxed);
    // active_a / weight_a < active_b / weight_b, without division (128-bit: both factors can
    // use all 32 bits).
    return static_cast<unsigned __int128>(active_a) * b.weight <
           static_cast<unsigned __int128>(active_b) * a.weight;
  }
};

using LeastRequestPicker = ChoicePicker<LeastActivePerWeight>;
using LeastRequestLoadBalancer = SharedStateLoadBalancer<LeastRequestPicker, WeightedHosts>;

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
        std::make_shared<const WeightedHosts>(std::move(hosts), config));
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
