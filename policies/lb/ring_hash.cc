#include "policies/lb/ring_hash.h"

#include <algorithm>
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
  Ring(LbHostSetConstSharedPtr h, const LbConfig& c) : hosts(std::move(h)), config(c) { build(); }

  void build() {
    const LbHostSet& hs = *hosts;
    if (hs.empty()) {
      return;
    }
    uint32_t max_weight = 0;
    for (const auto& host : hs) {
      max_weight = std::max(max_weight, host.weight);
    }
    std::vector<uint64_t> counts;
    counts.reserve(hs.size());
    uint64_t total = 0;
    for (const auto& host : hs) {
      // ceil(min_ring_size * weight / max_weight), in 128 bits: both factors may be large.
      const auto product = static_cast<unsigned __int128>(config.min_ring_size) * host.weight;
      const auto count = static_cast<uint64_t>((product + max_weight - 1) / max_weight);
      counts.push_back(count);
      total += count;
    }
    if (total > config.max_ring_size) {
      const long double scale = static_cast<long double>(config.max_ring_size) / total;
      total = 0;
      for (auto& count : counts) {
        count = std::max<uint64_t>(1, static_cast<uint64_t>(count * scale));
        total += count;
      }
    }
    points.reserve(total);
    std::string key;
    for (uint32_t i = 0; i < hs.size(); ++i) {
      for (uint64_t j = 0; j < counts[i]; ++j) {
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

using RingHashLoadBalancer = SharedStateLoadBalancer<RingHashPicker, Ring>;

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
  static constexpr uint64_t kMaxRingSize = 8UL * 1024 * 1024;
};

}  // namespace

LbFactoryPtr makeRingHashFactory() { return std::make_unique<RingHashFactory>(); }

}  // namespace bulwark::policies::lb
