#include "examples/ranking/features.h"

#include <cmath>
#include <random>

namespace bulwark::examples::ranking {
namespace {

// 2026-01-01T00:00:00Z: a fixed "now" for the seed so data does not depend on the start time.
constexpr std::int64_t kSeedEpochMs = 1767225600000;
constexpr std::int64_t kItemSpacingMs = 37'000;

std::uint64_t fnv1a(const std::string& s) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

// std::uniform_real_distribution is implementation-defined; derive doubles from raw bits instead.
double uniform01(std::mt19937_64& rng) { return static_cast<double>(rng() >> 11) * 0x1.0p-53; }

Embedding randomUnitVector(std::mt19937_64& rng) {
  Embedding v{};
  double norm = 0;
  for (auto& x : v) {
    x = static_cast<float>(uniform01(rng) * 2.0 - 1.0);
    norm += static_cast<double>(x) * x;
  }
  norm = std::sqrt(norm);
  for (auto& x : v) {
    x = static_cast<float>(x / norm);
  }
  return v;
}

}  // namespace

std::vector<std::string> defaultTenants() { return {"tenantA", "tenantB"}; }

SeededTenant seedTenant(const std::string& tenant_id, const SeedOptions& options) {
  std::mt19937_64 rng(fnv1a(tenant_id));
  SeededTenant t;
  t.tenant_id = tenant_id;
  t.items.reserve(options.items_per_tenant);
  t.item_features.reserve(options.items_per_tenant);
  for (std::size_t i = 0; i < options.items_per_tenant; ++i) {
    CatalogItem item;
    item.item_id = tenant_id + ":item-" + std::to_string(i);
    // Item 0 is the oldest; the newest item is the last one.
    item.created_at_ms =
        kSeedEpochMs - static_cast<std::int64_t>(options.items_per_tenant - 1 - i) * kItemSpacingMs;
    ItemFeatures f;
    f.embedding = randomUnitVector(rng);
    // Heavy-tailed engagement, as real popularity is: most items have little, a few a lot.
    f.popularity = static_cast<float>(std::floor(std::pow(uniform01(rng), 4.0) * 10000.0));
    t.items.push_back(std::move(item));
    t.item_features.push_back(f);
  }
  for (std::size_t j = 0; j < options.users_per_tenant; ++j) {
    t.user_ids.push_back("user-" + std::to_string(j));
    t.user_vectors.push_back(randomUnitVector(rng));
  }
  return t;
}

float dot(const Embedding& a, const Embedding& b) {
  float s = 0;
  for (std::size_t i = 0; i < kEmbeddingDim; ++i) {
    s += a[i] * b[i];
  }
  return s;
}

}  // namespace bulwark::examples::ranking
