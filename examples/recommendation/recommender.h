#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/result.h"

namespace bulwark::examples::recommendation {

struct RecommenderOptions {
  /** Tenants with a catalog; requests for others are rejected. */
  std::vector<std::string> tenants = {"demo", "tenantA", "tenantB"};
  size_t items_per_tenant = 5000;
  /** Embedding dimension. */
  size_t dimension = 32;
  /** Everything (embeddings, popularity) derives from this seed: replicas agree. */
  uint64_t seed = 1;
};

struct ScoredItem {
  std::string item_id;
  float score = 0;
};

/**
 * A small but real two-tower style model (the seed's recsys-service "blend" mode stand-in):
 * every tenant has its own catalog of unit-length item embeddings and a popularity prior, all
 * generated deterministically from the seed; a user's vector is derived from (tenant, user id)
 * and nudged towards the surface. recommend() scores the whole catalog by dot product plus
 * popularity and keeps the top k in a min-heap; similar() ranks by cosine similarity to an item.
 * Catalogs are separate per tenant: a request only ever sees its own tenant's items.
 * Thread: any (immutable after construction).
 */
class Recommender {
public:
  explicit Recommender(RecommenderOptions options);

  /** Top `k` items for a user on a surface, best first. Errors: unknown tenant, k out of range. */
  Result<std::vector<ScoredItem>> recommend(const std::string& tenant, const std::string& surface,
                                            const std::string& user_id, size_t k) const;
  /** Top `k` items most similar to `item_id` (excluded itself), best first. */
  Result<std::vector<ScoredItem>> similar(const std::string& tenant, const std::string& surface,
                                          const std::string& item_id, size_t k) const;

  bool hasTenant(const std::string& tenant) const { return catalogs_.count(tenant) != 0; }
  bool hasItem(const std::string& tenant, const std::string& item_id) const;
  size_t dimension() const { return options_.dimension; }
  static constexpr size_t kMaxK = 200;

private:
  struct Catalog {
    std::vector<std::string> ids;
    std::vector<float> embeddings;  // ids.size() x dimension, row-major, unit length rows
    std::vector<float> popularity;  // prior added to recommend() scores
    std::unordered_map<std::string, size_t> index;
  };

  std::vector<float> queryVector(const std::string& tenant, const std::string& surface,
                                 const std::string& user_id) const;
  std::vector<ScoredItem> topK(const Catalog& catalog, const float* query, size_t k,
                               bool with_popularity, size_t exclude) const;

  RecommenderOptions options_;
  std::map<std::string, Catalog> catalogs_;
};

}  // namespace bulwark::examples::recommendation
