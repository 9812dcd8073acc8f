#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <memory>
#include <random>

#include "proxy/event/dispatcher.h"
#include "proxy/redis/redis_client.h"
#include "proxy/router/router_context.h"
#include "proxy/server/config_snapshot.h"
#include "proxy/server/overload_manager.h"
#include "proxy/stats/stats.h"
#include "proxy/upstream/conn_pool.h"
#include "proxy/upstream/thread_local_upstream.h"

namespace bulwark::server {

/** Per-worker state shared by all connections of the worker. Thread: owning worker. */
struct WorkerContext : public router::RouterContext {
  WorkerContext(event::Dispatcher& d, stats::Stats& s, uint32_t index)
      : RouterContext(d, std::random_device{}() ^ (uint64_t{index} << 32)),
        stats(s),
        worker_index(index) {}

  upstream::ThreadLocalUpstream& upstreamFor(const upstream::UpstreamSharedPtr& upstream) override;
  /**
   * Installs a new snapshot. Per-upstream state of upstreams no longer in it is retired: kept
   * until no attempt uses its pools any more (in-flight requests finish on the old snapshot),
   * then freed, which closes its idle connections.
   */
  void onSnapshot(ConfigSnapshotConstSharedPtr snapshot);
  /** Frees retired upstream state nobody uses; re-arms the check while some remain. */
  void reapRetiredUpstreams();
  void armReapTimer();

  stats::Stats& stats;
  uint32_t worker_index;
  ConfigSnapshotConstSharedPtr snapshot;
  bool draining = false;
  uint64_t active_streams = 0;
  std::shared_ptr<std::atomic<uint64_t>> global_active_streams;  // all workers, for drain
  OverloadSignalsSharedPtr overload;  // runtime.overload's action states (null in unit tests)
  std::map<const upstream::Upstream*, std::unique_ptr<upstream::ThreadLocalUpstream>> upstreams;
  // Dropped by a reload, still serving attempts that started on the old snapshot. Keyed like
  // `upstreams`; an entry keeps its Upstream alive, so the key cannot be reused meanwhile.
  std::map<const upstream::Upstream*, std::unique_ptr<upstream::ThreadLocalUpstream>>
      retired_upstreams;
  // When each retired entry was first seen unused (see kRetireGrace in worker_context.cc).
  std::map<const upstream::Upstream*, std::chrono::steady_clock::time_point> retired_unused_since;
  event::TimerPtr reap_timer;
  // This worker's shared-state connection (config `redis`), replaced when its settings change;
  // requests that started with the old one keep it alive until they finish.
  redis::RedisClientSharedPtr redis;
};

}  // namespace bulwark::server
