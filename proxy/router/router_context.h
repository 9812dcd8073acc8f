#pragma once

#include <cstdint>
#include <random>

#include "proxy/event/dispatcher.h"
#include "proxy/upstream/upstream.h"
#include "proxy/upstream/worker_upstream.h"

namespace bulwark::router {

/**
 * What the router needs from the worker it runs on: the worker's event loop, its random
 * generator and its per-upstream state (host set, pools). The worker's context implements it;
 * router tests give a fake. Thread: owning worker.
 */
class RouterContext {
public:
  RouterContext(event::Dispatcher& dispatcher, uint64_t seed) : dispatcher(dispatcher), rng(seed) {}
  virtual ~RouterContext() = default;

  /** This worker's view of `upstream`: its host set and connection pools. */
  virtual upstream::WorkerUpstream& upstreamFor(const upstream::UpstreamSharedPtr& upstream) = 0;

  event::Dispatcher& dispatcher;
  std::mt19937_64 rng;
};

}  // namespace bulwark::router
