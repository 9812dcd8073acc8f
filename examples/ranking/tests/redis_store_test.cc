// Integration test with a real Redis (Debian's redis-server) as the feature store.
#include <signal.h>
#include <stdlib.h>

#include <chrono>
#include <filesystem>
#include <thread>

#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>
#include <hiredis.h>

#include "examples/common/testing/process.h"
#include "examples/ranking/catalog.h"
#include "examples/ranking/in_memory_feature_store.h"
#include "examples/ranking/ranker.h"
#include "ranking.grpc.pb.h"

namespace bulwark::examples::ranking {
namespace {

using namespace std::chrono_literals;

constexpr char kRedisServer[] = "/usr/bin/redis-server";

// redis-server prints no parseable "ready" line; ready means a PING on its socket succeeds.
bool waitForRedis(const std::string& socket_path, std::chrono::milliseconds timeout) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    timeval tv{0, 100'000};
    redisContext* c = redisConnectUnixWithTimeout(socket_path.c_str(), tv);
    if (c != nullptr && c->err == 0) {
      auto* reply = static_cast<redisReply*>(redisCommand(c, "PING"));
      const bool ok = reply != nullptr && reply->type == REDIS_REPLY_STATUS;
      if (reply != nullptr) {
        freeReplyObject(reply);
      }
      redisFree(c);
      if (ok) {
        return true;
      }
    } else if (c != nullptr) {
      redisFree(c);
    }
    std::this_thread::sleep_for(10ms);  // bounded poll: redis needs a few ms to bind
  }
  return false;
}

// The feed the ranker computes in process with the in-memory store: what every store must give.
std::vector<std::string> referenceFeed(const std::string& tenant, const std::string& user) {
  Catalog catalog;
  InMemoryFeatureStore store;
  ModelRuntime model({.cost = std::chrono::microseconds(0), .jitter_sigma = 0});
  auto seeded = seedTenant(tenant, {});
  catalog.addTenant(tenant, seeded.items);
  EXPECT_TRUE(store.load(seeded).isOk());
  Ranker ranker(catalog, store, model, {});
  auto result = ranker.rank(tenant, user, 20);
  std::vector<std::string> ids;
  for (const auto& item : result->items) {
    ids.push_back(item.item_id);
  }
  return ids;
}

// Seeded into Redis, the server ranks exactly as with the in-memory store; when Redis dies the
// feed degrades instead of failing.
TEST(RedisFeatureStoreIntegrationTest, RanksFromRedisAndDegradesWhenItDies) {
  if (!std::filesystem::exists(kRedisServer)) {
    GTEST_SKIP() << "redis-server is not installed";
  }
  char dir_template[] = "/tmp/ranking-redis-XXXXXX";
  ASSERT_NE(mkdtemp(dir_template), nullptr);
  const std::string dir = dir_template;
  const std::string socket_path = dir + "/redis.sock";
  auto redis = testing::ChildProcess::spawn(
      kRedisServer, {"--port", "0", "--unixsocket", socket_path, "--save", "", "--appendonly", "no",
                     "--dir", dir, "--loglevel", "warning", "--enable-debug-command", "local"});
  ASSERT_TRUE(redis.isOk()) << redis.error();
  ASSERT_TRUE(waitForRedis(socket_path, 3s));

  auto server = testing::ChildProcess::spawn(
      RANKING_SERVER_PATH,
      {"--port", "0", "--control-port", "-1", "--feature-store", "unix://" + socket_path});
  ASSERT_TRUE(server.isOk()) << server.error();
  auto port = (*server)->waitForListeningPort();
  ASSERT_TRUE(port.isOk()) << port.error();
  auto stub = ::ranking::v1::RankingService::NewStub(grpc::CreateChannel(
      "127.0.0.1:" + std::to_string(*port), grpc::InsecureChannelCredentials()));

  auto call = [&stub](::ranking::v1::RankResponse& resp) {
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + 2s);
    ::ranking::v1::RankRequest req;
    req.set_tenant_id("tenantB");
    req.set_user_id("user-9");
    return stub->Rank(&ctx, req, &resp);
  };
  ::ranking::v1::RankResponse resp;
  auto status = call(resp);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_FALSE(resp.degraded());
  std::vector<std::string> ids;
  for (const auto& item : resp.items()) {
    ids.push_back(item.item_id());
  }
  EXPECT_EQ(ids, referenceFeed("tenantB", "user-9"));

  // A slow Redis (blocked for 1 s) degrades the feed after the 25 ms store timeout, and the
  // personalised feed comes back once Redis answers again.
  redisContext* blocker = redisConnectUnix(socket_path.c_str());
  ASSERT_TRUE(blocker != nullptr && blocker->err == 0);
  redisAppendCommand(blocker, "DEBUG SLEEP 1");
  int done = 0;
  while (done == 0) {
    ASSERT_EQ(redisBufferWrite(blocker, &done), REDIS_OK);
  }
  // Redis is busy once a PING on another connection times out.
  bool busy = false;
  for (int attempt = 0; attempt < 20 && !busy; ++attempt) {
    redisContext* probe = redisConnectUnixWithTimeout(socket_path.c_str(), timeval{0, 50'000});
    if (probe != nullptr && probe->err == 0) {
      redisSetTimeout(probe, timeval{0, 50'000});
      auto* reply = static_cast<redisReply*>(redisCommand(probe, "PING"));
      busy = reply == nullptr;
      if (reply != nullptr) {
        freeReplyObject(reply);
      }
    } else {
      busy = true;  // a connect that times out also means the event loop is blocked
    }
    if (probe != nullptr) {
      redisFree(probe);
    }
  }
  ASSERT_TRUE(busy);
  resp.Clear();
  status = call(resp);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(resp.degraded());
  void* blocker_reply = nullptr;
  ASSERT_EQ(redisGetReply(blocker, &blocker_reply), REDIS_OK);  // the sleep is over
  freeReplyObject(blocker_reply);
  redisFree(blocker);
  bool recovered = false;
  const auto recover_deadline = std::chrono::steady_clock::now() + 2s;
  while (!recovered && std::chrono::steady_clock::now() < recover_deadline) {
    resp.Clear();
    ASSERT_TRUE(call(resp).ok());
    recovered = !resp.degraded();
  }
  EXPECT_TRUE(recovered);

  (*redis)->sendSignal(SIGKILL);
  ASSERT_TRUE((*redis)->waitExit(2s).has_value());
  resp.Clear();
  status = call(resp);
  ASSERT_TRUE(status.ok()) << status.error_message();
  EXPECT_TRUE(resp.degraded());
  EXPECT_EQ(resp.items(0).item_id(), "tenantB:item-4999");
  std::filesystem::remove_all(dir);
}

}  // namespace
}  // namespace bulwark::examples::ranking
