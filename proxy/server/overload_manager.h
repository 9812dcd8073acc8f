#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "policies/overload/overload_evaluator.h"
#include "proxy/config/spec.h"
#include "proxy/event/dispatcher.h"

namespace bulwark::server {

/**
 * What the workers read from the overload manager (which actions are on) and the counters of
 * what they did about it: bulwark_overload_action_triggered_total{action} counts each connection
 * refused, each connection told to stop keeping alive, and each stream reset.
 * Thread: any (atomics; the counters are prometheus' own atomics).
 */
class OverloadSignals {
public:
  explicit OverloadSignals(prometheus::Registry& registry);

  bool isActive(policies::OverloadAction action) const {
    return (mask_.load(std::memory_order_relaxed) >> static_cast<uint32_t>(action) & 1u) != 0;
  }
  void publish(const policies::OverloadState& state);
  void countTriggered(policies::OverloadAction action, double n = 1) {
    triggered_[static_cast<size_t>(action)]->Increment(n);
  }

private:
  std::atomic<uint32_t> mask_{0};
  std::array<prometheus::Counter*, policies::kOverloadActionCount> triggered_{};
};
using OverloadSignalsSharedPtr = std::shared_ptr<OverloadSignals>;

/**
 * Envoy's overload manager on heap bytes (runtime.overload): every refreshInterval it reads the
 * bytes the allocator has handed out, turns actions on and off at their thresholds, publishes
 * the states to the workers, and asks them to reset their largest streams while
 * resetHighMemoryStreams is on. Gauges: bulwark_overload_heap_bytes,
 * bulwark_overload_heap_limit_bytes, bulwark_overload_action_active{action}.
 * Thread: main (the workers only read signals()).
 */
class OverloadManager {
public:
  /** Asked on the main thread: give back about `bytes_per_worker` on each worker. */
  using ResetStreams = std::function<void(uint64_t bytes_per_worker)>;

  OverloadManager(event::Dispatcher& dispatcher, prometheus::Registry& registry,
                  ResetStreams reset_streams);

  /** At start and on every reload; an unset maxHeapBytes turns everything off. */
  void configure(const config::OverloadSpec& spec, uint32_t workers);
  const OverloadSignalsSharedPtr& signals() const { return signals_; }

private:
  void sample();

  event::Dispatcher& dispatcher_;
  ResetStreams reset_streams_;
  OverloadSignalsSharedPtr signals_;
  prometheus::Gauge& heap_bytes_;
  prometheus::Gauge& heap_limit_bytes_;
  std::array<prometheus::Gauge*, policies::kOverloadActionCount> active_{};
  std::optional<policies::OverloadEvaluator> evaluator_;
  std::chrono::milliseconds interval_{250};
  uint32_t workers_ = 1;
  event::TimerPtr timer_;
};

}  // namespace bulwark::server
