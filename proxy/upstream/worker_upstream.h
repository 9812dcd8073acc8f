#pragma once

#include <random>

#include "proxy/upstream/host.h"
#include "proxy/upstream/stream_pool.h"
#include "proxy/upstream/upstream.h"

namespace bulwark::upstream {

/**
 * What an attempt asks of this worker's view of one upstream: a host to send to, and the pool of
 * streams to that host. ThreadLocalUpstream implements it; router tests give a fake with scripted
 * hosts and pools. Thread: owning worker.
 */
class WorkerUpstream {
public:
  virtual ~WorkerUpstream() = default;

  /**
   * Picks a host for one attempt, avoiding ctx.attempted while another host is eligible.
   * nullptr when no host can take the attempt.
   * @param rng the worker's generator.
   */
  virtual HostSharedPtr pickHost(std::mt19937_64& rng, const LbContext& ctx) = 0;
  /** The pool of streams to `host` (a host pickHost() returned). */
  virtual StreamPool& poolFor(const HostSharedPtr& host) = 0;
};

}  // namespace bulwark::upstream
