#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "examples/ranking/catalog.h"
#include "examples/ranking/feature_store.h"
#include "examples/ranking/model.h"

namespace bulwark::examples::ranking {

/** Weights of the first-stage linear score (the seed's "similarity + popularity + recency"). */
struct ScoringWeights {
  double affinity = 1.0;    // dot(user preference, item embedding), in [-1, 1]
  double popularity = 0.4;  // log1p(popularity) / log1p(10000), in [0, 1]
  double recency = 0.6;     // 2^(-age / half_life), in (0, 1]
  double model = 0.5;       // weight of the model's clamped output, in [-1, 1]
  double recency_half_life_ms = 6.0 * 3600 * 1000;
};

struct RankerOptions {
  // How many of the tenant's newest items are candidates (the candidate service's window).
  std::size_t candidate_window = 500;
  // How many of the best linear scores the model re-scores (two-stage ranking).
  std::size_t rerank_depth = 100;
  ScoringWeights weights;
};

struct ScoredItem {
  std::string item_id;
  double score = 0;
};

struct RankResult {
  std::vector<ScoredItem> items;  // best first
  bool degraded = false;
  std::string degraded_reason;  // the feature store error when degraded
};

/**
 * Ranks a tenant's items for a user: candidates from the catalog, features from the store, a
 * linear first stage over all candidates, the model over the best `rerank_depth`, then the top
 * `limit` by partial sort. When the store fails it degrades as the seed prescribes: the latest
 * items by time, scored by recency, `degraded = true`, never an error.
 * Thread: any (the catalog is read-only, the store and model are thread-safe).
 */
class Ranker {
public:
  Ranker(const Catalog& catalog, FeatureStore& store, ModelRuntime& model, RankerOptions options);

  /**
   * @param limit number of items wanted, > 0.
   * @return the feed, or an error only for an unknown tenant.
   */
  Result<RankResult> rank(std::string_view tenant_id, std::string_view user_id, std::size_t limit);

private:
  double recencyScore(std::int64_t newest_ms, std::int64_t created_ms) const;

  const Catalog& catalog_;
  FeatureStore& store_;
  ModelRuntime& model_;
  const RankerOptions options_;
};

}  // namespace bulwark::examples::ranking
