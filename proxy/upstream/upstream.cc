#include "proxy/upstream/upstream.h"

namespace bulwark::upstream {

Upstream::Upstream(config::UpstreamSpec spec, HostSetConstSharedPtr hosts)
    : spec_(std::move(spec)), hosts_(std::move(hosts)) {}

HostSetConstSharedPtr Upstream::hosts() const {
  std::lock_guard<std::mutex> lock(hosts_mutex_);
  return hosts_;
}

void Upstream::setHosts(HostSetConstSharedPtr hosts) {
  std::lock_guard<std::mutex> lock(hosts_mutex_);
  hosts_ = std::move(hosts);
}

bool Upstream::tryAcquireConnection() {
  uint64_t max = spec_.connection_pool.max_connections;
  uint64_t current = connections_active_.load(std::memory_order_relaxed);
  while (current < max) {
    if (connections_active_.compare_exchange_weak(current, current + 1, std::memory_order_acq_rel)) {
      return true;
    }
  }
  overflow_total.fetch_add(1, std::memory_order_relaxed);
  return false;
}

namespace {

/** Holds one maxRequests slot. Thread: the attempt's worker; the counter is atomic. */
class RequestSlotPermit : public AttemptPermit {
public:
  explicit RequestSlotPermit(std::atomic<uint64_t>& counter) : counter_(counter) {}
  ~RequestSlotPermit() override { counter_.fetch_sub(1, std::memory_order_acq_rel); }

private:
  std::atomic<uint64_t>& counter_;
};

}  // namespace

std::variant<AttemptPermitPtr, AdmitRejection> Upstream::admitAttempt(std::chrono::steady_clock::time_point) {
  uint64_t max = spec_.connection_pool.max_requests;
  uint64_t current = attempts_active_.load(std::memory_order_relaxed);
  while (true) {
    if (current >= max) {
      overflow_total.fetch_add(1, std::memory_order_relaxed);
      return AdmitRejection{"upstream_overflow", std::chrono::milliseconds(0)};
    }
    if (attempts_active_.compare_exchange_weak(current, current + 1, std::memory_order_acq_rel)) break;
  }
  return AttemptPermitPtr(std::make_unique<RequestSlotPermit>(attempts_active_));
}

void Upstream::onAttemptComplete(Host& host, const policies::AttemptResult& result, std::chrono::nanoseconds,
                                 AttemptPermitPtr permit, std::chrono::steady_clock::time_point) {
  if (policies::isFailure(policies::classify(result))) {
    host.errors_total.fetch_add(1, std::memory_order_relaxed);
  }
  permit.reset();
}

void Upstream::releaseConnection() { connections_active_.fetch_sub(1, std::memory_order_acq_rel); }

HostSetConstSharedPtr buildStaticHostSet(const config::UpstreamSpec& spec) {
  auto set = std::make_shared<HostSet>();
  for (const auto& ep : spec.static_endpoints) {
    set->hosts.push_back(std::make_shared<Host>(ep.address, ep.weight));
  }
  return set;
}

bool sameUpstream(const config::UpstreamSpec& a, const config::UpstreamSpec& b) {
  if (a.name != b.name || a.protocol != b.protocol || a.static_endpoints.size() != b.static_endpoints.size()) {
    return false;
  }
  for (size_t i = 0; i < a.static_endpoints.size(); ++i) {
    if (a.static_endpoints[i].address != b.static_endpoints[i].address ||
        a.static_endpoints[i].weight != b.static_endpoints[i].weight) {
      return false;
    }
  }
  const auto& pa = a.connection_pool;
  const auto& pb = b.connection_pool;
  return pa.max_connections == pb.max_connections && pa.connect_timeout == pb.connect_timeout &&
         pa.idle_timeout == pb.idle_timeout && pa.max_pending_requests == pb.max_pending_requests &&
         pa.max_requests == pb.max_requests && pa.max_concurrent_streams == pb.max_concurrent_streams &&
         pa.max_requests_per_connection == pb.max_requests_per_connection &&
         a.load_balancer.policy == b.load_balancer.policy;
}

}  // namespace bulwark::upstream
