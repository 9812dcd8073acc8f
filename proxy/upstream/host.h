#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "policies/lb/lb_host.h"

namespace bulwark::upstream {

/**
 * One endpoint of an upstream. Counters are shared by all workers. A Host object lives as long
 * as its address stays in the upstream's host set (DNS refreshes reuse it), so its counters,
 * load, latency estimate, health and ejection survive host-set changes.
 * Thread: any (atomics); address and weight are immutable.
 */
struct Host {
  Host(std::string address_in, uint32_t weight_in)
      : address(std::move(address_in)),
        weight(weight_in == 0 ? 1 : weight_in),
        lb_state(std::make_shared<policies::lb::LbHostState>()),
        active_requests(lb_state->active_requests) {}
  Host(const Host&) = delete;
  Host& operator=(const Host&) = delete;

  const std::string address;
  const uint32_t weight;
  /**
   * What the load balancers read: in-flight attempts, peak-EWMA latency, `healthy` (written by
   * active health checks) and `ejected` (written by outlier detection).
   */
  const policies::lb::LbHostStateSharedPtr lb_state;
  /**
   * Attempts in flight on this host, counted by the router (start / finish of each attempt).
   * An alias of lb_state->active_requests, so LEAST_REQUEST and PEAK_EWMA see the router's count.
   */
  std::atomic<uint32_t>& active_requests;
  std::atomic<uint64_t> requests_total{0};
  std::atomic<uint64_t> errors_total{0};  // 5xx, resets and connect failures
  std::atomic<uint64_t> connect_failures_total{0};
  std::atomic<uint64_t> connections_active{0};
  /** Outlier detection: the instant (toNanos) the current ejection ends; 0 when not ejected. */
  std::atomic<int64_t> ejected_until_nanos{0};
  std::atomic<uint64_t> times_ejected{0};
  /** Outlier ejections ended early by a successful active health check. */
  std::atomic<uint64_t> health_check_unejections{0};
  /** Active health checking: results in a row, and the last failure's description. */
  std::atomic<uint32_t> health_check_failures_in_row{0};
  std::atomic<uint32_t> health_check_successes_in_row{0};
  /** Removed from the host set (DNS); its pools drain and no new attempt picks it. */
  std::atomic<bool> removed{false};

  bool healthy() const { return lb_state->healthy.load(std::memory_order_relaxed); }
  /**
   * Out of picking for either reason below. The pickers only know one flag,
   * lb_state->ejected, so both reasons share it (and share its panic-threshold treatment).
   */
  bool ejected() const { return lb_state->ejected.load(std::memory_order_relaxed); }
  /** Ejected by outlier detection. */
  bool outlierEjected() const {
    return (exclusions_.load(std::memory_order_relaxed) & kOutlierBit) != 0;
  }
  /** Taken out by its own open circuit breaker (circuitBreaker.perHost). */
  bool breakerOpen() const {
    return (exclusions_.load(std::memory_order_relaxed) & kBreakerBit) != 0;
  }
  /** Healthy and not ejected: may take traffic outside panic mode. */
  bool available() const { return lb_state->available(); }

  /** Outlier detection ejects (true) or returns (false) the host. */
  void setOutlierEjected(bool ejected) {
    std::lock_guard<std::mutex> lock(exclusion_mutex_);
    setBitLocked(kOutlierBit, ejected);
  }
  /**
   * Makes `owner` the only breaker allowed to take this host out (see setBreakerOpen) and
   * clears whatever an earlier owner left: the upstream object that (re)built its host set
   * owns the host's breaker state, and an older upstream object still finishing attempts after
   * a reload must not exclude the host behind the new one's back. nullptr: no breaker.
   */
  void adoptBreaker(const void* owner) {
    std::lock_guard<std::mutex> lock(exclusion_mutex_);
    breaker_owner_ = owner;
    setBitLocked(kBreakerBit, false);
  }
  /** The breaker `owner` opened (true) or let the host be probed again (false); ignored
   *  unless `owner` is the one adopted. */
  void setBreakerOpen(const void* owner, bool open) {
    std::lock_guard<std::mutex> lock(exclusion_mutex_);
    if (owner != breaker_owner_) {
      return;
    }
    setBitLocked(kBreakerBit, open);
  }

private:
  static constexpr uint8_t kOutlierBit = 1;
  static constexpr uint8_t kBreakerBit = 2;

  // Two writers (the outlier timer on main, breaker transitions on any worker) combine into
  // one flag: the read-modify-write of the bits and the flag store happen under the mutex, so
  // the flag always equals (bits != 0). Transitions are rare; picks only read the atomics.
  void setBitLocked(uint8_t bit, bool on) {
    uint8_t bits = exclusions_.load(std::memory_order_relaxed);
    bits = on ? static_cast<uint8_t>(bits | bit) : static_cast<uint8_t>(bits & ~bit);
    exclusions_.store(bits, std::memory_order_relaxed);
    lb_state->ejected.store(bits != 0, std::memory_order_relaxed);
  }

  std::mutex exclusion_mutex_;
  std::atomic<uint8_t> exclusions_{0};
  const void* breaker_owner_ = nullptr;  // guarded by exclusion_mutex_
};
using HostSharedPtr = std::shared_ptr<Host>;

/** Immutable host list published as a snapshot (RCU by shared_ptr<const>). */
struct HostSet {
  std::vector<HostSharedPtr> hosts;
  /** Index of each host in `hosts` (the load balancer's snapshot uses the same order). */
  std::unordered_map<const Host*, uint32_t> index;

  /** Fills `index` from `hosts`; call once after filling `hosts`. */
  void buildIndex() {
    index.clear();
    for (uint32_t i = 0; i < hosts.size(); ++i) {
      index.emplace(hosts[i].get(), i);
    }
  }
};
using HostSetConstSharedPtr = std::shared_ptr<const HostSet>;

}  // namespace bulwark::upstream
