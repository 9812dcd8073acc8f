#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "common/result.h"
#include "examples/ranking/features.h"

namespace bulwark::examples::ranking {

/** What one ranking request reads from the feature store, in one round trip. */
struct FeatureBatch {
  // Empty when the user has no preference vector (cold start): the feed is then unpersonalised.
  std::optional<Embedding> user;
  // One entry per requested item, in request order; empty when the store has no features for it.
  std::vector<std::optional<ItemFeatures>> items;
};

/**
 * The ranker's feature store (Redis in the seed). Keys are namespaced by tenant, so a lookup for
 * one tenant can never return another tenant's features.
 * Thread: any; implementations are safe for concurrent fetch() calls.
 */
class FeatureStore {
public:
  virtual ~FeatureStore() = default;

  /**
   * Writes a tenant's seeded features. Called on main at start-up.
   * @return an error when the store cannot be written (e.g. Redis is down).
   */
  virtual Status load(const SeededTenant& tenant) = 0;

  /**
   * Reads the user's preference vector and the features of `item_ids`, all of tenant `tenant_id`.
   * Never blocks longer than the store's configured timeout.
   * @return the batch, or an error when the store is unreachable, slow or returns garbage; the
   * ranker then degrades instead of failing the request.
   */
  virtual Result<FeatureBatch> fetch(std::string_view tenant_id, std::string_view user_id,
                                     std::span<const std::string_view> item_ids) = 0;

  /** A one-line description for logs ("memory", "redis://127.0.0.1:6379"). */
  virtual std::string describe() const = 0;
};

using FeatureStorePtr = std::unique_ptr<FeatureStore>;

/** Options of the Redis-backed store. */
struct RedisStoreOptions {
  std::string host = "127.0.0.1";
  int port = 6379;
  std::string unix_path;  // used instead of host:port when non-empty
  int timeout_ms = 25;    // connect and per-command timeout
  int retry_after_failure_ms = 250;
  std::size_t pool_size = 8;
};

/**
 * Parses `memory`, `redis://HOST:PORT` or `unix:///path/to/redis.sock` into a store.
 * @return the store, or an error naming the accepted forms.
 */
Result<FeatureStorePtr> makeFeatureStore(const std::string& uri, int timeout_ms);

}  // namespace bulwark::examples::ranking
