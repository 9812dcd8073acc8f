#pragma once

#include <atomic>
#include <chrono>
#include <mutex>
#include <string>
#include <vector>

#include "examples/ranking/feature_store.h"

struct redisContext;

namespace bulwark::examples::ranking {

/**
 * Feature store in Redis (Debian's redis-server), read with hiredis' blocking API and a short
 * socket timeout. Layout: `ranking:{tenant}:u:{user}` holds the user's kEmbeddingDim floats and
 * `ranking:{tenant}:i:{item}` the item's floats followed by its popularity, raw little-endian
 * float32. One request is one MGET.
 *
 * After any failure (refused, timeout, protocol error) the store answers "down" without touching
 * the network for `retry_after_failure_ms`, so that an outage costs each request microseconds
 * (the degraded path) instead of one timeout each.
 * hiredis writes with write(2): the process must ignore SIGPIPE (ranking-server's main does), or
 * a Redis that dies between two requests kills it.
 * Thread: any; connections come from a mutex-guarded pool, one connection per in-flight fetch.
 */
class RedisFeatureStore : public FeatureStore {
public:
  explicit RedisFeatureStore(RedisStoreOptions options);
  ~RedisFeatureStore() override;

  // FeatureStore
  Status load(const SeededTenant& tenant) override;
  Result<FeatureBatch> fetch(std::string_view tenant_id, std::string_view user_id,
                             std::span<const std::string_view> item_ids) override;
  std::string describe() const override;

private:
  using Clock = std::chrono::steady_clock;

  Result<redisContext*> acquire(int timeout_ms);
  void release(redisContext* ctx, bool healthy);

  const RedisStoreOptions options_;
  std::mutex mu_;
  std::vector<redisContext*> idle_;  // guarded by mu_
  std::atomic<Clock::rep> down_until_{0};
};

}  // namespace bulwark::examples::ranking
