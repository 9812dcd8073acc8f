#pragma once

// Passive outlier detection per upstream (Envoy outlier detection):
// consecutive 5xx, consecutive gateway errors, consecutive local-origin failures and the
// failure-percentage sweep; ejection time = base × times ejected, capped; maxEjectionPercent;
// and the panic-threshold helper.

#include <cstdint>
#include <mutex>
#include <optional>
#include <string_view>
#include <vector>

#include "policies/outcome.h"
#include "policies/time.h"

namespace bulwark::policies {

enum class EjectionReason : uint8_t {
  Consecutive5xx,
  ConsecutiveGatewayError,
  ConsecutiveLocalOriginFailure,
  FailurePercentage,
};

/** @return "consecutive_5xx", "consecutive_gateway_error", "consecutive_local_origin_failure"
 *          or "failure_percentage" (metric label `reason`). */
std::string_view ejectionReasonLabel(EjectionReason reason);

/** An ejection or un-ejection for the caller to apply to its Host and count. */
struct OutlierEvent {
  enum class Kind : uint8_t { Ejected, Unejected, EjectionSkipped };
  Kind kind = Kind::Ejected;
  size_t host = 0;
  EjectionReason reason = EjectionReason::Consecutive5xx;  // Ejected / EjectionSkipped
  MonotonicTime until{};  // Ejected: the host is back at this instant
};

/**
 * Detector for the hosts of one upstream, addressed by index in the current host set.
 *
 * Per host, results are split as Envoy's `split_external_local_origin_errors: true` (bulwark
 * always splits, so a refused connect never masquerades as an HTTP answer):
 *   - responses: isServer5xxLike() increments the 5xx counter; isGatewayErrorLike() also the
 *     gateway counter, another 5xx resets the gateway counter; any other response resets both;
 *   - local origin (isLocalOriginFailure()): increments the local-origin counter; any response
 *     resets it.
 * A counter reaching its threshold (0 = off) ejects the host at once. Every interval, onInterval()
 * computes failure percentage (server 5xx-like + local-origin failures over all results in the
 * interval) for hosts with >= failure_percentage_request_volume results, if at least
 * failure_percentage_minimum_hosts hosts qualify, and ejects hosts at or above the threshold.
 *
 * Ejection time = min(base_ejection_time × times_ejected, max_ejection_time). times_ejected
 * decays by one per interval in which the host was not ejected *and* served at least one
 * success: unlike Envoy (envoy#21142), silence is not evidence of health.
 * maxEjectionPercent uses the post-ejection percentage (ejected + 1) × 100 / hosts, as Envoy
 * does; with always_eject_one_host (default on here, off in Envoy) one host may always be ejected
 * so small upstreams (2-3 hosts, 10 %) are not silently unprotected (envoy#3263).
 * While ejected a host's late results are ignored. An ejection ends at `until` (isEjected(now)
 * turns false, and onInterval() reports it as an Unejected event) or earlier through uneject()
 * (a passing active health check), which owes no event.
 *
 * Thread: any. A mutex guards all per-host state; calls are short and O(1) except onInterval()
 * and setHostCount(), which are O(hosts). The picker should not call isEjected() per pick: the
 * caller mirrors events into its Host objects' atomics.
 */
class OutlierDetector {
public:
  struct Options {
    uint32_t consecutive_5xx = 5;                    // 0 = off
    uint32_t consecutive_gateway_errors = 0;         // 0 = off
    uint32_t consecutive_local_origin_failures = 5;  // 0 = off
    uint32_t failure_percentage_threshold = 0;       // percent; 0 = off
    uint32_t failure_percentage_minimum_hosts = 5;
    uint32_t failure_percentage_request_volume = 50;
    Duration base_ejection_time = std::chrono::seconds(30);
    Duration max_ejection_time = std::chrono::seconds(300);
    uint32_t max_ejection_percent = 10;
    bool always_eject_one_host = true;
    /**
     * A 5xx-like answer that carries pushback (Retry-After, grpc-retry-pushback-ms) is a host
     * asking for less load, not a broken one: when set, such answers count neither as failures
     * nor as successes (no counter moves, no failure-percentage sample). Ejecting a host for
     * shedding would pile its load onto peers that are just as full.
     */
    bool ignore_pushback = false;
  };

