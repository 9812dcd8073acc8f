#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace bulwark::upstream {

/**
 * One endpoint of an upstream. Counters are shared by all workers.
 * Thread: any (atomics); address and weight are immutable.
 */
struct Host {
  Host(std::string address_in, uint32_t weight_in) : address(std::move(address_in)), weight(weight_in) {}
  const std::string address;
  const uint32_t weight;
  std::atomic<uint64_t> active_requests{0};
  std::atomic<uint64_t> requests_total{0};
  std::atomic<uint64_t> errors_total{0};          // 5xx, resets and connect failures
  std::atomic<uint64_t> connect_failures_total{0};
  std::atomic<uint64_t> connections_active{0};
};
using HostSharedPtr = std::shared_ptr<Host>;

/** Immutable host list published as a snapshot (RCU by shared_ptr<const>). */
struct HostSet {
  std::vector<HostSharedPtr> hosts;
};
using HostSetConstSharedPtr = std::shared_ptr<const HostSet>;

}  // namespace bulwark::upstream
