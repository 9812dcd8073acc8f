#pragma once

// What a load balancer knows about one host: an immutable entry in a host-set snapshot (LbHost)
// pointing at live, shared state (LbHostState) that workers update with atomics. The snapshot
// is rebuilt on every host-set change; the state object outlives snapshots so that a host that
// stays in the set keeps its load and latency history.

#include <atomic>
#include <chrono>
#include <cstdint>
#include <limits>
#include <memory>
#include <string>
#include <vector>

#include "policies/time.h"

namespace bulwark::policies::lb {

/** Tau of the peak-EWMA latency estimate (Finagle and Linkerd use 10 s). */
inline constexpr Duration kDefaultEwmaDecay = std::chrono::seconds(10);

/**
 * Live per-host state read by pickers and written by the router, health checker and outlier
 * detector. All members are independent atomics; see the NOTE in lb_host.cc about the EWMA pair.
 * Thread: any (atomics). Lifetime: owned by the upstream's host object and shared, via
 * LbHost::state, by every snapshot that contains the host.
 */
struct LbHostState {
  /** ewma_updated_nanos before the first latency sample. */
  static constexpr int64_t kNoSample = std::numeric_limits<int64_t>::min();

  /** Attempts started on this host and not yet finished (onAttemptStart / onAttemptEnd). */
  std::atomic<uint32_t> active_requests{0};
  /** Peak-EWMA latency estimate in nanoseconds as of ewma_updated_nanos. */
  std::atomic<int64_t> ewma_latency_nanos{0};
  /** toNanos() of the last latency sample, or kNoSample. */
  std::atomic<int64_t> ewma_updated_nanos{kNoSample};
  /**
   * toNanos() of the host's last progress: an attempt ending, or one starting while none was in
   * flight (kNoSample before the first). While active_requests > 0 the oldest attempt in flight
   * started no later than this, so now minus it is a lower bound on that attempt's latency (see
   * outstandingLatencyFloor).
   */
  std::atomic<int64_t> progress_nanos{kNoSample};
  /** Written by active health checking; a new host starts healthy. */
  std::atomic<bool> healthy{true};
  /** Written by outlier detection while the host is ejected. */
  std::atomic<bool> ejected{false};

  /** @return true when the host may receive traffic outside panic mode. */
  bool available() const {
    return healthy.load(std::memory_order_relaxed) && !ejected.load(std::memory_order_relaxed);
  }
};

using LbHostStateSharedPtr = std::shared_ptr<LbHostState>;

/**
 * One host in an immutable host-set snapshot. Thread: value type; a snapshot is shared
 * read-only by all workers.
 */
struct LbHost {
  /**
   * Stable identity, normally "address:port". Consistent hashing (RING_HASH, MAGLEV) hashes it,
   * so a host keeps its ring points and table slots when other hosts come and go.
   */
  std::string name;
  /** Relative weight, >= 1 (factories reject 0). */
  uint32_t weight = 1;
  /** Live state; never null. */
  LbHostStateSharedPtr state;
};

/** A host-set snapshot. Pickers return indices into it. */
using LbHostSet = std::vector<LbHost>;
using LbHostSetConstSharedPtr = std::shared_ptr<const LbHostSet>;

/**
 * Records that an attempt was sent to the host at `now` (counts towards LEAST_REQUEST and
 * PEAK_EWMA load). Thread: any. Pair every call with exactly one onAttemptEnd() or
 * onAttemptCancelled().
 */
void onAttemptStart(LbHostState& state, MonotonicTime now);

/**
 * Records the end of an attempt that produced a latency sample (response headers received, or a
 * failure whose duration should count, e.g. a per-try timeout: a slow failure must look slow).
 * Thread: any.
 * @param latency time from attempt start to the event measured; negative values count as 0.
 * @param now the caller's current monotonic time.
 * @param decay EWMA time constant; use the upstream's configured LbConfig::ewma_decay.
 */
void onAttemptEnd(LbHostState& state, Duration latency, MonotonicTime now,
                  Duration decay = kDefaultEwmaDecay);

/**
 * Records the end, at `now`, of an attempt without a latency sample (cancelled hedge loser,
 * downstream reset): a cancellation says nothing about the host's speed. Thread: any.
 */
void onAttemptCancelled(LbHostState& state, MonotonicTime now);

/**
 * How long the oldest attempt in flight on the host has been running at least: now minus the
 * host's last progress while attempts are in flight, 0 when none is. A host that stopped
 * answering shows it before its first slow answer (or per-try timeout) arrives: PEAK_EWMA costs
 * a host at max(estimate, this floor), so the calls sent to a replica that just turned slow
 * stop after a few of its normal latencies instead of after its first timeout. Thread: any.
 */
Duration outstandingLatencyFloor(const LbHostState& state, MonotonicTime now);

/**
 * Folds one latency sample into the peak-EWMA estimate (Finagle PeakEwma / tower
 * `peak_ewma`): a sample above the current estimate replaces it at once, so a host that just
 * became slow is penalised immediately; otherwise the estimate moves towards the sample with
 * weight 1 - exp(-elapsed / decay). Thread: any.
 */
void recordLatency(LbHostState& state, Duration latency, MonotonicTime now, Duration decay);

/**
 * An attempt abandoned after `elapsed` without an answer (a hedge won elsewhere, the client
 * left): its latency is at least that. Raises the estimate when it is below `elapsed`, never
 * lowers it, so a replica whose slow attempts keep losing to hedges does not look fast for
 * having no answered samples. Thread: any.
 */
void recordLatencyAtLeast(LbHostState& state, Duration elapsed, MonotonicTime now, Duration decay);

/**
 * The estimate decayed to `now` (decaying towards 0 as time passes without samples, like
 * tower's load(), so an idle host is retried eventually), or `default_rtt` before the first
 * sample. Reads only; never writes the state. Thread: any.
 */
Duration ewmaLatency(const LbHostState& state, MonotonicTime now, Duration decay,
                     Duration default_rtt);

}  // namespace bulwark::policies::lb
