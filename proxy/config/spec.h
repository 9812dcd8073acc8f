#pragma once

// Plain structs for a validated ProxyConfig. The parser fills
// them strictly (unknown field = error with a field path); the compiler turns them into the
// runtime snapshot. Defaults here are the documented defaults. Thread: value types, any.

#include <chrono>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace bulwark::config {

using Duration = std::chrono::milliseconds;

/** Where a YAML node came from, for error messages and `check --print-effective`. */
struct Mark {
  int line = 0;    // 1-based; 0 = unknown
  int column = 0;  // 1-based
};

struct AdminSpec {
  std::string address = "127.0.0.1:9901";
  std::vector<std::string> require_upstreams;  // readiness.requireUpstreams
};

struct DrainSpec {
  Duration min_duration{0};
  Duration timeout{25000};
  bool exit_on_zero_active = true;
};

struct RuntimeSpec {
  int concurrency = 0;  // 0 = auto (CPU quota, min 1)
  DrainSpec drain;
  uint32_t max_connections_per_worker = 0;  // 0 = unlimited
};

struct AccessLogSpec {
  std::string path;             // empty = off
  std::string format = "json";  // json | text
  double sample = 1.0;          // 0..1
};

struct RequestIdSpec {
  bool generate = true;
  bool preserve_external = true;
  bool return_in_response = false;
};

struct ObservabilitySpec {
  AccessLogSpec access_log;
  std::string metrics_path = "/metrics";
  std::vector<double> latency_buckets = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25,
                                         0.5,   0.75, 1,     2.5,  5,     7.5, 10};
  RequestIdSpec request_id;
  std::vector<std::string> trace_propagation = {"w3c"};  // tracing.propagation: w3c | b3
};

enum class ListenerProtocol { Http1, H2c, Auto };

/** Per-listener protection limits against hostile or broken clients. */
struct ListenerLimitsSpec {
  uint32_t max_request_headers_bytes = 60 * 1024;  // request line + headers; over -> 431
  uint32_t max_headers_count = 100;                // over -> 431
  uint64_t max_request_body_bytes = 0;             // 0 = unlimited (streamed); over -> 413
  Duration header_read_timeout{10000};             // slowloris: close when headers are slower
  Duration idle_timeout{60000};                    // idle downstream connection close
  uint32_t max_concurrent_streams = 100;           // HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS
};

struct ListenerSpec {
  std::string name;
  std::string address;  // host:port, [v6]:port
  ListenerProtocol protocol = ListenerProtocol::Auto;
  std::vector<std::string> routes;  // route names, in match order; empty = all routes
  ListenerLimitsSpec limits;
  Mark mark;
};

enum class UpstreamProtocol { Http1, Http2, Grpc };

struct EndpointSpec {
  std::string address;  // host:port (IPv4 literal, [IPv6] literal, or a name resolved at load)
  uint32_t weight = 1;
};

struct DnsSpec {
  std::string name;
  uint16_t port = 0;
  Duration refresh_interval{5000};
};

enum class LbPolicy { RoundRobin, LeastRequest, Random, RingHash, Maglev, PeakEwma };

struct ConsistentHashSpec {
  std::string http_header_name;
  std::string http_cookie_name;
  bool use_source_ip = false;
};

struct LoadBalancerSpec {
  LbPolicy policy = LbPolicy::RoundRobin;
  uint32_t choice_count = 2;
  std::optional<ConsistentHashSpec> consistent_hash;
};

struct ConnectionPoolSpec {
  uint32_t max_connections = 1024;  // per upstream, all workers
  Duration connect_timeout{1000};
  Duration idle_timeout{60000};
  uint32_t max_pending_requests = 1024;
  uint32_t max_requests = 1024;
  uint32_t max_requests_per_connection = 0;  // 0 = unlimited
  uint32_t max_retries = 3;
  uint32_t max_concurrent_streams = 100;  // HTTP/2 streams per upstream connection
};

struct OutlierDetectionSpec {
  uint32_t consecutive_5xx_errors = 5;
  uint32_t consecutive_gateway_errors = 0;  // 0 = off
  uint32_t consecutive_local_origin_failures = 5;
  uint32_t failure_percentage_threshold = 0;  // 0 = off
  uint32_t failure_percentage_minimum_hosts = 5;
  uint32_t failure_percentage_request_volume = 50;
  Duration interval{10000};
  Duration base_ejection_time{30000};
  Duration max_ejection_time{300000};
  uint32_t max_ejection_percent = 10;
  uint32_t panic_threshold_percent = 50;
};

struct CircuitBreakerSpec {
  uint32_t failure_rate_threshold = 50;  // percent
  Duration slow_call_duration_threshold{60000};
  uint32_t slow_call_rate_threshold = 100;  // percent
  uint32_t minimum_requests = 20;
  Duration window{10000};
  Duration open_duration{5000};
  uint32_t half_open_requests = 5;
  bool per_host = false;
};

struct HealthCheckSpec {
  enum class Kind { Http, Grpc, Tcp } kind = Kind::Http;
  std::string http_path = "/healthz";
  std::vector<uint32_t> expected_statuses = {200};
  std::string grpc_service;
  Duration interval{5000};
  Duration timeout{1000};
  uint32_t unhealthy_threshold = 3;
  uint32_t healthy_threshold = 2;
};

struct UpstreamSpec {
  std::string name;
  UpstreamProtocol protocol = UpstreamProtocol::Http1;
  std::vector<EndpointSpec> static_endpoints;
  std::optional<DnsSpec> dns;
  LoadBalancerSpec load_balancer;
  ConnectionPoolSpec connection_pool;
  std::optional<OutlierDetectionSpec> outlier_detection;
  std::optional<CircuitBreakerSpec> circuit_breaker;
  std::optional<HealthCheckSpec> health_check;
  Mark mark;
};

