#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
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
      : address(std::move(address_in)), weight(weight_in == 0 ? 1 : weight_in),
        lb_state(std::make_shared<policies::lb::LbHostState>()), active_requests(lb_state->active_requests) {}
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
  /** Active health checking: results in a row, and the last failure's description. */
  std::atomic<uint32_t> health_check_failures_in_row{0};
  std::atomic<uint32_t> health_check_successes_in_row{0};
  /** Removed from the host set (DNS); its pools drain and no new attempt picks it. */
  std::atomic<bool> removed{false};

  bool healthy() const { return lb_state->healthy.load(std::memory_order_relaxed); }
  bool ejected() const { return lb_state->ejected.load(std::memory_order_relaxed); }
  /** Healthy and not ejected: may take traffic outside panic mode. */
  bool available() const { return lb_state->available(); }
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
    for (uint32_t i = 0; i < hosts.size(); ++i) index.emplace(hosts[i].get(), i);
  }
};
using HostSetConstSharedPtr = std::shared_ptr<const HostSet>;

}  // namespace bulwark::upstream
