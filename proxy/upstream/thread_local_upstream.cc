#include "proxy/upstream/thread_local_upstream.h"

namespace bulwark::upstream {

ThreadLocalUpstream::ThreadLocalUpstream(event::Dispatcher& dispatcher, UpstreamSharedPtr upstream)
    : dispatcher_(dispatcher), upstream_(std::move(upstream)) {}

ThreadLocalUpstream::~ThreadLocalUpstream() = default;

HostSharedPtr ThreadLocalUpstream::pickHost(std::mt19937_64& rng, const LbContext& ctx) {
  auto hosts = upstream_->hosts();
  if (!hosts || hosts->hosts.empty()) return nullptr;
  // A retry avoids hosts already tried when another one exists (h2o's "tried" set).
  std::vector<HostSharedPtr> fresh;
  if (!ctx.attempted.empty()) {
    for (const auto& h : hosts->hosts) {
      bool tried = false;
      for (const Host* t : ctx.attempted) tried = tried || t == h.get();
      if (!tried) fresh.push_back(h);
    }
  }
  const auto& list = fresh.empty() ? hosts->hosts : fresh;
  switch (upstream_->spec().load_balancer.policy) {
    case config::LbPolicy::Random: {
      uint64_t total = 0;
      for (const auto& h : list) total += h->weight;
      uint64_t r = rng() % total;
      for (const auto& h : list) {
        if (r < h->weight) return h;
        r -= h->weight;
      }
      return list.back();
    }
    case config::LbPolicy::LeastRequest: {
      // Power of two choices over active requests weighted by host weight (Envoy).
      auto a = list[rng() % list.size()];
      auto b = list[rng() % list.size()];
      double la = static_cast<double>(a->active_requests.load(std::memory_order_relaxed)) / a->weight;
      double lb = static_cast<double>(b->active_requests.load(std::memory_order_relaxed)) / b->weight;
      return la <= lb ? a : b;
    }
    default: {
      // Weighted round robin by expanding weights over the cursor (weights are small integers).
      uint64_t total = 0;
      for (const auto& h : list) total += h->weight;
      uint64_t slot = rr_cursor_++ % total;
      for (const auto& h : list) {
        if (slot < h->weight) return h;
        slot -= h->weight;
      }
      return list.back();
    }
  }
}

ConnPool& ThreadLocalUpstream::poolFor(const HostSharedPtr& host) {
  auto it = pools_.find(host.get());
  if (it != pools_.end()) return *it->second;
  const auto& spec = upstream_->spec();
  ConnPoolSettings settings;
  settings.protocol = spec.protocol == config::UpstreamProtocol::Http1 ? PoolProtocol::Http1
                                                                       : PoolProtocol::Http2;
  settings.connect_timeout = spec.connection_pool.connect_timeout;
  settings.idle_timeout = spec.connection_pool.idle_timeout;
  settings.max_requests_per_connection = spec.connection_pool.max_requests_per_connection;
  settings.max_concurrent_streams = spec.connection_pool.max_concurrent_streams;
  settings.max_pending_requests = spec.connection_pool.max_pending_requests;
  auto pool = std::make_unique<ConnPool>(dispatcher_, host, *upstream_, settings);
  auto& ref = *pool;
  pools_.emplace(host.get(), std::move(pool));
  pool_hosts_.push_back(host);
  return ref;
}

bool ThreadLocalUpstream::inUse() const {
  if (upstream_->requests_active.load(std::memory_order_relaxed) > 0) return true;
  for (const auto& [host, pool] : pools_) {
    if (pool->pendingCount() > 0) return true;
  }
  return false;
}

}  // namespace bulwark::upstream
