#pragma once

#include <map>
#include <memory>
#include <random>
#include <vector>

#include "policies/lb/load_balancer.h"
#include "policies/random.h"
#include "proxy/event/dispatcher.h"
#include "proxy/upstream/conn_pool.h"
#include "proxy/upstream/upstream.h"
#include "proxy/upstream/worker_upstream.h"

namespace bulwark::upstream {

/**
 * This worker's view of one upstream: a connection pool per host and this worker's picker.
 * The picker is rebuilt from the upstream's LbSnapshot whenever the main thread published a new
 * host set (Envoy: "every time there is a host set update ... all workers create a new worker
 * local load balancer"). Health and ejection flips need no rebuild: pickers read the hosts'
 * atomics on every pick.
 * Thread: owning worker.
 */
class ThreadLocalUpstream : public WorkerUpstream {
public:
  ThreadLocalUpstream(event::Dispatcher& dispatcher, UpstreamSharedPtr upstream);
  ~ThreadLocalUpstream() override;
  /**
   * Picks a host for one attempt with the upstream's load balancer, skipping unhealthy and
   * ejected hosts (unless in panic mode) and, while another host is eligible, hosts in
   * ctx.attempted. nullptr when the upstream has no host at all.
   * With circuitBreaker.perHost, hosts whose breaker is open are skipped like ejected ones; the
   * picked host's breaker must admit the attempt of ctx.permit (Upstream::admitHost) or another
   * host is picked. Outside panic mode, nullptr when
   * every usable host refuses.
   * @param rng the worker's generator; seeds this worker's picker once.
   */
  HostSharedPtr pickHost(std::mt19937_64& rng, const LbContext& ctx) override;
  ConnPool& poolFor(const HostSharedPtr& host) override;
  /**
   * Catches up with the upstream's host set: rebuilds the picker and drains (then frees) pools of
   * hosts no longer in the set. pickHost() calls it; a worker timer may call it too so that idle
   * connections to removed hosts close without waiting for traffic.
   */
  void refresh();
  /**
   * Some attempt may still use these pools: the upstream has requests in flight (on any
   * worker; the counter is per Upstream object) or a pool has queued requests.
   */
  bool inUse() const;
  Upstream& upstream() { return *upstream_; }

private:
  // Bounds the picks of one attempt when host breakers refuse (HALF_OPEN with probes out).
  static constexpr size_t kMaxBreakerRepicks = 16;

  HostSharedPtr repickAfterBreakerRefusal(uint32_t refused, policies::lb::LbContext& lb_ctx,
                                          AttemptPermit* permit);

  event::Dispatcher& dispatcher_;
  UpstreamSharedPtr upstream_;
  std::unique_ptr<policies::SeededRandom> random_;  // created on the first pick from the worker rng
  LbSnapshotConstSharedPtr snapshot_;
  policies::lb::LbPickerPtr picker_;
  uint64_t fallback_cursor_ = 0;  // round robin when the snapshot has no balancer
  std::vector<uint32_t> attempted_scratch_;
  std::vector<uint32_t> refused_scratch_;
  std::map<const Host*, ConnPoolPtr> pools_;
  std::map<const Host*, HostSharedPtr> pool_hosts_;  // keeps hosts alive as long as their pools
};

}  // namespace bulwark::upstream
