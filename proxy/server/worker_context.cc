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

bool ThreadLocalUpstream::inUse() const {
  if (upstream_->requests_active.load(std::memory_order_relaxed) > 0) return true;
  for (const auto& [host, pool] : pools_) {
    if (pool->pendingCount() > 0) return true;
  }
  return false;
}

namespace {
constexpr std::chrono::milliseconds kReapInterval{100};
}  // namespace

ThreadLocalUpstream& WorkerContext::upstreamFor(const upstream::UpstreamSharedPtr& upstream) {
  auto it = upstreams.find(upstream.get());
  if (it != upstreams.end()) return *it->second;
  // An attempt of a request that started on an older snapshot (a retry after a reload) goes
  // on using that snapshot's pools.
  auto retired = retired_upstreams.find(upstream.get());
  if (retired != retired_upstreams.end()) return *retired->second;
  auto tlu = std::make_unique<ThreadLocalUpstream>(dispatcher, upstream);
  auto& ref = *tlu;
  bool live = snapshot == nullptr;
  if (snapshot) {
    for (const auto& [name, u] : snapshot->upstreams) live = live || u.get() == upstream.get();
  }
  if (live) {
    upstreams.emplace(upstream.get(), std::move(tlu));
  } else {
    retired_upstreams.emplace(upstream.get(), std::move(tlu));
    armReapTimer();
  }
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
    // Routers of in-flight requests point into these pools (and their upstream connections
    // carry the responses): freeing them now would cut those requests. Retire instead. (Not
    // ConnPool::drainConnections(): it closes idle clients while iterating over them.)
    retired_upstreams.emplace(it->first, std::move(it->second));
    it = upstreams.erase(it);
  }
  reapRetiredUpstreams();
}

void WorkerContext::reapRetiredUpstreams() {
  for (auto it = retired_upstreams.begin(); it != retired_upstreams.end();) {
    if (it->second->inUse()) {
      ++it;
      continue;
    }
    // Called from a timer or the mailbox, never from inside a pool's callbacks, so the pools
    // (and their idle connections) can go right away.
    it = retired_upstreams.erase(it);
  }
  if (!retired_upstreams.empty()) armReapTimer();
}

void WorkerContext::armReapTimer() {
  if (!reap_timer) reap_timer = dispatcher.createTimer([this] { reapRetiredUpstreams(); });
  if (!reap_timer->enabled()) reap_timer->enableTimer(kReapInterval);
}

}  // namespace bulwark::server
