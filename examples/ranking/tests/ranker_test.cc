#include "examples/ranking/ranker.h"

#include <chrono>
#include <thread>

#include <gtest/gtest.h>

#include "examples/ranking/in_memory_feature_store.h"

namespace bulwark::examples::ranking {
namespace {

ModelOptions freeModel() {
  ModelOptions o;
  o.cost = std::chrono::microseconds(0);
  o.jitter_sigma = 0;
  return o;
}

Embedding axis(std::size_t d, float sign = 1.0f) {
  Embedding e{};
  e[d] = sign;
  return e;
}

// A feature store that is always down, like Redis refusing connections.
class DownFeatureStore : public FeatureStore {
public:
  Status load(const SeededTenant&) override { return Status::ok(); }
  Result<FeatureBatch> fetch(std::string_view, std::string_view,
                             std::span<const std::string_view>) override {
    ++calls;
    return Status::error("connection refused");
  }
  std::string describe() const override { return "down"; }
  int calls = 0;
};

// Hand-made tenant: user "u" points along axis 0; items differ in one signal each.
SeededTenant handMadeTenant() {
  SeededTenant t;
  t.tenant_id = "t";
  auto add = [&t](std::string id, std::int64_t ts, Embedding e, float pop) {
    t.items.push_back({std::move(id), ts});
    t.item_features.push_back({e, pop});
  };
  add("aligned", 1000, axis(0), 10);
  add("orthogonal", 1000, axis(1), 10);
  add("opposed", 1000, axis(0, -1), 10);
  add("orthogonal-popular", 1000, axis(2), 5000);
  add("orthogonal-old", 1000 - 24 * 3600 * 1000LL, axis(3), 10);
  t.user_ids = {"u"};
  t.user_vectors = {axis(0)};
  return t;
}

struct Fixture {
  explicit Fixture(SeededTenant tenant, RankerOptions options = {}) : model(freeModel()) {
    catalog.addTenant(tenant.tenant_id, tenant.items);
    EXPECT_TRUE(store.load(tenant).isOk());
    ranker = std::make_unique<Ranker>(catalog, store, model, options);
  }
  Catalog catalog;
  InMemoryFeatureStore store;
  ModelRuntime model;
  std::unique_ptr<Ranker> ranker;
};

std::vector<std::string> ids(const RankResult& r) {
  std::vector<std::string> out;
  for (const auto& i : r.items) {
    out.push_back(i.item_id);
  }
  return out;
}

// Linear stage alone: affinity dominates, then popularity, then recency breaks the rest.
TEST(RankerTest, OrdersByAffinityPopularityAndRecency) {
  RankerOptions options;
  options.weights.model = 0;
  Fixture f(handMadeTenant(), options);
  auto r = f.ranker->rank("t", "u", 5);
  ASSERT_TRUE(r.isOk()) << r.error();
  EXPECT_FALSE(r->degraded);
  EXPECT_EQ(ids(*r), (std::vector<std::string>{"aligned", "orthogonal-popular", "orthogonal",
                                               "orthogonal-old", "opposed"}));
}

// With the model on, the feed is still sorted by its final score and is deterministic.
TEST(RankerTest, ModelStageKeepsScoresSortedAndDeterministic) {
  Fixture f(seedTenant("tenantA", {}));
  auto a = f.ranker->rank("tenantA", "user-7", 20);
  auto b = f.ranker->rank("tenantA", "user-7", 20);
  ASSERT_TRUE(a.isOk() && b.isOk());
  ASSERT_EQ(a->items.size(), 20u);
  for (std::size_t i = 1; i < a->items.size(); ++i) {
    EXPECT_GE(a->items[i - 1].score, a->items[i].score) << "position " << i;
  }
  EXPECT_EQ(ids(*a), ids(*b));
}

// Different users of one tenant get different feeds: the ranking is personalised.
TEST(RankerTest, FeedsArePersonalised) {
  Fixture f(seedTenant("tenantA", {}));
  auto a = f.ranker->rank("tenantA", "user-1", 20);
  auto b = f.ranker->rank("tenantA", "user-2", 20);
  ASSERT_TRUE(a.isOk() && b.isOk());
  EXPECT_NE(ids(*a), ids(*b));
}

// A request for one tenant only ever returns that tenant's items, for the same user id.
TEST(RankerTest, TenantsAreIsolated) {
  Catalog catalog;
  InMemoryFeatureStore store;
  ModelRuntime model(freeModel());
  for (const auto& name : defaultTenants()) {
    auto t = seedTenant(name, {});
    catalog.addTenant(name, t.items);
    ASSERT_TRUE(store.load(t).isOk());
  }
  Ranker ranker(catalog, store, model, {});
  for (const auto& name : defaultTenants()) {
    auto r = ranker.rank(name, "user-3", 200);
    ASSERT_TRUE(r.isOk());
    ASSERT_EQ(r->items.size(), 200u);
    for (const auto& item : r->items) {
      EXPECT_TRUE(item.item_id.starts_with(name + ":")) << item.item_id << " in " << name;
    }
  }
  EXPECT_FALSE(ranker.rank("tenantC", "user-3", 20).isOk());
}

// Store down: latest items by time, degraded, never an error, and no model cost paid.
TEST(RankerTest, DegradesToLatestItemsWhenStoreFails) {
  auto tenant = seedTenant("tenantB", {});
  Catalog catalog;
  catalog.addTenant("tenantB", tenant.items);
  DownFeatureStore store;
  ModelOptions slow;
  slow.cost = std::chrono::seconds(10);
  ModelRuntime model(slow);
  Ranker ranker(catalog, store, model, {});
  const auto start = std::chrono::steady_clock::now();
  auto r = ranker.rank("tenantB", "user-1", 20);
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::seconds(1));
  ASSERT_TRUE(r.isOk());
  EXPECT_TRUE(r->degraded);
  EXPECT_EQ(r->degraded_reason, "connection refused");
  ASSERT_EQ(r->items.size(), 20u);
  auto latest = catalog.latest("tenantB", 20);
  for (std::size_t i = 0; i < 20; ++i) {
    EXPECT_EQ(r->items[i].item_id, latest[i].item_id);
    if (i > 0) {
      EXPECT_GT(r->items[i - 1].score, r->items[i].score);
    }
  }
  EXPECT_EQ(store.calls, 1);
}

// Unknown users get an unpersonalised but still complete feed.
TEST(RankerTest, UnknownUserGetsColdStartFeed) {
  Fixture f(seedTenant("tenantA", {}));
  auto r = f.ranker->rank("tenantA", "nobody", 20);
  ASSERT_TRUE(r.isOk());
  EXPECT_FALSE(r->degraded);
  EXPECT_EQ(r->items.size(), 20u);
}

// Seeding is deterministic per tenant and differs between tenants.
TEST(SeedTest, DeterministicPerTenant) {
  auto a1 = seedTenant("tenantA", {});
  auto a2 = seedTenant("tenantA", {});
  auto b = seedTenant("tenantB", {});
  ASSERT_EQ(a1.items.size(), 5000u);
  EXPECT_EQ(a1.user_vectors[5], a2.user_vectors[5]);
  EXPECT_EQ(a1.item_features[9].embedding, a2.item_features[9].embedding);
  EXPECT_NE(a1.user_vectors[5], b.user_vectors[5]);
  EXPECT_LT(a1.items.front().created_at_ms, a1.items.back().created_at_ms);
}

// The model holds a slot for the drawn inference time and computes real outputs.
TEST(ModelRuntimeTest, InferenceTakesTheConfiguredCost) {
  ModelOptions o;
  o.cost = std::chrono::microseconds(3000);
  o.jitter_sigma = 0;
  ModelRuntime model(o);
  std::vector<ModelInput> in(4);
  for (std::size_t r = 0; r < in.size(); ++r) {
    in[r].fill(0.1f * static_cast<float>(r));
  }
  std::vector<float> out(4, 99.0f);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(model.infer(in, out));
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::microseconds(3000));
  for (float y : out) {
    EXPECT_GE(y, -1.0f);
    EXPECT_LE(y, 1.0f);
  }
  EXPECT_NE(out[0], out[3]);
}

// CPU mode spends the cost computing rather than waiting.
TEST(ModelRuntimeTest, BurnCpuModeTakesTheConfiguredCost) {
  ModelOptions o;
  o.cost = std::chrono::microseconds(2000);
  o.jitter_sigma = 0;
  o.burn_cpu = true;
  ModelRuntime model(o);
  std::vector<ModelInput> in(8);
  std::vector<float> out(8);
  const auto start = std::chrono::steady_clock::now();
  EXPECT_TRUE(model.infer(in, out));
  EXPECT_GE(std::chrono::steady_clock::now() - start, std::chrono::microseconds(2000));
}

// shutdown() ends an inference wait early (drain must not wait out the model).
TEST(ModelRuntimeTest, ShutdownInterruptsInference) {
  ModelOptions o;
  o.cost = std::chrono::seconds(30);
  o.jitter_sigma = 0;
  ModelRuntime model(o);
  std::vector<ModelInput> in(1);
  std::vector<float> out(1);
  bool completed = true;
  std::thread t([&] { completed = model.infer(in, out); });
  model.shutdown();
  t.join();
  EXPECT_FALSE(completed);
}

}  // namespace
}  // namespace bulwark::examples::ranking
