#pragma once

// CLOSED / OPEN / HALF_OPEN circuit breaker with Resilience4j semantics: failure-rate and
// slow-call-rate thresholds over a time-bucketed window, a minimum number of calls, a fixed open
// duration and a fixed number of half-open probes.

#include <array>
#include <atomic>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string_view>
#include <utility>

#include "policies/outcome.h"
#include "policies/sliding_window.h"
#include "policies/time.h"

namespace bulwark::policies {

enum class BreakerState : uint8_t { Closed = 0, Open = 1, HalfOpen = 2 };

/** @return "closed", "open" or "half_open" (metric label `state`). */
std::string_view breakerStateLabel(BreakerState state);

/**
 * One circuit breaker (per upstream, or per host with `perHost`), consulted by the Router at
 * every attempt so that retries and hedges count.
 *
 *   CLOSED     every call is permitted. Each result is recorded in the bucket of its completion.
 *              After a result, if the window holds >= minimum_requests calls and
 *              failures * 100 >= failure_rate_threshold * calls, or
 *              slow * 100 >= slow_call_rate_threshold * calls (slow: latency >
 *              slow_call_duration_threshold, success or not), the breaker opens.
 *   OPEN       every call is refused until open_duration has passed; remainingOpen() is the
 *              Retry-After / grpc-retry-pushback-ms to answer with. The first tryAcquire() after
 *              that moves to HALF_OPEN (lazily, as Resilience4j without automatic transition).
 *   HALF_OPEN  exactly half_open_requests probes are permitted; any further call, concurrent or
 *              not, is refused. When all probes have reported, the same two rates are computed
 *              over the probes only: above a threshold -> OPEN again, otherwise -> CLOSED with an
 *              empty window. A probe permit destroyed without a result frees its probe slot.
 *
 * A result whose permit was issued in an earlier state (e.g. a slow call started while CLOSED
 * that finishes in HALF_OPEN) is ignored: each permit carries the epoch of the state it came from.
 * A threshold of 0 disables that rate.
 *
 * Thread: any. Locking: the state and the open deadline are atomics, so tryAcquire() in CLOSED
 * is one atomic load, and in OPEN (before the deadline) one more; onResult(), half-open
 * admission and transitions take a small mutex (the window ring and the probe counts). The
 * transition callback runs after the mutex is released, on the thread whose call caused it.
 * The breaker must outlive its permits.
 */
class CircuitBreaker {
public:
  struct Options {
    uint32_t failure_rate_threshold = 50;  // percent; CircuitBreakerSpec.failure_rate_threshold
    Duration slow_call_duration_threshold = std::chrono::seconds(60);
    uint32_t slow_call_rate_threshold = 100;  // percent
    uint32_t minimum_requests = 20;
    Duration window = std::chrono::seconds(10);
    uint32_t buckets = 10;
    Duration open_duration = std::chrono::seconds(5);
    uint32_t half_open_requests = 5;  // >= 1 (0 is treated as 1)
  };

  using TransitionCallback = std::function<void(BreakerState from, BreakerState to)>;

  /** Permission for one call. Report it with onResult(); move-only. */
  class Permit {
  public:
    Permit(Permit&& other) noexcept
        : breaker_(other.breaker_), epoch_(other.epoch_), probe_(other.probe_) {
      other.breaker_ = nullptr;
    }
    Permit& operator=(Permit&& other) noexcept;
    Permit(const Permit&) = delete;
    Permit& operator=(const Permit&) = delete;
    /** A permit dropped without onResult() gives its half-open probe slot back. */
    ~Permit();

    /** @return true when this is a half-open probe. */
    bool isProbe() const { return probe_; }

  private:
    friend class CircuitBreaker;
    Permit(CircuitBreaker* breaker, uint64_t epoch, bool probe)
        : breaker_(breaker), epoch_(epoch), probe_(probe) {}
    CircuitBreaker* breaker_;
    uint64_t epoch_;
    bool probe_;
  };

  explicit CircuitBreaker(const Options& options, TransitionCallback on_transition = {});

  CircuitBreaker(const CircuitBreaker&) = delete;
  CircuitBreaker& operator=(const CircuitBreaker&) = delete;

  /**
   * Asks to make one call (one attempt).
   * @return a permit, or nullopt when OPEN, or HALF_OPEN with every probe handed out
   *         (counted in rejectedTotal()).
   */
  std::optional<Permit> tryAcquire(MonotonicTime now);

  /**
   * Reports the result of a permitted call.
   * @param permit consumed.
   * @param failure whether the call failed (isBreakerFailure(outcome) for attempts).
   * @param latency call duration, compared with slow_call_duration_threshold.
   */
  void onResult(Permit&& permit, bool failure, Duration latency, MonotonicTime now);

  /** Convenience: failure = isBreakerFailure(outcome). */
  void onResult(Permit&& permit, Outcome outcome, Duration latency, MonotonicTime now) {
    onResult(std::move(permit), isBreakerFailure(outcome), latency, now);
  }

  /** @return the current state (an OPEN past its deadline stays OPEN until the next call). */
  BreakerState state() const;

  /** @return time left OPEN at `now`; zero unless OPEN. */
  Duration remainingOpen(MonotonicTime now) const;

  /** @return calls refused since construction. */
  uint64_t rejectedTotal() const { return rejected_.load(std::memory_order_relaxed); }

  /** @return transitions from -> to since construction (bulwark_circuit_breaker_transitions_total).
   */
  uint64_t transitions(BreakerState from, BreakerState to) const {
    return transitions_[index(from)][index(to)].load(std::memory_order_relaxed);
  }

  struct WindowSnapshot {
    uint64_t calls = 0;
    uint64_t failures = 0;
    uint64_t slow = 0;
  };

  /** @return the CLOSED window's counts at `now` (for /upstreams and tests). */
  WindowSnapshot window(MonotonicTime now) const;

  const Options& options() const { return options_; }

private:
  struct Counters {
    uint64_t calls = 0;
    uint64_t failures = 0;
    uint64_t slow = 0;
    Counters& operator+=(const Counters& o) {
      calls += o.calls;
      failures += o.failures;
      slow += o.slow;
      return *this;
    }
  };

  struct Transition {
    BreakerState from;
    BreakerState to;
  };

  static size_t index(BreakerState s) { return static_cast<size_t>(s); }
  static BreakerState stateOf(uint64_t word) { return static_cast<BreakerState>(word & 3u); }
  static uint64_t epochOf(uint64_t word) { return word >> 2; }

  bool trips(const Counters& c) const;
  // Moves to `to` with a new epoch; caller holds mu_. Returns the transition to report.
  Transition transitionLocked(BreakerState to, MonotonicTime now);
  void report(const Transition& t);
  void onAbandoned(const Permit& permit);

  Options options_;
  TransitionCallback on_transition_;

  // (epoch << 2) | state. Written under mu_, read lock-free.
  std::atomic<uint64_t> word_{static_cast<uint64_t>(BreakerState::Closed)};
  std::atomic<int64_t> open_until_ns_{0};
  std::atomic<uint64_t> rejected_{0};
  std::array<std::array<std::atomic<uint64_t>, 3>, 3> transitions_{};

  mutable std::mutex mu_;
  SlidingWindow<Counters> window_;  // guarded by mu_; CLOSED results
  uint32_t probes_issued_ = 0;      // guarded by mu_; HALF_OPEN
  Counters probe_results_;          // guarded by mu_; HALF_OPEN
};

}  // namespace bulwark::policies
