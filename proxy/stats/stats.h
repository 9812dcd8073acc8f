#pragma once

#include <array>
#include <chrono>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include <prometheus/counter.h>
#include <prometheus/family.h>
#include <prometheus/gauge.h>
#include <prometheus/histogram.h>
#include <prometheus/registry.h>

#include "proxy/stats/sharded_histogram.h"

namespace bulwark::stats {

class Stats;

/**
 * bulwark_dry_run_decisions_total: labelled {route, policy, decision} by the route filters and
 * {upstream, policy, decision} by upstreams; one family, so the name and help are defined once.
 */
inline constexpr const char* kDryRunDecisionsName = "bulwark_dry_run_decisions_total";
inline constexpr const char* kDryRunDecisionsHelp =
    "Refusals a policy in mode dryRun would have made (the requests went on)";

/** Index of a status code's class: 0 = none (no response), 1..5 = 1xx..5xx. */
inline size_t codeClassIndex(uint32_t status) {
  return status >= 100 && status < 600 ? status / 100 : 0;
}
inline const char* codeClassName(size_t index) {
  static const char* kNames[] = {"none", "1xx", "2xx", "3xx", "4xx", "5xx"};
  return kNames[index];
}

/**
 * Metric handles for one (listener, route, upstream), created at config time so the data path
 * only touches atomics (histograms: the calling thread's own copy of their counts).
 * Thread: any (prometheus-cpp metrics are internally synchronised).
 */
struct RouteStats {
  std::array<prometheus::Counter*, 6> requests{};  // by code class
  std::array<ShardedHistogram*, 6> duration{};     // by code class
  prometheus::Gauge* active = nullptr;
  prometheus::Counter* attempts_initial = nullptr;
  prometheus::Counter* attempts_retry = nullptr;
  prometheus::Counter* attempts_hedge = nullptr;
  ShardedHistogram* attempt_duration = nullptr;
  ShardedHistogram* attempts_per_request = nullptr;
  // Rare events: created on first use through the owning Stats (its families are thread-safe).
  Stats* owner = nullptr;
  prometheus::Counter& retry(const std::string& reason);
  void retryLimitExceeded();
  void retryBudgetExhausted();
  void pushbackHonored();
  void hedge(const std::string& result);
  void deadlineExceeded();
  /** timeouts.idle expired; `response_started`: the stream was reset instead of answered 504. */
  void streamIdleTimeout(bool response_started);
  /** An Upgrade request was answered by the upstream: 101 (`switched`) or anything else. */
  void upgrade(const std::string& protocol, bool switched);
  /** Tunnels (101 answered, bytes relayed both ways) open now on this route. */
  prometheus::Gauge& tunnelsActive();
  // gRPC routes also count by grpc_status (names); created on first use.
  prometheus::Family<prometheus::Counter>* grpc_family = nullptr;
  std::string listener, route, upstream;
  std::mutex grpc_mutex;
  std::vector<std::pair<std::string, prometheus::Counter*>> grpc_counters;
  prometheus::Counter& grpcStatus(const std::string& status_name);
};

/**
 * TLS handshake metrics, shared by listeners (label `listener`) and upstreams (label `upstream`):
 * outcomes by result, handshake latency, resumed sessions. Thread: any.
 */
class TlsHandshakeMetrics {
public:
  explicit TlsHandshakeMetrics(prometheus::Registry& registry);
  /** `side`: "listener" or "upstream"; `result`: "ok" or the failure reason. */
  void record(std::string_view side, const std::string& name, std::string_view result,
              std::chrono::steady_clock::duration duration, bool resumed);

private:
  prometheus::Family<prometheus::Counter>& handshakes_;
  prometheus::Family<prometheus::Histogram>& duration_;
  prometheus::Family<prometheus::Counter>& resumed_;
};

/**
 * The process-wide registry and metric families.
 * Thread: any.
 */
class Stats {
public:
  explicit Stats(std::vector<double> latency_buckets);

  prometheus::Registry& registry() { return *registry_; }
  std::shared_ptr<prometheus::Registry> registrySharedPtr() { return registry_; }

