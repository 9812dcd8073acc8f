#include "proxy/config/effective_json.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "proxy/config/parser.h"
#include "tests/unit/proxy/config/full_schema.h"
#include "tests/unit/proxy/config/test_util.h"

namespace bulwark::config {
namespace {

using nlohmann::json;

// The effective config uses schema names and spellings, with inheritance resolved.
TEST(EffectiveJsonTest, ShowsResolvedConfigInSchemaNames) {
  LoadResult result = loadConfigFile(test::dataPath("good/edge.yaml"));
  ASSERT_TRUE(result.ok());
  const json j = toJson(*result.config);
  EXPECT_EQ(j["apiVersion"], "bulwark.dev/v1alpha1");
  EXPECT_EQ(j["kind"], "ProxyConfig");
  EXPECT_EQ(j["metadata"]["name"], "edge");
  EXPECT_EQ(j["runtime"]["concurrency"], "auto");
  EXPECT_EQ(j["runtime"]["drain"]["minDuration"], "5s");
  EXPECT_EQ(j["listeners"][0]["protocol"], "auto");
  EXPECT_EQ(j["listeners"][0]["limits"]["idleTimeout"], "1m30s");
  EXPECT_EQ(j["listeners"][0]["limits"]["maxRequestBodyBytes"], uint64_t{1} << 30);
  EXPECT_EQ(j["listeners"][1]["routes"].size(), 4u);
  EXPECT_EQ(j["upstreams"][0]["protocol"], "grpc");
  EXPECT_EQ(j["upstreams"][0]["loadBalancer"]["simple"], "LEAST_REQUEST");
  EXPECT_EQ(j["upstreams"][0]["endpoints"]["static"][1]["weight"], 2);
  EXPECT_EQ(j["upstreams"][0]["connectionPool"]["tcp"]["connectTimeout"], "250ms");
  const json& create = j["routes"][1];
  EXPECT_EQ(create["name"], "task-create");
  EXPECT_EQ(create["match"]["path"]["prefix"], "/v1/tasks");
  EXPECT_EQ(create["timeouts"]["request"], "3s");
  // Inherited from defaults and shown on the route.
  EXPECT_EQ(create["retries"]["backoff"]["maxInterval"], "250ms");
  EXPECT_EQ(create["retries"]["nonIdempotent"], "never");
  EXPECT_FALSE(create.contains("bulkhead"));
  EXPECT_EQ(j["routes"][0]["match"]["grpc"]["service"], "ranking.v1.RankingService");
  EXPECT_EQ(j["routes"][3]["timeouts"]["idle"], "1m");
}

/** toJson output is a config file: loading it again gives the same effective config. */
void expectRoundTrip(const LoadResult& first) {
  ASSERT_TRUE(first.ok()) << ::testing::PrintToString(test::formatted(first));
  const json j = toJson(*first.config);
  LoadResult second = test::loadText(j.dump(2));
  ASSERT_TRUE(second.ok()) << ::testing::PrintToString(test::formatted(second)) << j.dump(2);
  EXPECT_EQ(toJson(*second.config), j);
}

// The effective JSON of the edge example loads back to itself.
TEST(EffectiveJsonTest, EdgeExampleRoundTrips) {
  expectRoundTrip(loadConfigFile(test::dataPath("good/edge.yaml")));
}

// The effective JSON of every block of the schema loads back to itself.
TEST(EffectiveJsonTest, FullSchemaRoundTrips) {
  expectRoundTrip(test::loadText(test::kFullSchemaYaml));
}

}  // namespace
}  // namespace bulwark::config
