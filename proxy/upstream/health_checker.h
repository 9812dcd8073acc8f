#pragma once

#include <chrono>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <string_view>

#include "proxy/event/dispatcher.h"
#include "proxy/upstream/grpc_health.h"
#include "proxy/upstream/upstream.h"

namespace bulwark::upstream {

/** Outcome of one active health check. */
enum class HealthCheckResult { Success, Failure, Timeout };

/** @return "success", "failure" or "timeout" (label `result` of bulwark_health_checks_total). */
std::string_view healthCheckResultLabel(HealthCheckResult result);

/**
 * Active health checks for one upstream's hosts (upstream `healthCheck`): HTTP GET `path`
 * expecting one of `expectedStatuses`, gRPC grpc.health.v1.Health/Check for `service` over h2c,
 * or a TCP connect. One check per host every `interval` (± 10 % jitter, so checks of many hosts
 * and many proxies do not synchronise), each bounded by `timeout`, on a fresh connection (a
 * check then also proves the host accepts connections). `unhealthyThreshold` failures in a row
 * mark a host unhealthy, `healthyThreshold` successes in a row healthy again; the flag is the
 * host's LbHostState::healthy atomic, which every worker's picker reads on each pick. A success
 * on a host that passes its checks also ends an outlier ejection of it
 * (Upstream::onActiveHealthCheckSuccess, Envoy's successful_active_health_check_uneject_host).
 * Thread: main (all timers and connections run on the main dispatcher).
 */
class HealthChecker {
public:
  HealthChecker(event::Dispatcher& dispatcher, UpstreamSharedPtr upstream);
  ~HealthChecker();
  HealthChecker(const HealthChecker&) = delete;
  HealthChecker& operator=(const HealthChecker&) = delete;

  /** Starts checking every host of the current set; call again after the set changed. */
  void syncHosts();

private:
  class Session;
  class Probe;
  friend class Session;

  std::chrono::milliseconds jittered(std::chrono::milliseconds base);

  event::Dispatcher& dispatcher_;
  UpstreamSharedPtr upstream_;
  config::HealthCheckSpec spec_;
  std::mt19937_64 rng_;
  std::map<const Host*, std::unique_ptr<Session>> sessions_;
};

}  // namespace bulwark::upstream
