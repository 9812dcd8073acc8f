#include "examples/ranking/ranker.h"

#include <algorithm>
#include <cmath>
#include <numeric>

namespace bulwark::examples::ranking {
namespace {

// Popularity is normalised against this engagement count (the seed data's maximum).
constexpr double kPopularityScale = 10000.0;

struct Candidate {
  std::size_t index;  // into the catalog span
  double linear;
  double score;
};

// Higher score first; ties go to the newer item (lower catalog index) so order is total.
bool better(const Candidate& a, const Candidate& b) {
  if (a.score != b.score) {
    return a.score > b.score;
  }
  return a.index < b.index;
}

}  // namespace

Ranker::Ranker(const Catalog& catalog, FeatureStore& store, ModelRuntime& model,
               RankerOptions options)
    : catalog_(catalog), store_(store), model_(model), options_(options) {}

double Ranker::recencyScore(std::int64_t newest_ms, std::int64_t created_ms) const {
  const double age = static_cast<double>(std::max<std::int64_t>(0, newest_ms - created_ms));
  return std::exp2(-age / options_.weights.recency_half_life_ms);
}

Result<RankResult> Ranker::rank(std::string_view tenant_id, std::string_view user_id,
                                std::size_t limit) {
  if (!catalog_.hasTenant(tenant_id)) {
    return Status::error("unknown tenant '" + std::string(tenant_id) + "'");
  }
  const std::int64_t newest = catalog_.newestTimestampMs(tenant_id);
  const auto candidates = catalog_.latest(tenant_id, std::max(options_.candidate_window, limit));
  std::vector<std::string_view> ids;
  ids.reserve(candidates.size());
  for (const auto& c : candidates) {
    ids.push_back(c.item_id);
  }

  RankResult result;
  auto features = store_.fetch(tenant_id, user_id, ids);
  if (!features) {
    // Degraded path: latest content by time; the catalog is already newest first.
    result.degraded = true;
    result.degraded_reason = features.error();
    for (const auto& c : candidates.first(std::min(limit, candidates.size()))) {
      result.items.push_back({c.item_id, recencyScore(newest, c.created_at_ms)});
    }
    return result;
  }

  const auto& w = options_.weights;
  const Embedding user = features->user.value_or(Embedding{});
  std::vector<Candidate> scored;
  std::vector<ModelInput> inputs;
  scored.reserve(candidates.size());
  for (std::size_t i = 0; i < candidates.size(); ++i) {
    const auto& f = features->items[i];
    const double recency = recencyScore(newest, candidates[i].created_at_ms);
    double affinity = 0;
    double popularity = 0;
    if (f) {
      affinity = dot(user, f->embedding);
      popularity = std::log1p(std::max(0.0f, f->popularity)) / std::log1p(kPopularityScale);
    }
    const double linear = w.affinity * affinity + w.popularity * popularity + w.recency * recency;
    scored.push_back({i, linear, linear});
  }

  // Stage 2: the model re-scores the best linear candidates.
  const std::size_t depth = std::min(scored.size(), std::max(options_.rerank_depth, limit));
  std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(depth),
                    scored.end(), better);
  inputs.resize(depth);
  for (std::size_t r = 0; r < depth; ++r) {
    const auto& f = features->items[scored[r].index];
    ModelInput& x = inputs[r];
    x.fill(0);
    if (f) {
      for (std::size_t d = 0; d < kEmbeddingDim; ++d) {
        x[d] = user[d] * f->embedding[d];
      }
      x[kEmbeddingDim] = static_cast<float>(dot(user, f->embedding));
      x[kEmbeddingDim + 1] = static_cast<float>(std::log1p(std::max(0.0f, f->popularity)) /
                                                std::log1p(kPopularityScale));
    }
    x[kEmbeddingDim + 2] =
        static_cast<float>(recencyScore(newest, candidates[scored[r].index].created_at_ms));
  }
  std::vector<float> model_out(depth);
  // A shut-down model still filled model_out with the network's output; rank with it.
  model_.infer(inputs, model_out);
  for (std::size_t r = 0; r < depth; ++r) {
    scored[r].score = scored[r].linear + w.model * model_out[r];
  }
  const std::size_t k = std::min(limit, depth);
  std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(k),
                    scored.begin() + static_cast<std::ptrdiff_t>(depth), better);
  result.items.reserve(k);
  for (std::size_t r = 0; r < k; ++r) {
    result.items.push_back({candidates[scored[r].index].item_id, scored[r].score});
  }
  return result;
}

}  // namespace bulwark::examples::ranking
