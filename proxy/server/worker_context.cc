#include "proxy/server/worker_context.h"

namespace bulwark::server {

ThreadLocalUpstream::ThreadLocalUpstream(event::Dispatcher& dispatcher, upstream::UpstreamSharedPtr upstream)
    : dispatcher_(dispatcher), upstream_(std::move(upstream)) {}

ThreadLocalUpstream::~ThreadLocalUpstream() = default;

upstream::HostSharedPtr ThreadLocalUpstream::pickHost(std::mt19937_64& rng) {
  auto hosts = upstream_->hosts();
  if (!hosts || hosts->hosts.empty()) return nullptr;
  const auto& list = hosts->hosts;
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

upstream::ConnPool& ThreadLocalUpstream::poolFor(const upstream::HostSharedPtr& host) {
  auto it = pools_.find(host.get());
  if (it != pools_.end()) return *it->second;
  const auto& spec = upstream_->spec();
  upstream::ConnPoolSettings settings;
  settings.protocol = spec.protocol == config::UpstreamProtocol::Http1 ? upstream::PoolProtocol::Http1
                                                                       : upstream::PoolProtocol::Http2;
  settings.connect_timeout = spec.connection_pool.connect_timeout;
  settings.idle_timeout = spec.connection_pool.idle_timeout;
  settings.max_requests_per_connection = spec.connection_pool.max_requests_per_connection;
  settings.max_concurrent_streams = spec.connection_pool.max_concurrent_streams;
  settings.max_pending_requests = spec.connection_pool.max_pending_requests;
  auto pool = std::make_unique<upstream::ConnPool>(dispatcher_, host, *upstream_, settings);
  auto& ref = *pool;
  pools_.emplace(host.get(), std::move(pool));
  pool_hosts_.push_back(host);
  return ref;
}

void ThreadLocalUpstream::drain() {
  for (auto& [host, pool] : pools_) pool->drainConnections();
}

ThreadLocalUpstream& WorkerContext::upstreamFor(const upstream::UpstreamSharedPtr& upstream) {
  auto it = upstreams.find(upstream.get());
  if (it != upstreams.end()) return *it->second;
  auto tlu = std::make_unique<ThreadLocalUpstream>(dispatcher, upstream);
  auto& ref = *tlu;
  upstreams.emplace(upstream.get(), std::move(tlu));
  return ref;
}

void WorkerContext::onSnapshot(ConfigSnapshotConstSharedPtr new_snapshot) {
  snapshot = std::move(new_snapshot);
  for (auto it = upstreams.begin(); it != upstreams.end();) {
    bool live = false;
    for (const auto& [name, u] : snapshot->upstreams) {
      if (u.get() == it->first) live = true;
    }
    if (live) {
      ++it;
      continue;
    }
    // Removed upstream: its pools drain; in-flight attempts hold their own references.
    it->second->drain();
    struct Holder : event::DeferredDeletable {
      std::unique_ptr<ThreadLocalUpstream> tlu;
    };
    auto holder = std::make_unique<Holder>();
    holder->tlu = std::move(it->second);
    it = upstreams.erase(it);
    // Keep the pools around long enough for active streams; a generous fixed grace.
    dispatcher.deferredDelete(std::move(holder));
  }
}

}  // namespace bulwark::server
