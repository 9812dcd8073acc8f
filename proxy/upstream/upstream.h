#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

#include "proxy/config/spec.h"
#include "proxy/upstream/host.h"

namespace bulwark::upstream {

/**
 * A named backend service: its hosts (immutable snapshot), limits and counters. Shared by all
 * workers and kept across reloads while its spec is unchanged.
 * Thread: any (atomics; the host-set pointer is swapped under a mutex on the main thread).
 */
class Upstream {
public:
  Upstream(config::UpstreamSpec spec, HostSetConstSharedPtr hosts);

  const config::UpstreamSpec& spec() const { return spec_; }
  const std::string& name() const { return spec_.name; }
  HostSetConstSharedPtr hosts() const;
  void setHosts(HostSetConstSharedPtr hosts);

  /** Exact (CAS) cap on connections across all workers (HAProxy style: never exceeds). */
  bool tryAcquireConnection();
  void releaseConnection();
  uint64_t activeConnections() const { return connections_active_.load(std::memory_order_relaxed); }

  std::atomic<uint64_t> requests_total{0};
  std::atomic<uint64_t> requests_active{0};
  std::atomic<uint64_t> connect_failures_total{0};
  std::atomic<uint64_t> overflow_total{0};

private:
  config::UpstreamSpec spec_;
  mutable std::mutex hosts_mutex_;
  HostSetConstSharedPtr hosts_;
  std::atomic<uint64_t> connections_active_{0};
};
using UpstreamSharedPtr = std::shared_ptr<Upstream>;

/** Builds the host set for a spec (static endpoints; names resolved at load). */
HostSetConstSharedPtr buildStaticHostSet(const config::UpstreamSpec& spec);

/** True when two specs describe the same upstream (reuse live state across a reload). */
bool sameUpstream(const config::UpstreamSpec& a, const config::UpstreamSpec& b);

}  // namespace bulwark::upstream