  std::shared_ptr<RouteStats> routeStats(const std::string& listener, const std::string& route,
                                         const std::string& upstream);
  prometheus::Counter& localReply(const std::string& route, const std::string& reason);
  prometheus::Counter& protocolError(const std::string& listener, const std::string& reason);
  prometheus::Counter& fallback(const std::string& route, const std::string& trigger);
  prometheus::Gauge& downstreamConnectionsActive(const std::string& listener);
  prometheus::Counter& downstreamConnectionsTotal(const std::string& listener);
  prometheus::Counter& configReload(const std::string& result);
  prometheus::Counter& configReloadFailures() { return *reload_failures_; }
  prometheus::Gauge& lastReloadSuccessful() { return *last_reload_ok_; }
  prometheus::Gauge& lastReloadTimestamp() { return *last_reload_ts_; }
  void setServerState(const std::string& state);

  /** Refreshes the process metrics, which are read at scrape time. Thread: main. */
  void refreshProcessGauges();
  prometheus::Gauge& upstreamGauge(const std::string& family, const std::string& upstream);
  TlsHandshakeMetrics& tls() { return tls_; }
  /** Not-after of a loaded certificate file (Unix seconds). */
  prometheus::Gauge& certificateExpiry(const std::string& file);
  prometheus::Counter& certificateReloadFailures() { return *certificate_reload_failures_; }
  prometheus::Counter& accessLogDroppedBytes() { return *access_log_dropped_bytes_; }

  /** Prometheus text exposition of everything. */
  std::string serialize();

private:
  std::shared_ptr<prometheus::Registry> registry_;
  std::vector<double> buckets_;
  prometheus::Family<prometheus::Counter>* requests_;
  // The request path's histograms: exported by serialize() beside the registry's families.
  ShardedHistogramFamily duration_;
  ShardedHistogramFamily attempt_duration_;
  ShardedHistogramFamily attempts_per_request_;
  prometheus::Family<prometheus::Gauge>* active_;
  prometheus::Family<prometheus::Counter>* attempts_;
  prometheus::Family<prometheus::Counter>* local_replies_;
  prometheus::Family<prometheus::Counter>* protocol_errors_;
  prometheus::Family<prometheus::Counter>* fallbacks_;
  prometheus::Family<prometheus::Counter>* retries_;
  prometheus::Family<prometheus::Counter>* retry_limit_exceeded_;
  prometheus::Family<prometheus::Counter>* retry_budget_exhausted_;
  prometheus::Family<prometheus::Counter>* pushback_honored_;
  prometheus::Family<prometheus::Counter>* hedges_;
  prometheus::Family<prometheus::Counter>* deadline_exceeded_;
  prometheus::Family<prometheus::Counter>* stream_idle_timeouts_;
  prometheus::Family<prometheus::Counter>* upgrades_;
  prometheus::Family<prometheus::Gauge>* tunnels_active_;
  friend struct RouteStats;
  prometheus::Family<prometheus::Gauge>* cx_active_;
  prometheus::Family<prometheus::Counter>* cx_total_;
  prometheus::Family<prometheus::Counter>* reloads_;
  prometheus::Family<prometheus::Gauge>* server_state_;
  prometheus::Family<prometheus::Gauge>* upstream_cx_active_;
  prometheus::Family<prometheus::Gauge>* upstream_endpoints_;
  prometheus::Counter* reload_failures_;
  prometheus::Gauge* last_reload_ok_;
  prometheus::Gauge* last_reload_ts_;
  // The standard process collector's names, types and help (client_golang, client_python).
  prometheus::Gauge* rss_;
  prometheus::Gauge* virtual_memory_;
  prometheus::Gauge* virtual_memory_max_;
  prometheus::Counter* cpu_;
  prometheus::Gauge* fds_;
  prometheus::Gauge* max_fds_;
  prometheus::Gauge* start_time_;
  TlsHandshakeMetrics tls_{*registry_};
  prometheus::Family<prometheus::Gauge>* certificate_expiry_;
  prometheus::Counter* certificate_reload_failures_;
  prometheus::Counter* access_log_dropped_bytes_;
};

}  // namespace bulwark::stats
