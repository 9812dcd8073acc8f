#include "proxy/server/worker_context.h"

namespace bulwark::server {

namespace {
constexpr std::chrono::milliseconds kReapInterval{100};
// How long retired pools must stay unused before they are freed. inUse() turns false when the
// last attempt reported its result, but a finished attempt keeps a pointer to its upstream
// stream (the client codec, owned by the pool's connection) until its downstream stream ends,
// which for a flow-controlled HTTP/2 client is some loop iterations later; freeing the pool in
// that window is a use-after-free in UpstreamRequest::cancel(). The grace covers it.
constexpr std::chrono::milliseconds kRetireGrace{1000};
}  // namespace

upstream::ThreadLocalUpstream& WorkerContext::upstreamFor(
    const upstream::UpstreamSharedPtr& upstream) {
  auto it = upstreams.find(upstream.get());
  if (it != upstreams.end()) {
    return *it->second;
  }
  // An attempt of a request that started on an older snapshot (a retry after a reload) goes
  // on using that snapshot's pools.
  auto retired = retired_upstreams.find(upstream.get());
  if (retired != retired_upstreams.end()) {
    return *retired->second;
  }
  auto tlu = std::make_unique<upstream::ThreadLocalUpstream>(dispatcher, upstream);
  auto& ref = *tlu;
  bool live = snapshot == nullptr;
  if (snapshot) {
    for (const auto& [name, u] : snapshot->upstreams) {
      live = live || u.get() == upstream.get();
    }
  }
  if (live) {
    upstreams.emplace(upstream.get(), std::move(tlu));
  } else {
    retired_upstreams.emplace(upstream.get(), std::move(tlu));
    armReapTimer();
  }
  return ref;
}

namespace {
bool sameRedis(const config::RedisSpec& a, const config::RedisSpec& b) {
  return a.address == b.address && a.database == b.database && a.password == b.password &&
         a.timeout == b.timeout;
}
}  // namespace

void WorkerContext::onSnapshot(ConfigSnapshotConstSharedPtr new_snapshot) {
  snapshot = std::move(new_snapshot);
  if (!snapshot->spec.redis) {
    redis.reset();
  } else if (!redis || !sameRedis(redis->spec(), *snapshot->spec.redis)) {
    // Connects now, so /ready and the metrics tell whether Redis is reachable before traffic.
    redis = std::make_shared<redis::RedisClient>(dispatcher, *snapshot->spec.redis,
                                                 snapshot->redis_metrics);
  }
  for (auto it = upstreams.begin(); it != upstreams.end();) {
    bool live = false;
    for (const auto& [name, u] : snapshot->upstreams) {
      if (u.get() == it->first) {
        live = true;
      }
    }
    if (live) {
      ++it;
      continue;
    }
    // Routers of in-flight requests point into these pools (and their upstream connections
    // carry the responses): freeing them now would cut those requests. Retire instead. (Not
    // ConnPool::drainConnections(): it closes idle clients while iterating over them.)
    retired_upstreams.emplace(it->first, std::move(it->second));
    it = upstreams.erase(it);
  }
  reapRetiredUpstreams();
}

void WorkerContext::reapRetiredUpstreams() {
  const auto now = std::chrono::steady_clock::now();
  for (auto it = retired_upstreams.begin(); it != retired_upstreams.end();) {
    if (it->second->inUse()) {
      retired_unused_since.erase(it->first);
      ++it;
      continue;
    }
    auto since = retired_unused_since.try_emplace(it->first, now).first;
    if (now - since->second < kRetireGrace) {
      ++it;
      continue;
    }
    // Called from a timer or the mailbox, never from inside a pool's callbacks, so the pools
    // (and their idle connections) can go right away.
    retired_unused_since.erase(since);
    it = retired_upstreams.erase(it);
  }
  if (!retired_upstreams.empty()) {
    armReapTimer();
  }
}

void WorkerContext::armReapTimer() {
  if (!reap_timer) {
    reap_timer = dispatcher.createTimer([this] { reapRetiredUpstreams(); });
  }
  if (!reap_timer->enabled()) {
    reap_timer->enableTimer(kReapInterval);
  }
}

}  // namespace bulwark::server
