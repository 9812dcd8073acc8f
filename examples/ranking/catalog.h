#pragma once

#include <cstddef>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "examples/ranking/features.h"

namespace bulwark::examples::ranking {

/**
 * Per-tenant item catalog, newest first: the candidate source of the seed's architecture. It
 * lives in the ranker's memory (not in the feature store) so that the degraded path
 * ("latest content by time") still works when the feature store is down.
 * Thread: built on main before serving, then read-only from any thread.
 */
class Catalog {
public:
  /** Adds (or replaces) a tenant's items; they are sorted newest first. */
  void addTenant(std::string tenant_id, std::vector<CatalogItem> items);

  /** @return true when the tenant exists. */
  bool hasTenant(std::string_view tenant_id) const;

  /**
   * @return the tenant's newest `n` items (fewer if the catalog is smaller), newest first; empty
   * for an unknown tenant. The span stays valid as long as the catalog is not modified.
   */
  std::span<const CatalogItem> latest(std::string_view tenant_id, std::size_t n) const;

  /** @return the created_at of the tenant's newest item: the reference point for item age. */
  std::int64_t newestTimestampMs(std::string_view tenant_id) const;

private:
  struct StringHash {
    using is_transparent = void;
    std::size_t operator()(std::string_view s) const { return std::hash<std::string_view>{}(s); }
  };
  std::unordered_map<std::string, std::vector<CatalogItem>, StringHash, std::equal_to<>> tenants_;
};

}  // namespace bulwark::examples::ranking