struct PathMatchSpec {
  enum class Kind { Any, Prefix, Exact, Regex } kind = Kind::Any;
  std::string value;
};

struct HeaderMatchSpec {
  std::string name;  // lower-cased by the parser
  enum class Kind { Exact, Prefix, Regex, Present } kind = Kind::Present;
  std::string value;
  bool invert = false;
};

struct GrpcMatchSpec {
  std::string service;  // e.g. ranking.v1.RankingService
  std::string method;   // empty = all methods
};

struct RouteMatchSpec {
  PathMatchSpec path;
  std::vector<std::string> methods;  // upper-case; empty = any
  std::vector<HeaderMatchSpec> headers;
  std::optional<GrpcMatchSpec> grpc;
};

struct GrpcTimeoutSpec {
  bool honor_deadline = true;
  Duration deadline_offset{0};
  Duration max_deadline{0};  // 0 = no cap
};

struct TimeoutsSpec {
  Duration request{15000};  // 0 = none
  Duration idle{0};         // per-stream idle; 0 = none
  GrpcTimeoutSpec grpc;
};

enum class Jitter { Full, Equal, None };
enum class NonIdempotentPolicy { Never, WithIdempotencyKey, Always };

struct BackoffSpec {
  Duration base_interval{25};
  Duration max_interval{250};
  Jitter jitter = Jitter::Full;
};

struct RetryBudgetSpec {
  double percent = 20.0;
  uint32_t min_retry_concurrency = 3;
};

struct RetriesSpec {
  uint32_t attempts = 1;        // total attempts including the first
  Duration per_try_timeout{0};  // 0 = none (bounded by the request timeout)
  std::vector<std::string> retry_on = {"connect-failure", "refused-stream"};
  std::vector<uint32_t> retriable_status_codes;
  BackoffSpec backoff;
  RetryBudgetSpec budget;
  bool retry_ignore_previous_hosts = true;
  bool respect_retry_after = true;
  Duration max_retry_after{2000};
  NonIdempotentPolicy non_idempotent = NonIdempotentPolicy::Never;
  uint64_t retry_buffer_limit = 64 * 1024;
};

struct HedgingSpec {
  Duration delay{100};
  uint32_t max_requests = 2;
};

struct BulkheadSpec {
  uint32_t max_concurrent_requests = 1024;
  uint32_t max_queued_requests = 0;
  Duration queue_timeout{0};
  std::string partition_header;  // partitionBy.header; empty = no partitions
  uint32_t max_concurrent_per_partition = 0;
};

struct AdaptiveConcurrencySpec {
  std::string algorithm = "gradient";  // gradient | aimd
  uint32_t min_limit = 8;
  uint32_t max_limit = 1024;
  double latency_percentile = 0.9;
  Duration window{1000};
};

struct RejectSpec {
  uint32_t http_status = 503;
  std::string grpc_status = "UNAVAILABLE";
  Duration retry_after{1000};
};

struct LoadSheddingSpec {
  std::optional<AdaptiveConcurrencySpec> adaptive_concurrency;
  std::string priority_header;
  RejectSpec reject;
};

struct RateLimitSpec {
  double requests_per_second = 0;
  uint32_t burst = 0;
  std::string key_header;  // empty = one bucket for the route
  bool key_client_ip = false;
  std::string headers = "draft";  // draft | legacy | off
};

struct IdempotencySpec {
  std::string header = "idempotency-key";
  std::vector<std::string> required_for = {"POST", "PATCH"};
  std::string on_missing = "noRetry";  // noRetry | reject
  bool dedupe_enabled = false;
  Duration dedupe_ttl{86400000};
  uint32_t dedupe_max_entries = 100000;
  std::vector<std::string> dedupe_fingerprint = {"method", "path", "bodySha256"};
  // Bound on the request body buffered for the fingerprint (larger: 413) and on the response
  // body stored for replay (larger: forwarded, not stored, the key released).
  uint64_t dedupe_max_body_bytes = 1024 * 1024;
};

struct FallbackSpec {
  std::vector<std::string> on;  // circuitOpen | shed | rateLimited | timeout | upstream5xx
  uint32_t status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string grpc_status;  // gRPC routes: status name to answer with
  std::string grpc_message;
};

/** Blocks that `defaults` can carry; a route's block replaces the inherited one. */
struct PolicyBlocks {
  std::optional<TimeoutsSpec> timeouts;
  std::optional<RetriesSpec> retries;
  std::optional<HedgingSpec> hedging;
  std::optional<BulkheadSpec> bulkhead;
  std::optional<LoadSheddingSpec> load_shedding;
  std::optional<RateLimitSpec> rate_limit;
  std::optional<IdempotencySpec> idempotency;
  std::optional<FallbackSpec> fallback;
};

struct RouteSpec {
  std::string name;
  RouteMatchSpec match;
  std::string upstream;
  PolicyBlocks policies;  // after inheritance: defaults merged in (block-wise replacement)
  Mark mark;
};

struct ProxyConfigSpec {
  std::string source_path;  // file the config came from
  std::string name;         // metadata.name
  AdminSpec admin;
  RuntimeSpec runtime;
  ObservabilitySpec observability;
  PolicyBlocks defaults;
  std::vector<ListenerSpec> listeners;
  std::vector<UpstreamSpec> upstreams;
  std::vector<RouteSpec> routes;
};

}  // namespace bulwark::config
