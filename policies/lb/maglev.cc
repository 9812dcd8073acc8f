#include "policies/lb/maglev.h"

#include <algorithm>
#include <string>
#include <utility>
#include <vector>

#include "policies/lb/hash.h"
#include "policies/lb/host_filter.h"

namespace bulwark::policies::lb {
namespace {

constexpr uint32_t kEmptySlot = UINT32_MAX;
// Keeps the table build (O(M log M) expected) and memory bounded; Envoy's limit is 5000011.
constexpr uint64_t kMaxTableSize = 5000011;

bool isPrime(uint64_t n) {
  if (n < 2) {
    return false;
  }
  for (uint64_t d = 2; d * d <= n; ++d) {
    if (n % d == 0) {
      return false;
    }
  }
  return true;
}

struct MaglevTable {
  MaglevTable(LbHostSetConstSharedPtr h, const LbConfig& c) : hosts(std::move(h)), config(c) {
    build();
  }

  struct BuildEntry {
    uint64_t offset;
    uint64_t skip;
    uint64_t next = 0;
    uint64_t target = 0;
    uint32_t weight;
  };

  uint64_t permutation(const BuildEntry& e) const {
    return (e.offset + e.skip * e.next) % table.size();
  }

  void build() {
    const LbHostSet& hs = *hosts;
    if (hs.empty()) {
      return;
    }
    const uint64_t m = config.maglev_table_size;
    table.assign(m, kEmptySlot);
    std::vector<BuildEntry> entries;
    entries.reserve(hs.size());
    uint32_t max_weight = 0;
    for (const auto& host : hs) {
      entries.push_back(
          {xxHash64(host.name, 0) % m, xxHash64(host.name, 1) % (m - 1) + 1, 0, 0, host.weight});
      max_weight = std::max(max_weight, host.weight);
    }
    uint64_t filled = 0;
    for (uint64_t iteration = 1; filled < m; ++iteration) {
      for (uint32_t i = 0; i < entries.size() && filled < m; ++i) {
        BuildEntry& e = entries[i];
        // A host of the largest weight claims a slot on every iteration; one of a third of
        // that weight on every third (Envoy's MaglevTable::constructMaglevTableInternal).
        if (iteration * e.weight < e.target) {
          continue;
        }
        e.target += max_weight;
        uint64_t slot = permutation(e);
        while (table[slot] != kEmptySlot) {
          ++e.next;
          slot = permutation(e);
        }
        table[slot] = i;
        ++e.next;
        ++filled;
      }
    }
  }

  LbHostSetConstSharedPtr hosts;
  LbConfig config;
  std::vector<uint32_t> table;
};

class MaglevPicker : public LbPicker {
public:
  MaglevPicker(std::shared_ptr<const MaglevTable> table, Random& random)
      : table_(std::move(table)),
        random_(random),
        filter_(table_->config.panic_threshold_percent) {}

  std::optional<uint32_t> pick(const LbContext& ctx) override {
    filter_.compute(*table_->hosts, ctx);
    if (filter_.allowedCount() == 0) {
      return std::nullopt;
    }
    const auto& table = table_->table;
    const uint64_t key = ctx.hash_key ? *ctx.hash_key : random_.next();
    const size_t start = key % table.size();
    for (size_t step = 0; step < table.size(); ++step) {
      const uint32_t host = table[(start + step) % table.size()];
      if (filter_.allowed(host)) {
        return host;
      }
    }
    // Unreachable: every host claims a slot in the first build iteration (M >= hosts). Kept so
    // that a future change to the build cannot turn into "no host" while hosts are allowed.
    return filter_.allowsAll() ? table[start] : filter_.allowedIndices().front();
  }

private:
  std::shared_ptr<const MaglevTable> table_;
  Random& random_;
  HostFilter filter_;
};

using MaglevLoadBalancer = SharedStateLoadBalancer<MaglevPicker, MaglevTable>;

class MaglevFactory : public LbFactory {
public:
  std::string_view name() const override { return kMaglevName; }

  Status validate(const LbConfig& config) const override {
    if (Status s = LbFactory::validate(config); !s) {
      return s;
    }
    if (!isPrime(config.maglev_table_size) || config.maglev_table_size > kMaxTableSize) {
      return Status::error(
          "loadBalancer.maglev.tableSize: must be a prime <= " + std::to_string(kMaxTableSize) +
          ", got " + std::to_string(config.maglev_table_size));
    }
    return Status::ok();
  }

protected:
  Status validateHosts(const LbHostSet& hosts, const LbConfig& config) const override {
    if (hosts.size() > config.maglev_table_size) {
      return Status::error(
          "loadBalancer.maglev.tableSize: " + std::to_string(config.maglev_table_size) +
          " is smaller than the " + std::to_string(hosts.size()) + " hosts");
    }
    return requireUniqueNames(hosts, kMaglevName);
  }

  LoadBalancerConstSharedPtr build(LbHostSetConstSharedPtr hosts,
                                   const LbConfig& config) const override {
    return std::make_shared<MaglevLoadBalancer>(
        std::make_shared<const MaglevTable>(std::move(hosts), config));
  }
};

}  // namespace

LbFactoryPtr makeMaglevFactory() { return std::make_unique<MaglevFactory>(); }

}  // namespace bulwark::policies::lb
