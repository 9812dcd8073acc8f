#include "examples/recommendation/recommender.h"

#include <set>

#include <gtest/gtest.h>

namespace bulwark::examples::recommendation {
namespace {

RecommenderOptions smallOptions() {
  RecommenderOptions options;
  options.items_per_tenant = 500;
  options.dimension = 16;
  return options;
}

TEST(RecommenderTest, TopKIsSortedAndComplete) {
  Recommender model(smallOptions());
  auto items = model.recommend("demo", "home", "user-1", 25);
  ASSERT_TRUE(items) << items.error();
  ASSERT_EQ(items->size(), 25u);
  std::set<std::string> ids;
  for (size_t i = 0; i < items->size(); ++i) {
    ids.insert((*items)[i].item_id);
    if (i > 0) {
      EXPECT_GE((*items)[i - 1].score, (*items)[i].score);
    }
  }
  EXPECT_EQ(ids.size(), 25u);
  // The top 10 are the first 10 of the top 25: the heap keeps exactly the best k.
  auto top10 = model.recommend("demo", "home", "user-1", 10);
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_EQ((*top10)[i].item_id, (*items)[i].item_id);
  }
}

TEST(RecommenderTest, TopKEqualsTheHeadOfAFullRanking) {
  RecommenderOptions options = smallOptions();
  options.items_per_tenant = 150;
  Recommender model(options);
  auto all = model.recommend("demo", "home", "user-9", 150);  // every item, fully ranked
  ASSERT_EQ(all->size(), 150u);
  for (size_t k : {1, 5, 20}) {
    auto top = model.recommend("demo", "home", "user-9", k);
    for (size_t i = 0; i < k; ++i) {
      EXPECT_EQ((*top)[i].item_id, (*all)[i].item_id) << k;
    }
  }
}

TEST(RecommenderTest, KIsCappedByTheCatalog) {
  RecommenderOptions options = smallOptions();
  options.items_per_tenant = 5;
  Recommender model(options);
  EXPECT_EQ(model.recommend("demo", "home", "u", 20)->size(), 5u);
  EXPECT_EQ(model.similar("demo", "home", "demo-item-00000", 20)->size(), 4u);
}

TEST(RecommenderTest, DeterministicAcrossInstancesAndPersonalised) {
  Recommender a(smallOptions());
  Recommender b(smallOptions());
  auto ra = a.recommend("demo", "home", "user-1", 10);
  auto rb = b.recommend("demo", "home", "user-1", 10);
  for (size_t i = 0; i < 10; ++i) {
    EXPECT_EQ((*ra)[i].item_id, (*rb)[i].item_id);
  }
  auto other_user = a.recommend("demo", "home", "user-2", 10);
  auto other_surface = a.recommend("demo", "cart", "user-1", 10);
  EXPECT_NE((*ra)[0].item_id + (*ra)[1].item_id,
            (*other_user)[0].item_id + (*other_user)[1].item_id);
  EXPECT_NE((*ra)[0].item_id + (*ra)[1].item_id,
            (*other_surface)[0].item_id + (*other_surface)[1].item_id);
}

TEST(RecommenderTest, TenantsNeverSeeEachOthersItems) {
  Recommender model(smallOptions());
  for (const std::string tenant : {"tenantA", "tenantB"}) {
    auto items = model.recommend(tenant, "home", "same-user", 50);
    ASSERT_TRUE(items);
    for (const auto& item : *items) {
      EXPECT_EQ(item.item_id.rfind(tenant + "-item-", 0), 0u);
    }
  }
  EXPECT_TRUE(model.hasItem("tenantA", "tenantA-item-00001"));
  EXPECT_FALSE(model.hasItem("tenantB", "tenantA-item-00001"));
  EXPECT_FALSE(model.similar("tenantB", "home", "tenantA-item-00001", 5));
  EXPECT_FALSE(model.recommend("tenantC", "home", "u", 5));
}

TEST(RecommenderTest, SimilarExcludesTheItemAndRanksByCosine) {
  Recommender model(smallOptions());
  auto items = model.similar("demo", "pdp", "demo-item-00042", 10);
  ASSERT_TRUE(items);
  ASSERT_EQ(items->size(), 10u);
  for (size_t i = 0; i < items->size(); ++i) {
    EXPECT_NE((*items)[i].item_id, "demo-item-00042");
    EXPECT_LE((*items)[i].score, 1.0001f);  // unit vectors: cosine
    if (i > 0) {
      EXPECT_GE((*items)[i - 1].score, (*items)[i].score);
    }
  }
}

TEST(RecommenderTest, RejectsBadK) {
  Recommender model(smallOptions());
  EXPECT_FALSE(model.recommend("demo", "home", "u", 0));
  EXPECT_FALSE(model.recommend("demo", "home", "u", Recommender::kMaxK + 1));
}

}  // namespace
}  // namespace bulwark::examples::recommendation
