#include "examples/ranking/redis_feature_store.h"

#include <cstring>

#include <hiredis.h>

#include "examples/ranking/in_memory_feature_store.h"

namespace bulwark::examples::ranking {
namespace {

// Seeding writes thousands of keys in one pipeline; give it more than the per-request timeout.
constexpr int kLoadTimeoutMs = 2000;

timeval toTimeval(int ms) {
  timeval tv{};
  tv.tv_sec = ms / 1000;
  tv.tv_usec = (ms % 1000) * 1000;
  return tv;
}

std::string userKey(std::string_view tenant, std::string_view user) {
  std::string k = "ranking:";
  k.append(tenant).append(":u:").append(user);
  return k;
}

std::string itemKey(std::string_view tenant, std::string_view item) {
  std::string k = "ranking:";
  k.append(tenant).append(":i:").append(item);
  return k;
}

std::string encodeItem(const ItemFeatures& f) {
  std::string out(sizeof(float) * (kEmbeddingDim + 1), '\0');
  std::memcpy(out.data(), f.embedding.data(), sizeof(float) * kEmbeddingDim);
  std::memcpy(out.data() + sizeof(float) * kEmbeddingDim, &f.popularity, sizeof(float));
  return out;
}

std::string encodeUser(const Embedding& e) {
  std::string out(sizeof(float) * kEmbeddingDim, '\0');
  std::memcpy(out.data(), e.data(), out.size());
  return out;
}

}  // namespace

RedisFeatureStore::RedisFeatureStore(RedisStoreOptions options) : options_(std::move(options)) {}

RedisFeatureStore::~RedisFeatureStore() {
  for (redisContext* ctx : idle_) {
    redisFree(ctx);
  }
}

std::string RedisFeatureStore::describe() const {
  if (!options_.unix_path.empty()) {
    return "unix://" + options_.unix_path;
  }
  return "redis://" + options_.host + ":" + std::to_string(options_.port);
}

Result<redisContext*> RedisFeatureStore::acquire(int timeout_ms) {
  {
    std::lock_guard lock(mu_);
    if (!idle_.empty()) {
      redisContext* ctx = idle_.back();
      idle_.pop_back();
      return ctx;
    }
  }
  if (Clock::now().time_since_epoch().count() < down_until_.load(std::memory_order_relaxed)) {
    return Status::error("feature store marked down after a recent failure");
  }
  const timeval tv = toTimeval(timeout_ms);
  redisContext* ctx = options_.unix_path.empty()
                          ? redisConnectWithTimeout(options_.host.c_str(), options_.port, tv)
                          : redisConnectUnixWithTimeout(options_.unix_path.c_str(), tv);
  if (ctx == nullptr) {
    return Status::error("redis: out of memory");
  }
  if (ctx->err != 0) {
    std::string message = std::string("redis connect: ") + ctx->errstr;
    release(ctx, false);
    return Status::error(std::move(message));
  }
  redisSetTimeout(ctx, tv);
  return ctx;
}

void RedisFeatureStore::release(redisContext* ctx, bool healthy) {
  if (healthy) {
    std::lock_guard lock(mu_);
    if (idle_.size() < options_.pool_size) {
      idle_.push_back(ctx);
      return;
    }
  } else {
    auto until = Clock::now() + std::chrono::milliseconds(options_.retry_after_failure_ms);
    down_until_.store(until.time_since_epoch().count(), std::memory_order_relaxed);
  }
  redisFree(ctx);
}

Status RedisFeatureStore::load(const SeededTenant& tenant) {
  auto acquired = acquire(kLoadTimeoutMs);
  if (!acquired) {
    return acquired.status();
  }
  redisContext* ctx = *acquired;
  redisSetTimeout(ctx, toTimeval(kLoadTimeoutMs));
  std::size_t pending = 0;
  auto append = [&](const std::string& key, const std::string& value) {
    const char* argv[3] = {"SET", key.data(), value.data()};
    const std::size_t lens[3] = {3, key.size(), value.size()};
    redisAppendCommandArgv(ctx, 3, argv, lens);
    ++pending;
  };
  for (std::size_t i = 0; i < tenant.items.size(); ++i) {
    append(itemKey(tenant.tenant_id, tenant.items[i].item_id), encodeItem(tenant.item_features[i]));
  }
  for (std::size_t j = 0; j < tenant.user_ids.size(); ++j) {
    append(userKey(tenant.tenant_id, tenant.user_ids[j]), encodeUser(tenant.user_vectors[j]));
  }
  Status status = Status::ok();
  for (std::size_t n = 0; n < pending; ++n) {
    void* raw = nullptr;
    if (redisGetReply(ctx, &raw) != REDIS_OK) {
      status = Status::error(std::string("redis load: ") + ctx->errstr);
      break;
    }
    auto* reply = static_cast<redisReply*>(raw);
    const bool failed = reply->type == REDIS_REPLY_ERROR;
    if (failed && status) {
      status = Status::error(std::string("redis load: ") + std::string(reply->str, reply->len));
    }
    freeReplyObject(reply);
  }
  redisSetTimeout(ctx, toTimeval(options_.timeout_ms));
  release(ctx, status.isOk());
  return status;
}

Result<FeatureBatch> RedisFeatureStore::fetch(std::string_view tenant_id, std::string_view user_id,
                                              std::span<const std::string_view> item_ids) {
  auto acquired = acquire(options_.timeout_ms);
  if (!acquired) {
    return acquired.status();
  }
  redisContext* ctx = *acquired;
  std::vector<std::string> keys;
  keys.reserve(item_ids.size() + 1);
  keys.push_back(userKey(tenant_id, user_id));
  for (std::string_view id : item_ids) {
    keys.push_back(itemKey(tenant_id, id));
  }
  std::vector<const char*> argv;
  std::vector<std::size_t> lens;
  argv.reserve(keys.size() + 1);
  lens.reserve(keys.size() + 1);
  argv.push_back("MGET");
  lens.push_back(4);
  for (const auto& k : keys) {
    argv.push_back(k.data());
    lens.push_back(k.size());
  }
  auto* reply = static_cast<redisReply*>(
      redisCommandArgv(ctx, static_cast<int>(argv.size()), argv.data(), lens.data()));
  if (reply == nullptr) {
    std::string message = std::string("redis MGET: ") + ctx->errstr;
    release(ctx, false);
    return Status::error(std::move(message));
  }
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != keys.size()) {
    freeReplyObject(reply);
    release(ctx, false);
    return Status::error("redis MGET: unexpected reply shape");
  }
  FeatureBatch batch;
  batch.items.resize(item_ids.size());
  const redisReply* user = reply->element[0];
  if (user->type == REDIS_REPLY_STRING && user->len == sizeof(float) * kEmbeddingDim) {
    Embedding e{};
    std::memcpy(e.data(), user->str, sizeof(float) * kEmbeddingDim);
    batch.user = e;
  }
  for (std::size_t i = 0; i < item_ids.size(); ++i) {
    const redisReply* item = reply->element[i + 1];
    if (item->type == REDIS_REPLY_STRING && item->len == sizeof(float) * (kEmbeddingDim + 1)) {
      ItemFeatures f;
      std::memcpy(f.embedding.data(), item->str, sizeof(float) * kEmbeddingDim);
      std::memcpy(&f.popularity, item->str + sizeof(float) * kEmbeddingDim, sizeof(float));
      batch.items[i] = f;
    }
  }
  freeReplyObject(reply);
  release(ctx, true);
  return batch;
}

