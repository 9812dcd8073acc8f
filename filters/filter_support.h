#pragma once

// Small helpers shared by the built-in filters (rate_limit, load_shed, bulkhead): where they
// read time, how they turn a peer address into a key, and the fixed parts of their rejections.

#include <functional>
#include <string>
#include <string_view>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/registry.h>

#include "policies/time.h"
#include "proxy/http/filter.h"

namespace bulwark::filters {

/**
 * Where a filter reads "now". Production filters read the worker's dispatcher (the one clock
 * read at the filter boundary; the policy engines only ever get the value). Unit tests install
 * a simulated clock with setNowForTest().
 * Thread: any once set up (setNowForTest() only before traffic).
 */
class FilterClock {
public:
  /** @return the test clock's value if one is set, else callbacks.dispatcher().now(). */
  policies::MonotonicTime now(http::FilterCallbacks& callbacks) const {
    return now_for_test_ ? now_for_test_() : callbacks.dispatcher().now();
  }
  void setNowForTest(std::function<policies::MonotonicTime()> now) {
    now_for_test_ = std::move(now);
  }

private:
  std::function<policies::MonotonicTime()> now_for_test_;
};

/**
 * @return the IP part of a peer address: "10.0.0.1:5000" -> "10.0.0.1", "[::1]:80" -> "::1".
 *         An address without a port is returned as is. Thread: any (pure).
 */
std::string_view peerIp(std::string_view address);

/** @return the Retry-After value for `d`: whole seconds, rounded up, at least 1. */
std::string retryAfterValue(policies::Duration d);

/** @return grpc-retry-pushback-ms for `d`: whole milliseconds, rounded up, at least 0. */
std::string pushbackMillisValue(policies::Duration d);

/**
 * Metric families of the filters. prometheus-cpp's default registry (InsertBehavior::Merge)
 * returns the existing family for the same name and constant labels, so each factory may call
 * these for every route and every reload; the family is created once per process registry.
 * Only called at config time (Thread: main); the returned handles are used from any thread.
 */
prometheus::Family<prometheus::Counter>& counterFamily(prometheus::Registry& registry,
                                                       const std::string& name,
                                                       const std::string& help);
/**
 * bulwark_dry_run_decisions_total{route, policy, decision}: what a policy in `mode: dryRun`
 * would have refused. Config time only (Thread: main).
 */
prometheus::Counter& dryRunCounter(prometheus::Registry& registry, const std::string& route,
                                   const std::string& policy, const std::string& decision);

/**
 * A dry-run refusal: counts it and records it on the stream. Thread: the stream's worker.
 */
void recordDryRun(http::FilterCallbacks& callbacks, prometheus::Counter& counter,
                  std::string_view decision);

prometheus::Family<prometheus::Gauge>& gaugeFamily(prometheus::Registry& registry,
                                                   const std::string& name,
                                                   const std::string& help);

}  // namespace bulwark::filters
