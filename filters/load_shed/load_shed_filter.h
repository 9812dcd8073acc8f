#pragma once

// Route `loadShedding`: an adaptive concurrency limit (gradient or
// AIMD over observed latency) with priority admission, rejecting early and cheaply:
// 503 + Retry-After, or gRPC UNAVAILABLE + grpc-retry-pushback-ms.

#include <array>
#include <atomic>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include <prometheus/counter.h>
#include <prometheus/gauge.h>

#include "filters/filter_support.h"
#include "policies/load_shed/adaptive_limit.h"
#include "policies/load_shed/admission_policy.h"
#include "policies/random.h"
#include "proxy/config/spec.h"
#include "proxy/http/filter.h"

namespace bulwark::filters::load_shed {

/**
 * One route's adaptive limit, in-flight counter and latency window, shared by all workers and
 * kept across reloads while the adaptiveConcurrency block is unchanged.
 *
 * How the limit moves: every admitted request that ends with an answer from upstream (or the
 * router's request timeout) adds its latency, measured from admission to onStreamComplete with
 * the worker clock, to one window buffer. The first completion after the window's end (on
 * whichever worker) folds the window into the limit: p = latencyPercentile of the window,
 * count, the window's peak in-flight, and `dropped` (a 503/504, gRPC UNAVAILABLE or
 * DEADLINE_EXCEEDED, or a timeout was seen), then AdaptiveLimit::update(); and starts the next
 * window. Admission reads the limit with one atomic load.
 * NOTE: favor simplicity over contention: the window buffer is one mutex-guarded reservoir
 * (a push per completed request) instead of per-worker buffers merged by a main-thread timer;
 * the filter seam has no main-thread timer, and with few workers the lock is uncontended.
 * Without completions the limit does not move; a hung upstream ends in request timeouts,
 * which are completions marked `dropped`.
 * Thread: any (atomics; the window under mu_).
 */
class LoadShedState {
public:
  LoadShedState(std::unique_ptr<policies::AdaptiveLimit> limit,
                config::AdaptiveConcurrencySpec spec, prometheus::Gauge& limit_gauge);

  /** @return a permit for `priority` under the current limit, or nullopt: shed. */
  std::optional<policies::ConcurrencyLimit::Permit> tryAdmit(policies::Priority priority) {
    return admission_.tryAdmit(priority, limit_->limit());
  }

  /**
   * Records one completed request and, once the window has ended, updates the limit.
   * @param latency admission to completion; @param dropped an overload signal.
   */
  void onSample(policies::Duration latency, bool dropped, policies::MonotonicTime now);

  uint32_t limit() const { return limit_->limit(); }
  uint32_t inflight() const { return admission_.inflight(); }
  const policies::AdaptiveLimit& adaptiveLimit() const { return *limit_; }
  FilterClock& clock() { return clock_; }

private:
  void closeWindowLocked(policies::MonotonicTime now);

  const std::unique_ptr<policies::AdaptiveLimit> limit_;
  const config::AdaptiveConcurrencySpec spec_;
  prometheus::Gauge& limit_gauge_;  // bulwark_concurrency_limit{route}
  policies::PriorityAdmission admission_;
  FilterClock clock_;

  std::mutex mu_;
  policies::LatencySamples samples_;                   // guarded by mu_
  policies::SeededRandom random_;                      // guarded by mu_ (reservoir draws)
  bool dropped_ = false;                               // guarded by mu_
  std::optional<policies::MonotonicTime> window_end_;  // guarded by mu_; set by the first sample
};
using LoadShedStateSharedPtr = std::shared_ptr<LoadShedState>;

/** Per-route settings that do not need shared state (changing them keeps the limit). */
struct LoadShedConfig {
  std::string priority_header;  // empty: every request is Priority::Default
  config::RejectSpec reject;
  // bulwark_load_shed_total{route, reason="concurrency_limit", priority}, by Priority value.
  std::array<prometheus::Counter*, 3> shed{};
  prometheus::Counter* dry_run_shed = nullptr;  // mode dryRun: what would have been shed
};

/**
 * Admits a request while in-flight < admissionBound(priority, limit) (sheddable at 80 % of the
 * limit, default at the limit, critical up to 110 %: lowest priority shed first) and holds the
 * permit until onStreamComplete, where it feeds the latency sample. A rejection is a few
 * atomics and a local reply: no upstream work.
 * Thread: owning worker; one instance per request.
 */
class LoadShedFilter : public http::HttpFilter {
public:
  LoadShedFilter(LoadShedStateSharedPtr state, std::shared_ptr<const LoadShedConfig> config)
      : state_(std::move(state)), config_(std::move(config)) {}

  // http::HttpFilter
  http::FilterStatus onRequestHeaders(http::RequestHeaders& headers, bool end_stream) override;
  void onStreamComplete(const http::StreamInfo& info) override;

private:
  LoadShedStateSharedPtr state_;
  std::shared_ptr<const LoadShedConfig> config_;
  std::optional<policies::ConcurrencyLimit::Permit> permit_;
  policies::MonotonicTime admitted_at_{};
};

/**
 * What a finished request tells the limit: nullopt = no latency signal (a local reply such as
 * a bulkhead or breaker rejection, or a downstream reset); otherwise whether it was an
 * overload signal (503/504, gRPC UNAVAILABLE/DEADLINE_EXCEEDED, request timeout).
 * Thread: any (pure).
 */
std::optional<bool> sampleKind(const http::StreamInfo& info);

/** The factory for filters/builtin.cc: enabled by a route's `loadShedding` block. */
http::FilterFactoryPtr makeFactory();

}  // namespace bulwark::filters::load_shed
