#include "policies/lb/lb_host.h"

#include <algorithm>
#include <cmath>

namespace bulwark::policies::lb {
namespace {

double decayWeight(int64_t elapsed_nanos, Duration decay) {
  if (elapsed_nanos <= 0 || decay.count() <= 0) {
    // Workers' clocks are read at slightly different moments; a sample stamped a little in the
    // "future" is treated as simultaneous rather than as negative elapsed time.
    return elapsed_nanos <= 0 ? 1.0 : 0.0;
  }
  return std::exp(-static_cast<double>(elapsed_nanos) / static_cast<double>(decay.count()));
}

// Moves the stamp forward only: workers read their clocks at slightly different moments.
void recordProgress(LbHostState& state, MonotonicTime now) {
  const int64_t now_nanos = toNanos(now);
  int64_t stamp = state.progress_nanos.load(std::memory_order_relaxed);
  while ((stamp == LbHostState::kNoSample || stamp < now_nanos) &&
         !state.progress_nanos.compare_exchange_weak(stamp, now_nanos, std::memory_order_relaxed)) {
  }
}

}  // namespace

void onAttemptStart(LbHostState& state, MonotonicTime now) {
  // Stamp before counting: a picker that sees the host busy must not pair that with the stamp
  // of its last end, however long it has been idle since.
  if (state.active_requests.load(std::memory_order_relaxed) == 0) {
    recordProgress(state, now);
  }
  state.active_requests.fetch_add(1, std::memory_order_release);
}

void onAttemptCancelled(LbHostState& state, MonotonicTime now) {
  // Progress first: a picker that sees the lower count must not pair it with the old stamp.
  recordProgress(state, now);
  // Saturate at zero so that an unpaired end (a caller bug) cannot wrap to 4 billion and make
  // the host look permanently overloaded.
  uint32_t current = state.active_requests.load(std::memory_order_relaxed);
  while (current > 0 &&
         !state.active_requests.compare_exchange_weak(
             current, current - 1, std::memory_order_release, std::memory_order_relaxed)) {
  }
}

void onAttemptEnd(LbHostState& state, Duration latency, MonotonicTime now, Duration decay) {
  recordLatency(state, latency, now, decay);
  onAttemptCancelled(state, now);
}

Duration outstandingLatencyFloor(const LbHostState& state, MonotonicTime now) {
  if (state.active_requests.load(std::memory_order_acquire) == 0) {
    return Duration(0);
  }
  const int64_t stamp = state.progress_nanos.load(std::memory_order_relaxed);
  if (stamp == LbHostState::kNoSample) {
    return Duration(0);
  }
  return Duration(std::max<int64_t>(0, toNanos(now) - stamp));
}

void recordLatency(LbHostState& state, Duration latency, MonotonicTime now, Duration decay) {
  const int64_t sample = std::max<int64_t>(0, latency.count());
  const int64_t now_nanos = toNanos(now);
  // NOTE: the estimate and its timestamp are two separate atomics, not one transaction. Two
  // workers recording at the same instant may each decay from a slightly stale timestamp. The
  // CAS on the estimate makes sure no sample is lost; the error is a fraction of one decay step,
  // which a balancing heuristic tolerates (favour simplicity over a lock on the data plane).
  int64_t current = state.ewma_latency_nanos.load(std::memory_order_relaxed);
  for (;;) {
    const int64_t stamp = state.ewma_updated_nanos.load(std::memory_order_acquire);
    int64_t next;
    if (stamp == LbHostState::kNoSample) {
      next = sample;
    } else {
      const double w = decayWeight(now_nanos - stamp, decay);
      const double decayed = static_cast<double>(current) * w;
      if (static_cast<double>(sample) > decayed) {
        next = sample;  // Peak sensitivity: a slower sample wins immediately.
      } else {
        next = static_cast<int64_t>(decayed + static_cast<double>(sample) * (1.0 - w));
      }
    }
    if (state.ewma_latency_nanos.compare_exchange_weak(current, next, std::memory_order_release,
                                                       std::memory_order_relaxed)) {
      break;
    }
  }
  int64_t stamp = state.ewma_updated_nanos.load(std::memory_order_relaxed);
  while ((stamp == LbHostState::kNoSample || stamp < now_nanos) &&
         !state.ewma_updated_nanos.compare_exchange_weak(
             stamp, now_nanos, std::memory_order_release, std::memory_order_relaxed)) {
  }
}

void recordLatencyAtLeast(LbHostState& state, Duration elapsed, MonotonicTime now, Duration decay) {
  if (state.ewma_updated_nanos.load(std::memory_order_acquire) == LbHostState::kNoSample ||
      ewmaLatency(state, now, decay, Duration(0)) < elapsed) {
    recordLatency(state, elapsed, now, decay);
  }
}

Duration ewmaLatency(const LbHostState& state, MonotonicTime now, Duration decay,
                     Duration default_rtt) {
  const int64_t stamp = state.ewma_updated_nanos.load(std::memory_order_acquire);
  if (stamp == LbHostState::kNoSample) {
    return default_rtt;
  }
  const int64_t value = state.ewma_latency_nanos.load(std::memory_order_relaxed);
  const double w = decayWeight(toNanos(now) - stamp, decay);
  return Duration(static_cast<int64_t>(static_cast<double>(value) * w));
}

}  // namespace bulwark::policies::lb
