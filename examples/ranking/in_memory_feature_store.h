#pragma once

#include <shared_mutex>
#include <string>
#include <unordered_map>

#include "examples/ranking/feature_store.h"

namespace bulwark::examples::ranking {

/**
 * The default feature store: per-tenant hash maps in process memory.
 * Thread: any (load() takes a writer lock, fetch() a reader lock).
 */
class InMemoryFeatureStore : public FeatureStore {
public:
  // FeatureStore
  Status load(const SeededTenant& tenant) override;
  Result<FeatureBatch> fetch(std::string_view tenant_id, std::string_view user_id,
                             std::span<const std::string_view> item_ids) override;
  std::string describe() const override { return "memory"; }

private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  template <typename V>
  using StringMap = std::unordered_map<std::string, V, StringHash, std::equal_to<>>;

  struct TenantFeatures {
    StringMap<ItemFeatures> items;
    StringMap<Embedding> users;
  };

  mutable std::shared_mutex mu_;
  StringMap<TenantFeatures> tenants_;  // guarded by mu_
};

}  // namespace bulwark::examples::ranking
