// recommendation-server as a process on loopback: API, tenancy, backpressure, rate limit, faults.
#include <stdlib.h>

#include <chrono>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "examples/common/testing/http_client.h"
#include "examples/common/testing/process.h"

namespace bulwark::examples::recommendation {
namespace {

using std::chrono::milliseconds;
using testing::HttpCallResult;
using testing::HttpOutcome;
using testing::httpRequest;

class RecommendationServerTest : public ::testing::Test {
protected:
  void start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--port",       "0",        "--control-port",     "0",
                                     "--replica-id", "rec-test", "--items-per-tenant", "2000"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto server = testing::spawnServer(RECOMMENDATION_SERVER_PATH, args);
    ASSERT_TRUE(server) << server.error();
    server_ = std::move(*server);
  }

  HttpCallResult call(const std::string& path, const std::string& tenant,
                      const nlohmann::json& body, milliseconds timeout = milliseconds(2000)) {
    testing::HttpHeaders headers = {{"Content-Type", "application/json"}};
    if (!tenant.empty()) {
      headers.emplace_back("X-Tenant-Id", tenant);
    }
    return httpRequest(server_.port, "POST", path, headers, body.dump(), timeout);
  }

  HttpCallResult recommend(const std::string& tenant = "demo", size_t k = 10) {
    return call("/v1/recommend", tenant, {{"surface", "home"}, {"user_id", "u-1"}, {"k", k}});
  }

  void faults(const std::string& json) {
    auto r = testing::setFaults(server_.control_port, json);
    ASSERT_EQ(r.response.status, 200) << r.detail << r.response.body;
  }

  // `n` concurrent recommend calls; returns their statuses and Retry-After values.
  std::vector<HttpCallResult> concurrent(int n) {
    std::vector<HttpCallResult> results(static_cast<size_t>(n));
    std::vector<std::thread> threads;
    for (int i = 0; i < n; ++i) {
      threads.emplace_back([&, i] { results[i] = recommend(); });
    }
    for (auto& t : threads) {
      t.join();
    }
    return results;
  }

  testing::SpawnedServer server_;
};

TEST_F(RecommendationServerTest, RecommendsAndFindsSimilarItems) {
  start();
  auto r = recommend("demo", 7);
  ASSERT_EQ(r.outcome, HttpOutcome::Ok) << r.detail;
  ASSERT_EQ(r.response.status, 200) << r.response.body;
  EXPECT_EQ(r.response.header("x-replica-id"), "rec-test");
  auto body = nlohmann::json::parse(r.response.body);
  ASSERT_EQ(body["items"].size(), 7u);
  for (size_t i = 1; i < 7; ++i) {
    EXPECT_GE(body["items"][i - 1]["score"].get<double>(), body["items"][i]["score"].get<double>());
  }
  const std::string first = body["items"][0]["item_id"];
  auto similar = call("/v1/similar", "demo", {{"surface", "pdp"}, {"item_id", first}, {"k", 5}});
  ASSERT_EQ(similar.response.status, 200) << similar.response.body;
  EXPECT_EQ(nlohmann::json::parse(similar.response.body)["items"].size(), 5u);
  EXPECT_EQ(httpRequest(server_.port, "GET", "/healthz").response.status, 200);
}

TEST_F(RecommendationServerTest, TenantIsRequiredAndIsolated) {
  start();
  EXPECT_EQ(recommend("").response.status, 401);
  EXPECT_EQ(recommend("nobody").response.status, 403);
  EXPECT_EQ(call("/v1/recommend", "tenantA",
                 {{"tenant", "tenantB"}, {"surface", "home"}, {"user_id", "u"}})
                .response.status,
            403);
  auto a = nlohmann::json::parse(recommend("tenantA", 50).response.body);
  for (const auto& item : a["items"]) {
    EXPECT_EQ(item["item_id"].get<std::string>().rfind("tenantA-item-", 0), 0u);
  }
  // tenantB cannot reach tenantA's items, even by id.
  auto cross = call("/v1/similar", "tenantB",
                    {{"surface", "pdp"}, {"item_id", a["items"][0]["item_id"]}, {"k", 5}});
  EXPECT_EQ(cross.response.status, 404);
  EXPECT_EQ(recommend("demo", 0).response.status, 400);
  EXPECT_EQ(call("/v1/recommend", "demo", {{"user_id", "u"}}).response.status, 400);
}

TEST_F(RecommendationServerTest, BackpressureAnswers503WithRetryAfter) {
  start({"--max-inflight", "1", "--max-queue", "1", "--fetch-latency-ms", "300", "--retry-after-s",
         "2"});
  auto results = concurrent(3);
  int ok = 0;
  int rejected = 0;
  for (const auto& r : results) {
    if (r.response.status == 200) {
      ++ok;
    }
    if (r.response.status == 503) {
      ++rejected;
      EXPECT_EQ(r.response.header("retry-after"), "2");
    }
  }
  EXPECT_EQ(ok, 2);  // one ran, one waited in the queue
  EXPECT_EQ(rejected, 1);
}

TEST_F(RecommendationServerTest, BackpressureLimitsComeFromTheSeedEnvironment) {
  setenv("RECSYS_BACKPRESSURE_MAX_INFLIGHT", "1", 1);
  setenv("RECSYS_BACKPRESSURE_MAX_QUEUE", "0", 1);
  start({"--fetch-latency-ms", "300"});
  unsetenv("RECSYS_BACKPRESSURE_MAX_INFLIGHT");
  unsetenv("RECSYS_BACKPRESSURE_MAX_QUEUE");
  auto results = concurrent(2);
  int rejected = 0;
  for (const auto& r : results) {
    rejected += r.response.status == 503 ? 1 : 0;
  }
  EXPECT_EQ(rejected, 1);
}

TEST_F(RecommendationServerTest, TenantRateLimitAnswers429WithRetryAfter) {
  start({"--tenant-rps", "1", "--tenant-burst", "2"});
  EXPECT_EQ(recommend("tenantA").response.status, 200);
  EXPECT_EQ(recommend("tenantA").response.status, 200);
  auto limited = recommend("tenantA");
  EXPECT_EQ(limited.response.status, 429);
  EXPECT_EQ(limited.response.header("retry-after"), "1");
  EXPECT_EQ(recommend("tenantB").response.status, 200);  // per tenant
}

TEST_F(RecommendationServerTest, FaultKnobsApplyAndTurnOff) {
  start();
  faults(R"({"error_rate": 1.0, "error_http_status": 429, "retry_after": "1"})");
  auto r = recommend();
  EXPECT_EQ(r.response.status, 429);
  EXPECT_EQ(r.response.header("retry-after"), "1");
  faults(R"({"hang_rate": 1.0})");
  auto hung =
      call("/v1/recommend", "demo", {{"surface", "home"}, {"user_id", "u"}}, milliseconds(300));
  EXPECT_EQ(hung.outcome, HttpOutcome::Timeout);
  faults(R"({"reset_rate": 1.0})");
  auto reset = recommend();
  EXPECT_TRUE(reset.outcome == HttpOutcome::ConnectionReset ||
              reset.outcome == HttpOutcome::ConnectionClosed)
      << testing::toString(reset.outcome);
  faults(R"({"latency_fixed_ms": 150})");
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_EQ(recommend().response.status, 200);
  EXPECT_GE(std::chrono::steady_clock::now() - t0, milliseconds(150));
  faults("{}");
  EXPECT_EQ(recommend().response.status, 200);
}

}  // namespace
}  // namespace bulwark::examples::recommendation
