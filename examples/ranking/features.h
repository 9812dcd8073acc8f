#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace bulwark::examples::ranking {

// Every item embedding and user preference vector has this many dimensions (unit length).
inline constexpr std::size_t kEmbeddingDim = 32;
using Embedding = std::array<float, kEmbeddingDim>;

/** Features of one item as the feature store keeps them. Thread: value type, any. */
struct ItemFeatures {
  Embedding embedding{};
  // Engagement count (likes + shares), the popularity signal of the seed's ranker.
  float popularity = 0;
};

/** One item of a tenant's catalog: what the candidate source knows without the feature store. */
struct CatalogItem {
  std::string item_id;
  std::int64_t created_at_ms = 0;
};

/** A tenant's deterministic seed data: catalog, item features and user preference vectors. */
struct SeededTenant {
  std::string tenant_id;
  std::vector<CatalogItem> items;  // index i matches item_features[i]
  std::vector<ItemFeatures> item_features;
  std::vector<std::string> user_ids;  // index j matches user_vectors[j]
  std::vector<Embedding> user_vectors;
};

/** Sizes of the generated data set. */
struct SeedOptions {
  std::size_t items_per_tenant = 5000;
  std::size_t users_per_tenant = 100;
};

/** The tenants served out of the box. */
std::vector<std::string> defaultTenants();

/**
 * Generates a tenant's data from a fixed PRNG seeded with the tenant name, so every replica and
 * every test sees the same data. Item ids are "<tenant>:item-<n>", user ids "user-<n>" (the same
 * user ids exist in every tenant, with different vectors). Timestamps are spaced 37 s apart
 * ending at a fixed instant, so recency is reproducible too.
 * Thread: any (pure).
 */
SeededTenant seedTenant(const std::string& tenant_id, const SeedOptions& options);

float dot(const Embedding& a, const Embedding& b);

}  // namespace bulwark::examples::ranking
