#include "examples/ranking/feature_store.h"

#include <chrono>

#include <gtest/gtest.h>

#include "examples/ranking/in_memory_feature_store.h"
#include "examples/ranking/redis_feature_store.h"

namespace bulwark::examples::ranking {
namespace {

// The same item id asked under another tenant finds nothing: keys are namespaced by tenant.
TEST(InMemoryFeatureStoreTest, LookupsAreScopedToTheTenant) {
  InMemoryFeatureStore store;
  auto a = seedTenant("tenantA", {.items_per_tenant = 10, .users_per_tenant = 2});
  ASSERT_TRUE(store.load(a).isOk());
  std::vector<std::string_view> ids{a.items[0].item_id, a.items[1].item_id};
  auto own = store.fetch("tenantA", "user-1", ids);
  ASSERT_TRUE(own.isOk());
  ASSERT_TRUE(own->user.has_value());
  EXPECT_EQ(*own->user, a.user_vectors[1]);
  ASSERT_TRUE(own->items[1].has_value());
  EXPECT_EQ(own->items[1]->embedding, a.item_features[1].embedding);
  auto other = store.fetch("tenantB", "user-1", ids);
  ASSERT_TRUE(other.isOk());
  EXPECT_FALSE(other->user.has_value());
  EXPECT_FALSE(other->items[0].has_value());
  EXPECT_FALSE(other->items[1].has_value());
}

// --feature-store accepts the documented forms and rejects the rest with a hint.
TEST(FeatureStoreUriTest, ParsesDocumentedForms) {
  auto memory = makeFeatureStore("memory", 25);
  ASSERT_TRUE(memory.isOk());
  EXPECT_EQ((*memory)->describe(), "memory");
  auto redis = makeFeatureStore("redis://127.0.0.1:6380", 25);
  ASSERT_TRUE(redis.isOk());
  EXPECT_EQ((*redis)->describe(), "redis://127.0.0.1:6380");
  auto unix_socket = makeFeatureStore("unix:///tmp/r.sock", 25);
  ASSERT_TRUE(unix_socket.isOk());
  EXPECT_EQ((*unix_socket)->describe(), "unix:///tmp/r.sock");
  EXPECT_FALSE(makeFeatureStore("redis://127.0.0.1:notaport", 25).isOk());
  auto bad = makeFeatureStore("memcached://x", 25);
  ASSERT_FALSE(bad.isOk());
  EXPECT_NE(bad.error().find("redis://HOST:PORT"), std::string::npos);
}

// A Redis that is not there fails fast, and later calls skip the network while marked down.
TEST(RedisFeatureStoreTest, UnreachableRedisFailsFastAndIsMarkedDown) {
  RedisStoreOptions options;
  options.port = 1;  // nothing listens on 127.0.0.1:1
  options.retry_after_failure_ms = 60'000;
  RedisFeatureStore store(options);
  std::vector<std::string_view> ids{"tenantA:item-1"};
  const auto start = std::chrono::steady_clock::now();
  auto first = store.fetch("tenantA", "user-1", ids);
  ASSERT_FALSE(first.isOk());
  EXPECT_NE(first.error().find("redis connect"), std::string::npos) << first.error();
  auto second = store.fetch("tenantA", "user-1", ids);
  ASSERT_FALSE(second.isOk());
  EXPECT_NE(second.error().find("marked down"), std::string::npos) << second.error();
  EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(500));
}

}  // namespace
}  // namespace bulwark::examples::ranking
