#pragma once

// Route `bulkhead`: at most maxConcurrentRequests requests of a
// route in flight across all workers (exact CAS), an optional bounded wait queue with a
// timeout, and per-partition (tenant) limits so that one tenant cannot take every slot.

#include <list>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include "filters/filter_support.h"
#include "policies/bulkhead/bulkhead.h"
#include "proxy/config/spec.h"
#include "proxy/event/dispatcher.h"
#include "proxy/http/filter.h"

namespace bulwark::filters::bulkhead {

class BulkheadFilter;

/** Metric handles of one route (label route). Thread: any (prometheus-cpp atomics). */
struct BulkheadMetrics {
  prometheus::Gauge* active = nullptr;            // bulwark_bulkhead_active
  prometheus::Gauge* queued = nullptr;            // bulwark_bulkhead_queued
  prometheus::Counter* full = nullptr;            // bulwark_bulkhead_rejected_total{reason=full}
  prometheus::Counter* partition_full = nullptr;  // {reason=partition_full}
  prometheus::Counter* queue_timeout = nullptr;   // {reason=queue_timeout}
};

/**
 * One route's bulkhead: the engine (slots and queue slots, exact across workers) plus the wait
 * queues, one FIFO per worker (keyed by the worker's dispatcher).
 *
 * NOTE: the queue is a per-worker FIFO approximation of one global FIFO.
 * The queue *bound* (maxQueuedRequests) is global and exact; the *order* is FIFO only among
 * waiters of one worker. A slot released on worker A first admits A's waiters (same thread, no
 * hand-off); if slots are still free afterwards and another worker has waiters, A posts a
 * "pump" to that worker, which admits its own waiters on its own thread. A new request may
 * take a freed slot before a waiter of another worker gets there (as Envoy's pending queue is
 * per worker too). Within one worker, a waiter whose partition is at its limit is skipped so it
 * cannot block waiters of other partitions.
 * Thread: any. The queues are guarded by mu_; each waiter's own fields are touched only on its
 * worker (pump() runs on the worker that owns the queue).
 */
class BulkheadState : public std::enable_shared_from_this<BulkheadState> {
public:
  BulkheadState(const policies::Bulkhead::Options& options, BulkheadMetrics metrics);

  policies::Bulkhead& engine() { return engine_; }
  const BulkheadMetrics& metrics() const { return metrics_; }
  FilterClock& clock() { return clock_; }

  /**
   * Puts `filter` (which holds a queue slot) at the back of its worker's FIFO, unless a slot
   * freed since its first try: then it gets the permit instead and is not queued. The retry
   * under the queue lock closes the race with a concurrent release (no lost wake-up).
   * Thread: the filter's worker.
   */
  std::optional<policies::PartitionedConcurrencyLimit::Permit> enqueue(BulkheadFilter& filter);

  /** Removes `filter` from its FIFO if it is queued. Idempotent. Thread: the filter's worker. */
  void remove(BulkheadFilter& filter);

  /**
   * A permit was released on `dispatcher`'s worker: admits waiters there and, if slots remain,
   * asks the other workers with waiters to do the same. Thread: `dispatcher`'s worker.
   */
  void onRelease(event::Dispatcher& dispatcher);

  /** Admits this worker's waiters while slots are free. Thread: `dispatcher`'s worker. */
  void pump(event::Dispatcher& dispatcher);

  /** @return waiters queued on `dispatcher`'s worker (tests). */
  size_t queuedOn(event::Dispatcher& dispatcher);

private:
  using Waiters = std::list<BulkheadFilter*>;

  policies::Bulkhead engine_;
  const BulkheadMetrics metrics_;
  FilterClock clock_;
  std::mutex mu_;
  std::unordered_map<event::Dispatcher*, Waiters> queues_;  // guarded by mu_
};
using BulkheadStateSharedPtr = std::shared_ptr<BulkheadState>;

/** Per-route settings outside the shared state. Thread: immutable, any. */
struct BulkheadConfig {
  std::string partition_header;  // empty: no partitions
  /**
   * How long a request may wait in the queue: queueTimeout, or when that is 0 the route's
   * request timeout (the router's timer only starts after the queue), or 0 = until a slot
   * frees or the client leaves (no timeouts at all configured).
   */
  policies::Duration queue_timeout{0};
  // mode dryRun: what would have been refused or queued (the request goes on without a slot).
  prometheus::Counter* dry_run_full = nullptr;
  prometheus::Counter* dry_run_partition_full = nullptr;
  prometheus::Counter* dry_run_queued = nullptr;
};

/**
 * Acquires a slot in onRequestHeaders and releases it in onStreamComplete (or on destruction).
 * Full route: waits in its worker's FIFO (StopIteration; continueRequest() once admitted) when a
 * queue slot is free, else 503. Partition at its own limit: 503 at once, never queued.
 * Rejections are 503 + Retry-After: 1 + x-bulwark-overloaded (gRPC: UNAVAILABLE), fallback
 * trigger "shed".
 * Thread: owning worker; one instance per request.
 */
class BulkheadFilter : public http::HttpFilter {
public:
  BulkheadFilter(BulkheadStateSharedPtr state, std::shared_ptr<const BulkheadConfig> config)
      : state_(std::move(state)), config_(std::move(config)) {}
  ~BulkheadFilter() override;

  // http::HttpFilter
  http::FilterStatus onRequestHeaders(http::RequestHeaders& headers, bool end_stream) override;
  void onStreamComplete(const http::StreamInfo& info) override;

  bool holdsPermitForTest() const { return permit_.has_value(); }
  bool queuedForTest() const { return in_queue_; }

private:
  friend class BulkheadState;

  /** Called by BulkheadState::pump() (lock released) after it moved a permit in. */
  void onAdmittedFromQueue();
  void onQueueTimeout();
  void admit(policies::PartitionedConcurrencyLimit::Permit permit);
  /** mode dryRun: takes a free slot, else records what would have happened and goes on. */
  http::FilterStatus dryRun(policies::Bulkhead::Admission admission);
  void leaveQueue();
  void releaseAll();
  void reject(http::LocalReplyKind kind, prometheus::Counter* counter);
  /** Adds this bulkhead's numbers to the decision record under `name`. */
  void record(std::string_view name, bool with_queue_time = false);

  BulkheadStateSharedPtr state_;
  std::shared_ptr<const BulkheadConfig> config_;
  std::string partition_;
  event::Dispatcher* dispatcher_ = nullptr;  // the owning worker's, set in onRequestHeaders
  std::optional<policies::PartitionedConcurrencyLimit::Permit> permit_;
  std::optional<policies::ConcurrencyLimit::Permit> queue_slot_;
  event::TimerPtr queue_timer_;
  std::chrono::steady_clock::time_point queued_at_{};  // for the decision record's queued_ms
  // Position in the worker's FIFO; guarded by the state's mu_ (written under it, by this
  // worker only).
  std::list<BulkheadFilter*>::iterator queue_pos_;
  bool in_queue_ = false;
};

/** The factory for filters/builtin.cc: enabled by a route's `bulkhead` block. */
http::FilterFactoryPtr makeFactory();

}  // namespace bulwark::filters::bulkhead
