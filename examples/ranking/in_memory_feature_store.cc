#include "examples/ranking/in_memory_feature_store.h"

#include <mutex>

namespace bulwark::examples::ranking {

Status InMemoryFeatureStore::load(const SeededTenant& tenant) {
  TenantFeatures features;
  for (std::size_t i = 0; i < tenant.items.size(); ++i) {
    features.items.emplace(tenant.items[i].item_id, tenant.item_features[i]);
  }
  for (std::size_t j = 0; j < tenant.user_ids.size(); ++j) {
    features.users.emplace(tenant.user_ids[j], tenant.user_vectors[j]);
  }
  std::unique_lock lock(mu_);
  tenants_[tenant.tenant_id] = std::move(features);
  return Status::ok();
}

Result<FeatureBatch> InMemoryFeatureStore::fetch(std::string_view tenant_id,
                                                 std::string_view user_id,
                                                 std::span<const std::string_view> item_ids) {
  FeatureBatch batch;
  batch.items.resize(item_ids.size());
  std::shared_lock lock(mu_);
  auto tenant = tenants_.find(tenant_id);
  if (tenant == tenants_.end()) {
    // Not an outage: the tenant simply has no features yet.
    return batch;
  }
  if (auto user = tenant->second.users.find(user_id); user != tenant->second.users.end()) {
    batch.user = user->second;
  }
  for (std::size_t i = 0; i < item_ids.size(); ++i) {
    if (auto item = tenant->second.items.find(item_ids[i]); item != tenant->second.items.end()) {
      batch.items[i] = item->second;
    }
  }
  return batch;
}

}  // namespace bulwark::examples::ranking
