#include "examples/ranking/catalog.h"

#include <algorithm>

namespace bulwark::examples::ranking {

void Catalog::addTenant(std::string tenant_id, std::vector<CatalogItem> items) {
  std::stable_sort(items.begin(), items.end(), [](const CatalogItem& a, const CatalogItem& b) {
    return a.created_at_ms > b.created_at_ms;
  });
  tenants_[std::move(tenant_id)] = std::move(items);
}

bool Catalog::hasTenant(std::string_view tenant_id) const {
  return tenants_.find(tenant_id) != tenants_.end();
}

std::span<const CatalogItem> Catalog::latest(std::string_view tenant_id, std::size_t n) const {
  auto it = tenants_.find(tenant_id);
  if (it == tenants_.end()) {
    return {};
  }
  return std::span<const CatalogItem>(it->second).first(std::min(n, it->second.size()));
}

std::int64_t Catalog::newestTimestampMs(std::string_view tenant_id) const {
  auto it = tenants_.find(tenant_id);
  if (it == tenants_.end() || it->second.empty()) {
    return 0;
  }
  return it->second.front().created_at_ms;
}

}  // namespace bulwark::examples::ranking
