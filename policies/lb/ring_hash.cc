#include "policies/lb/ring_hash.h"

#include <algorithm>
#include <bit>
#include <string>
#include <utility>
#include <vector>

#include "policies/lb/hash.h"
#include "policies/lb/host_filter.h"

namespace bulwark::policies::lb {
namespace {

struct RingPoint {
  uint64_t hash;
  uint32_t host;
};

struct Ring {
  Ring(LbHostSetConstSharedPtr h, const LbConfig& c) : hosts(std::move(h)), config(c) {
    build();
  }

  void build() {
    const LbHostSet& hs = *hosts;
    if (hs.empty()) {
      return;
    }
    uint64_t total_weight = 0;
    for (const auto& host : hs) {
      total_weight += host.weight;
    }
    const uint64_t needed = (config.min_ring_size + total_weight - 1) / total_weight;
    const uint64_t per_weight = std::max(kRingPointsPerWeight, std::bit_ceil(needed));
    const bool capped = total_weight > config.max_ring_size / per_weight;
    points.reserve(capped ? config.max_ring_size + hs.size() : total_weight * per_weight);
    std::string key;
    for (uint32_t i = 0; i < hs.size(); ++i) {
      uint64_t count = hs[i].weight * per_weight;
      if (capped) {
        const auto scaled = static_cast<uint64_t>(static_cast<long double>(hs[i].weight) *
                                                  config.max_ring_size / total_weight);
        count = std::max<uint64_t>(1, scaled);
      }
      for (uint64_t j = 0; j < count; ++j) {
        key.assign(hs[i].name);
        key.push_back('_');
        key.append(std::to_string(j));
        points.push_back({xxHash64(key), i});
      }
    }
    // Ties (equal 64-bit hashes) are ordered by host index so the ring is deterministic.
    std::sort(points.begin(), points.end(), [](const RingPoint& a, const RingPoint& b) {
      return a.hash != b.hash ? a.hash < b.hash : a.host < b.host;
    });
  }

  LbHostSetConstSharedPtr hosts;
  LbConfig config;
  std::vector<RingPoint> points;
};

class RingHashPicker : public LbPicker {
public:
  RingHashPicker(std::shared_ptr<const Ring> ring, Random& random)
      : ring_(std::move(ring)), random_(random), filter_(ring_->config.panic_threshold_percent) {}

  std::optional<uint32_t> pick(const LbContext& ctx) override {
    filter_.compute(*ring_->hosts, ctx);
    if (filter_.allowedCount() == 0) {
      return std::nullopt;
    }
    const auto& points = ring_->points;
    const uint64_t key = ctx.hash_key ? *ctx.hash_key : random_.next();
    const auto it = std::lower_bound(points.begin(), points.end(), key,
                                     [](const RingPoint& p, uint64_t k) { return p.hash < k; });
    size_t start = it == points.end() ? 0 : static_cast<size_t>(it - points.begin());
    // Bounded walk: at most one lap; every host owns at least one point, so an allowed host
    // is always found.
    for (size_t step = 0; step < points.size(); ++step) {
      const RingPoint& point = points[(start + step) % points.size()];
      if (filter_.allowed(point.host)) {
        return point.host;
      }
    }
    return std::nullopt;
  }

private:
  std::shared_ptr<const Ring> ring_;
  Random& random_;
  HostFilter filter_;
};

class RingHashLoadBalancer : public LoadBalancer {
public:
  explicit RingHashLoadBalancer(std::shared_ptr<const Ring> ring) : ring_(std::move(ring)) {}

  LbPickerPtr createPicker(Random& random) const override {
    return std::make_unique<RingHashPicker>(ring_, random);
  }

  const LbHostSet& hosts() const override { return *ring_->hosts; }

private:
  std::shared_ptr<const Ring> ring_;
};

class RingHashFactory : public LbFactory {
public:
  std::string_view name() const override { return kRingHashName; }

  Status validate(const LbConfig& config) const override {
    if (Status s = LbFactory::validate(config); !s) {
      return s;
    }
    if (config.min_ring_size < 1) {
      return Status::error("loadBalancer.ringHash.minimumRingSize: must be >= 1");
    }
    if (config.max_ring_size < config.min_ring_size || config.max_ring_size > kMaxRingSize) {
      return Status::error(
          "loadBalancer.ringHash.maximumRingSize: must be >= minimumRingSize and <= " +
          std::to_string(kMaxRingSize));
    }
    return Status::ok();
  }

protected:
  Status validateHosts(const LbHostSet& hosts, const LbConfig& /*config*/) const override {
    return requireUniqueNames(hosts, kRingHashName);
  }

  LoadBalancerConstSharedPtr build(LbHostSetConstSharedPtr hosts,
                                   const LbConfig& config) const override {
    return std::make_shared<RingHashLoadBalancer>(
        std::make_shared<const Ring>(std::move(hosts), config));
  }

private:
  // Envoy's upper bound for maximum_ring_size.
  static constexpr uint64_t kMaxRingSize = 8 * 1024 * 1024;
};

}  // namespace

LbFactoryPtr makeRingHashFactory() { return std::make_unique<RingHashFactory>(); }

}  // namespace bulwark::policies::lb
