#pragma once

#include <cstdint>
#include <memory>
#include <random>
#include <vector>

#include "policies/retry/latency_histogram.h"
#include "proxy/event/deadline_queue.h"
#include "proxy/event/dispatcher.h"
#include "proxy/upstream/upstream.h"
#include "proxy/upstream/worker_upstream.h"

namespace bulwark::router {

/**
 * What the router needs from the worker it runs on: the worker's event loop and deadline queues,
 * its random generator and its per-upstream state (host set, pools). The worker's context
 * implements it; router tests give a fake. Thread: owning worker.
 */
class RouterContext {
public:
  RouterContext(event::Dispatcher& dispatcher, uint64_t seed) : dispatcher(dispatcher), rng(seed) {}
  virtual ~RouterContext() = default;

  /** This worker's view of `upstream`: its host set and connection pools. */
  virtual upstream::WorkerUpstream& upstreamFor(const upstream::UpstreamSharedPtr& upstream) = 0;

  /** This worker's recent attempt latencies for a route's latency slot (Route::latencySlot). */
  policies::DecayingLatencyHistogram& attemptLatency(uint32_t slot) {
    if (slot >= attempt_latency_.size()) {
      attempt_latency_.resize(slot + 1);
    }
    if (!attempt_latency_[slot]) {
      attempt_latency_[slot] = std::make_unique<policies::DecayingLatencyHistogram>();
    }
    return *attempt_latency_[slot];
  }

  event::Dispatcher& dispatcher;
  std::mt19937_64 rng;
  // Deadlines of a fixed duration (connections' idle and header-read timeouts, routes' request
  // timeouts): one queue and one timer per duration instead of an event per waiting object.
  event::DeadlineQueues deadlines{dispatcher};

private:
  std::vector<std::unique_ptr<policies::DecayingLatencyHistogram>> attempt_latency_;
};

}  // namespace bulwark::router
