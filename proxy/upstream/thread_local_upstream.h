#pragma once

#include <map>
#include <memory>
#include <random>
#include <vector>

#include "proxy/event/dispatcher.h"
#include "proxy/upstream/conn_pool.h"
#include "proxy/upstream/upstream.h"

namespace bulwark::upstream {

/**
 * This worker's view of one upstream: a connection pool per host and the picker state.
 * Thread: owning worker.
 */
class ThreadLocalUpstream {
public:
  ThreadLocalUpstream(event::Dispatcher& dispatcher, UpstreamSharedPtr upstream);
  ~ThreadLocalUpstream();
  /** Picks a host for one attempt; nullptr when the upstream has none. */
  HostSharedPtr pickHost(std::mt19937_64& rng, const LbContext& ctx);
  ConnPool& poolFor(const HostSharedPtr& host);
  /**
   * Some attempt may still use these pools: the upstream has requests in flight (on any
   * worker; the counter is per Upstream object) or a pool has queued requests.
   */
  bool inUse() const;
  Upstream& upstream() { return *upstream_; }

private:
  event::Dispatcher& dispatcher_;
  UpstreamSharedPtr upstream_;
  uint64_t rr_cursor_ = 0;
  std::map<const Host*, ConnPoolPtr> pools_;
  std::vector<HostSharedPtr> pool_hosts_;  // keeps hosts alive as long as their pools
};

}  // namespace bulwark::upstream
