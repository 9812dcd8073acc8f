#include "proxy/upstream/thread_local_upstream.h"

#include <algorithm>

#include "policies/outlier/outlier_detector.h"

namespace bulwark::upstream {

ThreadLocalUpstream::ThreadLocalUpstream(event::Dispatcher& dispatcher, UpstreamSharedPtr upstream)
    : dispatcher_(dispatcher), upstream_(std::move(upstream)) {}

ThreadLocalUpstream::~ThreadLocalUpstream() {
  // The picker references random_; destroy it first.
  picker_.reset();
}

void ThreadLocalUpstream::refresh() {
  auto current = upstream_->lbSnapshot();
  if (current == snapshot_) {
    return;
  }
  snapshot_ = std::move(current);
  picker_.reset();
  if (snapshot_ && snapshot_->balancer && random_) {
    picker_ = snapshot_->balancer->createPicker(*random_);
  }
  // Connections to hosts that left the set drain: no new streams, closed once idle. A pool is
  // freed once it holds nothing (no connection, no queued request), so no attempt refers to it.
  for (auto it = pools_.begin(); it != pools_.end();) {
    bool in_set = snapshot_ && snapshot_->hosts->index.contains(it->first);
    if (!in_set) {
      it->second->drainConnections();
      if (it->second->connectionCount() == 0 && it->second->pendingCount() == 0) {
        // Deferred: a connection closed in this loop iteration is itself deferred-deleted and
        // touches its pool on destruction; the dispatcher destroys in the order deferred.
        struct Holder : event::DeferredDeletable {
          ConnPoolPtr pool;
          HostSharedPtr host;
        };
        auto holder = std::make_unique<Holder>();
        holder->pool = std::move(it->second);
        holder->host = pool_hosts_[it->first];
        pool_hosts_.erase(it->first);
        it = pools_.erase(it);
        dispatcher_.deferredDelete(std::move(holder));
        continue;
      }
    }
    ++it;
  }
}

HostSharedPtr ThreadLocalUpstream::pickHost(std::mt19937_64& rng, const LbContext& ctx) {
  if (!random_) {
    random_ = std::make_unique<policies::SeededRandom>(rng());
  }
  refresh();
  if (!snapshot_ || snapshot_->hosts->hosts.empty()) {
    return nullptr;
  }
  const auto& hosts = snapshot_->hosts->hosts;
  if (!picker_ && snapshot_->balancer) {
    picker_ = snapshot_->balancer->createPicker(*random_);
  }
  if (!picker_) {
    return hosts[fallback_cursor_++ % hosts.size()];
  }
  // The router names hosts by pointer; the picker wants indices into this snapshot. A host
  // tried on an older snapshot and gone since simply does not appear.
  attempted_scratch_.clear();
  for (const Host* tried : ctx.attempted) {
    auto it = snapshot_->hosts->index.find(tried);
    if (it != snapshot_->hosts->index.end()) {
      attempted_scratch_.push_back(it->second);
    }
  }
  policies::lb::LbContext lb_ctx;
  lb_ctx.hash_key = ctx.hash_key;
  lb_ctx.attempted = attempted_scratch_;
  lb_ctx.now = dispatcher_.now();
  const bool per_host_breakers = !snapshot_->host_breakers.empty();
  if (per_host_breakers) {
    upstream_->releaseDueHostBreakers(lb_ctx.now);
  }
  auto index = picker_->pick(lb_ctx);
  if (!index || *index >= hosts.size()) {
    return nullptr;
  }
  if (!per_host_breakers || upstream_->admitHost(*snapshot_, *index, ctx.permit)) {
    return hosts[*index];
  }
  return repickAfterBreakerRefusal(*index, lb_ctx, ctx.permit);
}

HostSharedPtr ThreadLocalUpstream::repickAfterBreakerRefusal(uint32_t refused,
                                                             policies::lb::LbContext& lb_ctx,
                                                             AttemptPermit* permit) {
  const auto& hosts = snapshot_->hosts->hosts;
  // In panic mode a host out of rotation serves like any other (Envoy's healthy_panic_threshold
  // for ejected hosts): traffic spread over all hosts beats piling it on the few survivors.
  auto available = static_cast<size_t>(std::count_if(
      hosts.begin(), hosts.end(), [](const HostSharedPtr& h) { return h->available(); }));
  if (policies::inPanicMode(available, hosts.size(),
                            upstream_->lbConfig().panic_threshold_percent)) {
    return hosts[refused];
  }
  // Otherwise another host: the picker avoids `attempted` while another host is eligible, so
  // it returns a refused host again only when nothing else is left.
  refused_scratch_.assign(1, refused);
  const size_t max_picks = std::min<size_t>(hosts.size(), kMaxBreakerRepicks);
  for (size_t picks = 1; picks < max_picks; ++picks) {
    attempted_scratch_.push_back(refused);
    lb_ctx.attempted = attempted_scratch_;
    auto index = picker_->pick(lb_ctx);
    if (!index || *index >= hosts.size()) {
      return nullptr;
    }
    if (std::find(refused_scratch_.begin(), refused_scratch_.end(), *index) !=
        refused_scratch_.end()) {
      break;
    }
    if (upstream_->admitHost(*snapshot_, *index, permit)) {
      return hosts[*index];
    }
    refused = *index;
    refused_scratch_.push_back(refused);
  }
  return nullptr;  // every host this attempt could use refuses: no_healthy_upstream
}

ConnPool& ThreadLocalUpstream::poolFor(const HostSharedPtr& host) {
  auto it = pools_.find(host.get());
  if (it != pools_.end()) {
    return *it->second;
  }
  const auto& spec = upstream_->spec();
  ConnPoolSettings settings;
  settings.protocol =
      spec.protocol == config::UpstreamProtocol::Http1 ? PoolProtocol::Http1 : PoolProtocol::Http2;
  settings.connect_timeout = spec.connection_pool.connect_timeout;
  settings.idle_timeout = spec.connection_pool.idle_timeout;
  settings.max_requests_per_connection = spec.connection_pool.max_requests_per_connection;
  settings.max_concurrent_streams = spec.connection_pool.max_concurrent_streams;
  auto pool = std::make_unique<ConnPool>(dispatcher_, host, *upstream_, settings);
  auto& ref = *pool;
  pools_.emplace(host.get(), std::move(pool));
  pool_hosts_.emplace(host.get(), host);
  return ref;
}

bool ThreadLocalUpstream::inUse() const {
  if (upstream_->activeRequests() > 0) {
    return true;
  }
  for (const auto& [host, pool] : pools_) {
    if (pool->pendingCount() > 0) {
      return true;
    }
  }
  return false;
}

}  // namespace bulwark::upstream