Result<FeatureStorePtr> makeFeatureStore(const std::string& uri, int timeout_ms) {
  if (uri.empty() || uri == "memory") {
    return FeatureStorePtr(std::make_unique<InMemoryFeatureStore>());
  }
  RedisStoreOptions options;
  options.timeout_ms = timeout_ms;
  constexpr std::string_view kRedis = "redis://";
  constexpr std::string_view kUnix = "unix://";
  if (uri.starts_with(kUnix) && uri.size() > kUnix.size()) {
    options.unix_path = uri.substr(kUnix.size());
    return FeatureStorePtr(std::make_unique<RedisFeatureStore>(std::move(options)));
  }
  if (uri.starts_with(kRedis)) {
    std::string hostport = uri.substr(kRedis.size());
    if (!hostport.empty() && hostport.back() == '/') {
      hostport.pop_back();
    }
    auto colon = hostport.rfind(':');
    if (colon != std::string::npos && colon > 0) {
      options.host = hostport.substr(0, colon);
      const std::string port = hostport.substr(colon + 1);
      char* end = nullptr;
      long p = std::strtol(port.c_str(), &end, 10);
      if (port.empty() || *end != '\0' || p <= 0 || p > 65535) {
        return Status::error("--feature-store: bad port in '" + uri + "'");
      }
      options.port = static_cast<int>(p);
    } else if (!hostport.empty()) {
      options.host = hostport;
    }
    return FeatureStorePtr(std::make_unique<RedisFeatureStore>(std::move(options)));
  }
  return Status::error(
      "--feature-store: expected 'memory', 'redis://HOST:PORT' or "
      "'unix:///path/redis.sock', got '" +
      uri + "'");
}

}  // namespace bulwark::examples::ranking