  OutlierDetector(const Options& options, size_t host_count);

  /**
   * Records one attempt's outcome for `host`; `pushback`: the answer carried Retry-After or
   * grpc-retry-pushback-ms (see Options::ignore_pushback).
   * @return an Ejected event when this result ejected the host, an EjectionSkipped event when a
   *         threshold was reached but maxEjectionPercent forbade it, nullopt otherwise. Indexes
   *         out of range are ignored.
   */
  std::optional<OutlierEvent> onResult(size_t host, Outcome outcome, MonotonicTime now,
                                       bool pushback = false);

  /**
   * The periodic sweep (every `interval`, main-thread timer): reports hosts whose ejection has
   * ended, runs failure percentage over the results since the previous sweep, decays ejection
   * multipliers and starts a new interval.
   * @return the events, un-ejections first.
   */
  std::vector<OutlierEvent> onInterval(MonotonicTime now);

  /**
   * Ends `host`'s ejection before its time: a passing active health check (Envoy's
   * successful_active_health_check_uneject_host). As when an ejection ends in Envoy, the host
   * starts afresh: its consecutive counters and the results counted towards failure percentage
   * in this interval are cleared, so new failures can eject it again and it no longer counts
   * towards maxEjectionPercent. times ejected is kept, so a next ejection lasts longer (it
   * still decays as usual). No Unejected event follows for this ejection.
   * @return true when the host was ejected at `now` and no longer is; false (nothing changes)
   *         when it was not ejected, its time was already up (onInterval() reports that one),
   *         or the index is out of range.
   */
  bool uneject(size_t host, MonotonicTime now);

  /** @return true while `host` is ejected at `now`. */
  bool isEjected(size_t host, MonotonicTime now) const;

  /** @return hosts ejected at `now`. */
  size_t ejectedCount(MonotonicTime now) const;

  /** @return times `host` has been ejected (the current multiplier, after decay). */
  uint32_t timesEjected(size_t host) const;

  /**
   * Resizes after a host-set change: hosts [0, min(old, new)) keep their state, new ones start
   * clean. Callers keep indexes stable for hosts that remain (or accept fresh state).
   */
  void setHostCount(size_t host_count);

  size_t hostCount() const;
  const Options& options() const { return options_; }

private:
  struct Host {
    uint32_t consecutive_5xx = 0;
    uint32_t consecutive_gateway = 0;
    uint32_t consecutive_local = 0;
    uint64_t interval_total = 0;
    uint64_t interval_failures = 0;
    uint64_t interval_successes = 0;
    uint32_t times_ejected = 0;
    bool ejected = false;  // an Unejected event is still owed once `until` passes
    bool ejected_this_interval = false;
    MonotonicTime until{};
  };

  bool ejectedLocked(const Host& h, MonotonicTime now) const { return h.ejected && now < h.until; }
  size_t ejectedCountLocked(MonotonicTime now) const;
  // Ejects if maxEjectionPercent allows; returns the event (Ejected or EjectionSkipped).
  OutlierEvent tryEjectLocked(size_t index, EjectionReason reason, MonotonicTime now);

  Options options_;
  mutable std::mutex mu_;
  std::vector<Host> hosts_;  // guarded by mu_
};

/**
 * Panic threshold (Envoy `healthy_panic_threshold`): when fewer than `panic_threshold_percent`
 * of the hosts are healthy (not ejected, not failing health checks), load balancing should
 * ignore health and ejection and use all hosts, because concentrating all traffic on the few
 * survivors would overload them too. 0 disables panic mode.
 * @return true when in panic mode: healthy * 100 < panic_threshold_percent * total.
 * Thread: any (pure).
 */
bool inPanicMode(size_t healthy_hosts, size_t total_hosts, uint32_t panic_threshold_percent);

}  // namespace bulwark::policies
