#include "proxy/server/overload_manager.h"

#include <spdlog/spdlog.h>

#include "proxy/stats/allocator.h"

namespace bulwark::server {
namespace {

constexpr std::array<policies::OverloadAction, policies::kOverloadActionCount> kActions = {
    policies::OverloadAction::DisableKeepalive, policies::OverloadAction::StopAcceptingConnections,
    policies::OverloadAction::ResetHighMemoryStreams};

}  // namespace

OverloadSignals::OverloadSignals(prometheus::Registry& registry) {
  auto& family = prometheus::BuildCounter()
                     .Name("bulwark_overload_action_triggered_total")
                     .Help(
                         "Times an overload action acted: connections refused, connections "
                         "told to stop keeping alive, streams reset")
                     .Register(registry);
  for (auto action : kActions) {
    triggered_[static_cast<size_t>(action)] =
        &family.Add({{"action", std::string(policies::overloadActionName(action))}});
  }
}

void OverloadSignals::publish(const policies::OverloadState& state) {
  uint32_t mask = 0;
  for (size_t i = 0; i < state.active.size(); ++i) {
    mask |= state.active[i] ? 1u << i : 0u;
  }
  mask_.store(mask, std::memory_order_relaxed);
}

OverloadManager::OverloadManager(event::Dispatcher& dispatcher, prometheus::Registry& registry,
                                 ResetStreams reset_streams)
    : dispatcher_(dispatcher),
      reset_streams_(std::move(reset_streams)),
      signals_(std::make_shared<OverloadSignals>(registry)),
      heap_bytes_(prometheus::BuildGauge()
                      .Name("bulwark_overload_heap_bytes")
                      .Help("Heap bytes in use at the overload manager's last sample")
                      .Register(registry)
                      .Add({})),
      heap_limit_bytes_(prometheus::BuildGauge()
                            .Name("bulwark_overload_heap_limit_bytes")
                            .Help("runtime.overload.maxHeapBytes (0 = overload manager off)")
                            .Register(registry)
                            .Add({})) {
  auto& active = prometheus::BuildGauge()
                     .Name("bulwark_overload_action_active")
                     .Help("1 while the overload action is on")
                     .Register(registry);
  for (auto action : kActions) {
    active_[static_cast<size_t>(action)] =
        &active.Add({{"action", std::string(policies::overloadActionName(action))}});
  }
  timer_ = dispatcher_.createTimer([this] { sample(); });
}

void OverloadManager::configure(const config::OverloadSpec& spec, uint32_t workers) {
  workers_ = std::max<uint32_t>(workers, 1);
  heap_limit_bytes_.Set(static_cast<double>(spec.max_heap_bytes));
  if (spec.max_heap_bytes == 0) {
    evaluator_.reset();
    timer_->disableTimer();
    signals_->publish({});
    for (auto* gauge : active_) {
      gauge->Set(0);
    }
    return;
  }
  std::vector<policies::OverloadThreshold> thresholds;
  for (const auto& a : spec.actions) {
    if (auto action = policies::overloadActionFromName(a.action)) {
      thresholds.push_back({*action, a.threshold});
    }
  }
  // A reload re-evaluates at once against the current reading.
  evaluator_.emplace(spec.max_heap_bytes, std::move(thresholds));
  interval_ = std::chrono::duration_cast<std::chrono::milliseconds>(spec.refresh_interval);
  sample();
}

void OverloadManager::sample() {
  if (!evaluator_) {
    return;
  }
  const uint64_t heap = stats::heapAllocatedBytes();
  const policies::OverloadState before = evaluator_->state();
  const policies::OverloadState& state = evaluator_->evaluate(heap);
  signals_->publish(state);
  heap_bytes_.Set(static_cast<double>(heap));
  for (auto action : kActions) {
    const auto i = static_cast<size_t>(action);
    active_[i]->Set(state.active[i] ? 1 : 0);
    if (state.active[i] != before.active[i]) {
      spdlog::warn("overload: {} {} (heap {} bytes of {})", policies::overloadActionName(action),
                   state.active[i] ? "on" : "off", heap, evaluator_->maxHeapBytes());
    }
  }
  if (state.isActive(policies::OverloadAction::ResetHighMemoryStreams)) {
    const uint64_t over =
        evaluator_->bytesOver(policies::OverloadAction::ResetHighMemoryStreams, heap);
    reset_streams_(over / workers_);
  }
  timer_->enableTimer(interval_);
}

}  // namespace bulwark::server
