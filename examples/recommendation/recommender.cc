#include "examples/recommendation/recommender.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <queue>

#include "examples/common/fault_spec.h"
#include "policies/random.h"

namespace bulwark::examples::recommendation {
namespace {

uint64_t hashOf(uint64_t seed, const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ULL ^ seed;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  // Final mix (splitmix64) so that similar strings give unrelated seeds.
  h += 0x9e3779b97f4a7c15ULL;
  h = (h ^ (h >> 30)) * 0xbf58476d1ce4e5b9ULL;
  h = (h ^ (h >> 27)) * 0x94d049bb133111ebULL;
  return h ^ (h >> 31);
}

void randomUnitVector(policies::Random& random, float* out, size_t dimension) {
  double norm = 0;
  for (size_t i = 0; i < dimension; ++i) {
    out[i] = static_cast<float>(sampleStandardNormal(random));
    norm += static_cast<double>(out[i]) * out[i];
  }
  const auto inv = static_cast<float>(1.0 / std::sqrt(std::max(norm, 1e-12)));
  for (size_t i = 0; i < dimension; ++i) {
    out[i] *= inv;
  }
}

float dot(const float* a, const float* b, size_t n) {
  float sum = 0;
  for (size_t i = 0; i < n; ++i) {
    sum += a[i] * b[i];
  }
  return sum;
}

}  // namespace

Recommender::Recommender(RecommenderOptions options) : options_(std::move(options)) {
  const size_t d = options_.dimension;
  for (const auto& tenant : options_.tenants) {
    Catalog& catalog = catalogs_[tenant];
    policies::SeededRandom random(hashOf(options_.seed, "catalog/" + tenant));
    const size_t n = options_.items_per_tenant;
    catalog.ids.reserve(n);
    catalog.embeddings.resize(n * d);
    catalog.popularity.resize(n);
    for (size_t i = 0; i < n; ++i) {
      char id[64];
      std::snprintf(id, sizeof(id), "%s-item-%05zu", tenant.c_str(), i);
      catalog.ids.emplace_back(id);
      catalog.index[catalog.ids.back()] = i;
      randomUnitVector(random, &catalog.embeddings[i * d], d);
      // A long-tailed prior: few items are popular (exponential with mean 0.1).
      catalog.popularity[i] = static_cast<float>(-0.1 * std::log(1.0 - random.uniform01()));
    }
  }
}

std::vector<float> Recommender::queryVector(const std::string& tenant, const std::string& surface,
                                            const std::string& user_id) const {
  const size_t d = options_.dimension;
  std::vector<float> user(d);
  std::vector<float> bias(d);
  policies::SeededRandom user_random(hashOf(options_.seed, "user/" + tenant + "/" + user_id));
  randomUnitVector(user_random, user.data(), d);
  policies::SeededRandom surface_random(hashOf(options_.seed, "surface/" + tenant + "/" + surface));
  randomUnitVector(surface_random, bias.data(), d);
  for (size_t i = 0; i < d; ++i) {
    user[i] += 0.5f * bias[i];
  }
  return user;
}

std::vector<ScoredItem> Recommender::topK(const Catalog& catalog, const float* query, size_t k,
                                          bool with_popularity, size_t exclude) const {
  const size_t d = options_.dimension;
  using Entry = std::pair<float, size_t>;  // (score, index)
  // "a ranks before b": higher score, then lower index. As the heap's ordering it puts the
  // worst entry kept so far on top, ready to be evicted.
  auto better = [](const Entry& a, const Entry& b) {
    return a.first > b.first || (a.first == b.first && a.second < b.second);
  };
  std::priority_queue<Entry, std::vector<Entry>, decltype(better)> heap(better);
  for (size_t i = 0; i < catalog.ids.size(); ++i) {
    if (i == exclude) {
      continue;
    }
    float score = dot(query, &catalog.embeddings[i * d], d);
    if (with_popularity) {
      score += catalog.popularity[i];
    }
    Entry entry{score, i};
    if (heap.size() < k) {
      heap.push(entry);
    } else if (better(entry, heap.top())) {
      heap.pop();
      heap.push(entry);
    }
  }
  std::vector<ScoredItem> out(heap.size());
  for (size_t i = out.size(); i-- > 0;) {
    out[i] = ScoredItem{catalog.ids[heap.top().second], heap.top().first};
    heap.pop();
  }
  return out;
}

bool Recommender::hasItem(const std::string& tenant, const std::string& item_id) const {
  auto it = catalogs_.find(tenant);
  return it != catalogs_.end() && it->second.index.count(item_id) != 0;
}

Result<std::vector<ScoredItem>> Recommender::recommend(const std::string& tenant,
                                                       const std::string& surface,
                                                       const std::string& user_id, size_t k) const {
  auto it = catalogs_.find(tenant);
  if (it == catalogs_.end()) {
    return Status::error("unknown tenant " + tenant);
  }
  if (k == 0 || k > kMaxK) {
    return Status::error("k must be 1..200");
  }
  auto query = queryVector(tenant, surface, user_id);
  return topK(it->second, query.data(), k, /*with_popularity=*/true, SIZE_MAX);
}

Result<std::vector<ScoredItem>> Recommender::similar(const std::string& tenant,
                                                     const std::string& /*surface*/,
                                                     const std::string& item_id, size_t k) const {
  auto it = catalogs_.find(tenant);
  if (it == catalogs_.end()) {
    return Status::error("unknown tenant " + tenant);
  }
  if (k == 0 || k > kMaxK) {
    return Status::error("k must be 1..200");
  }
  const Catalog& catalog = it->second;
  auto item = catalog.index.find(item_id);
  // An item of another tenant is simply not in this catalog.
  if (item == catalog.index.end()) {
    return Status::error("unknown item " + item_id);
  }
  const float* query = &catalog.embeddings[item->second * options_.dimension];
  return topK(catalog, query, k, /*with_popularity=*/false, item->second);
}

}  // namespace bulwark::examples::recommendation
