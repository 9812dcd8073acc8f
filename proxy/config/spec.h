#pragma once

// Plain structs for a validated ProxyConfig. The parser fills them strictly (unknown field =
// error with a field path); routes, upstreams and filters compile them into the runtime
// snapshot. Defaults here are the documented defaults. Thread: value types, any.
//
// Each struct lists its fields once, by their YAML names, in `fields(v)`: `v(name, member)` for a
// value (a nested struct, an optional block or a list of structs is visited in turn),
// `v.group(name, f)` for a YAML map whose fields live flat in this struct, and `v.when(cond, f)`
// for fields that appear only in some shapes (a group or value is visited only when `cond`).
// `bulwark check --print-effective` and `/config` print the config from these lists
// (effective_json.cc), so a new field is printed once it is listed here.

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

  template <typename V>
  void fields(V& v) const {
    v("address", address);
    v.group("readiness", [&](V& g) { g("requireUpstreams", require_upstreams); });
  }
};

struct DrainSpec {
  Duration min_duration{0};
  Duration timeout{25000};
  bool exit_on_zero_active = true;

  template <typename V>
  void fields(V& v) const {
    v("minDuration", min_duration);
    v("timeout", timeout);
    v("exitOnZeroActive", exit_on_zero_active);
  }
};

/** One overload action and the fraction of maxHeapBytes at which it turns on. */
struct OverloadActionSpec {
  std::string action;  // stopAcceptingConnections | disableKeepalive | resetHighMemoryStreams
  double threshold = 1.0;

  template <typename V>
  void fields(V& v) const {
    v("action", action);
    v("threshold", threshold);
  }
};

/** Envoy's overload manager, on heap bytes: off while max_heap_bytes is 0. */
struct OverloadSpec {
  uint64_t max_heap_bytes = 0;
  Duration refresh_interval{250};
  std::vector<OverloadActionSpec> actions;  // empty with max_heap_bytes set = the defaults

  template <typename V>
  void fields(V& v) const {
    v("maxHeapBytes", max_heap_bytes);
    v("refreshInterval", refresh_interval);
    v("actions", actions);
  }
};

struct RuntimeSpec {
  int concurrency = 0;  // 0 = auto (CPU quota, min 1)
  DrainSpec drain;
  OverloadSpec overload;
  uint32_t max_connections_per_worker = 0;  // 0 = unlimited
  // Reload when the file changes; unset = on exactly when the file sits in a Kubernetes
  // ConfigMap volume (a "..data" entry beside it), decided by the running server.
  std::optional<bool> watch_config;

  template <typename V>
  void fields(V& v) const {
    v.when(concurrency == 0, [&](V& w) { w("concurrency", std::string("auto")); });
    v.when(concurrency != 0, [&](V& w) { w("concurrency", concurrency); });
    v("drain", drain);
    v("maxConnectionsPerWorker", max_connections_per_worker);
    v.when(overload.max_heap_bytes > 0, [&](V& w) { w("overload", overload); });
    v.when(watch_config.has_value(), [&](V& w) { w("watchConfig", watch_config.value_or(false)); });
  }
};

struct AccessLogSpec {
  std::string path;               // empty = off
  std::string format = "json";    // json | text
  double sample = 1.0;            // 0..1
  Duration flush_interval{1000};  // buffered lines reach the file at least this often

  template <typename V>
  void fields(V& v) const {
    v("path", path);
    v("format", format);
    v("sample", sample);
    v("flushInterval", flush_interval);
  }
};

struct RequestIdSpec {
  bool generate = true;
  bool preserve_external = true;
  bool return_in_response = false;

  template <typename V>
  void fields(V& v) const {
    v("generate", generate);
    v("preserveExternal", preserve_external);
    v("returnInResponse", return_in_response);
  }
};

struct ObservabilitySpec {
  AccessLogSpec access_log;
  std::string metrics_path = "/metrics";
  std::vector<double> latency_buckets = {0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25,
                                         0.5,   0.75, 1,     2.5,  5,     7.5, 10};
  RequestIdSpec request_id;
  std::vector<std::string> trace_propagation = {"w3c"};  // tracing.propagation: w3c | b3
  double trace_sampling_ratio = 0.01;                    // tracing.sampling.ratio
  bool trace_sampling_parent_based = true;               // tracing.sampling.parentBased
  // tracing.exporter.otlp: empty endpoint = no spans (propagation headers pass unchanged).
  std::string otlp_endpoint;
  Duration otlp_timeout{2000};
  uint32_t otlp_batch_max_spans = 512;
  Duration otlp_batch_interval{1000};
  uint32_t otlp_max_queue = 8192;
  // explain.allowFrom: CIDRs whose `x-bulwark-explain: 1` gets the decision record back.
  std::vector<std::string> explain_allow_from = {"127.0.0.0/8", "::1/128"};

  template <typename V>
  void fields(V& v) const {
    v("accessLog", access_log);
    v.group("metrics", [&](V& g) {
      g("path", metrics_path);
      g("latencyBuckets", latency_buckets);
    });
    v.group("tracing", [&](V& g) {
      g("propagation", trace_propagation);
      g("requestId", request_id);
      g.group("sampling", [&](V& s) {
        s("ratio", trace_sampling_ratio);
        s("parentBased", trace_sampling_parent_based);
      });
      g.when(!otlp_endpoint.empty(), [&](V& w) {
        w.group("exporter", [&](V& e) {
          e.group("otlp", [&](V& o) {
            o("endpoint", otlp_endpoint);
            o("timeout", otlp_timeout);
            o.group("batch", [&](V& b) {
              b("maxSpans", otlp_batch_max_spans);
              b("interval", otlp_batch_interval);
            });
            o("maxQueue", otlp_max_queue);
          });
        });
      });
    });
    v.group("explain", [&](V& g) { g("allowFrom", explain_allow_from); });
  }
};

enum class ListenerProtocol { Http1, H2c, Auto };

/** Per-listener protection limits against hostile or broken clients. */
struct ListenerLimitsSpec {
  uint32_t max_request_headers_bytes = 60 * 1024;  // request line + headers; over -> 431
  uint32_t max_headers_count = 100;                // over -> 431
  uint64_t max_request_body_bytes = 0;             // 0 = unlimited (streamed); over -> 413
  Duration header_read_timeout{10000};             // slowloris: close when headers are slower
  Duration idle_timeout{60000};                    // idle downstream connection close
  Duration write_timeout{30000};          // output pending with no byte taken for this long: close
  uint32_t max_concurrent_streams = 100;  // HTTP/2 SETTINGS_MAX_CONCURRENT_STREAMS
  // Slow POST: a request body arriving slower than this, averaged over the window, gets 408.
  // 0 = off (a gRPC client stream may legitimately pause).
  uint64_t min_request_body_rate = 0;  // bytes per second
  Duration request_body_rate_window{10000};
  // HTTP/2: stream resets bulwark sends and per-stream protocol errors, as a token bucket per
  // connection; when it runs dry the connection gets GOAWAY (ENHANCE_YOUR_CALM).
  uint32_t stream_error_burst = 100;
  uint32_t stream_errors_per_second = 10;

  template <typename V>
  void fields(V& v) const {
    v("maxRequestHeadersBytes", max_request_headers_bytes);
    v("maxHeadersCount", max_headers_count);
    v("maxRequestBodyBytes", max_request_body_bytes);
    v("headerReadTimeout", header_read_timeout);
    v("idleTimeout", idle_timeout);
    v("writeTimeout", write_timeout);
    v("maxConcurrentStreams", max_concurrent_streams);
    v("minRequestBodyRate", min_request_body_rate);
    v("requestBodyRateWindow", request_body_rate_window);
    v.group("streamErrorBudget", [&](V& g) {
      g("burst", stream_error_burst);
      g("perSecond", stream_errors_per_second);
    });
  }
};

/** A certificate chain and its private key (PEM files). */
struct TlsCertificateSpec {
  std::string certificate_chain;
  std::string private_key;

  template <typename V>
  void fields(V& v) const {
    v("certificateChain", certificate_chain);
    v("privateKey", private_key);
  }
};

/** TLS termination on a listener (Istio's ServerTLSSettings vocabulary). */
struct ListenerTlsSpec {
  std::string mode = "SIMPLE";                   // SIMPLE | MUTUAL | OPTIONAL_MUTUAL
  std::vector<TlsCertificateSpec> certificates;  // picked by SNI against SANs; first = default
  std::string ca_certificates;                   // verifies client certificates (MUTUAL modes)
  std::vector<std::string> subject_alt_names;    // allowed client SANs: exact, or prefix*
  std::string min_protocol_version = "TLSV1_2";  // TLSV1_2 | TLSV1_3
  std::vector<std::string> alpn;                 // empty = from the listener's protocol
  Duration handshake_timeout{10000};
  // Envoy's forward_client_cert_details, reduced: any inbound x-forwarded-client-cert is always
  // removed; when true, the verified client certificate's hash and SANs are sent upstream in it.
  bool forward_client_cert_details = false;

  template <typename V>
  void fields(V& v) const {
    v("mode", mode);
    v("forwardClientCertDetails", forward_client_cert_details);
    v("certificates", certificates);
    v("caCertificates", ca_certificates);
    v("subjectAltNames", subject_alt_names);
    v("minProtocolVersion", min_protocol_version);
    v("alpn", alpn);
    v("handshakeTimeout", handshake_timeout);
  }
};

/** TLS origination to an upstream (Istio's ClientTLSSettings vocabulary). */
struct UpstreamTlsSpec {
  std::string mode = "SIMPLE";                 // SIMPLE | MUTUAL
  std::string sni;                             // empty = the endpoint's host name when it has one
  std::string ca_certificates;                 // empty = the system store
  std::vector<std::string> subject_alt_names;  // verified against the peer certificate
  std::string client_certificate;              // MUTUAL
  std::string private_key;                     // MUTUAL
  bool insecure_skip_verify = false;

  template <typename V>
  void fields(V& v) const {
    v("mode", mode);
    v("sni", sni);
    v("caCertificates", ca_certificates);
    v("subjectAltNames", subject_alt_names);
    v("clientCertificate", client_certificate);
    v("privateKey", private_key);
    v("insecureSkipVerify", insecure_skip_verify);
  }
};

/** How a listener treats request paths before routing (Envoy's HttpConnectionManager flags). */
struct ListenerHttpSpec {
  bool normalize_path = true;
  bool merge_slashes = true;
  std::string escaped_slashes = "KEEP_UNCHANGED";  // | REJECT_REQUEST | UNESCAPE_AND_REDIRECT |
                                                   //   UNESCAPE_AND_FORWARD

  template <typename V>
  void fields(V& v) const {
    v("normalizePath", normalize_path);
    v("mergeSlashes", merge_slashes);
    v("escapedSlashes", escaped_slashes);
  }
};

struct ListenerSpec {
  std::string name;
  std::string address;  // host:port, [v6]:port
  ListenerProtocol protocol = ListenerProtocol::Auto;
  std::vector<std::string> routes;  // route names, in match order; empty = all routes
  ListenerLimitsSpec limits;
  ListenerHttpSpec http;
  std::optional<ListenerTlsSpec> tls;
  Mark mark;

  template <typename V>
  void fields(V& v) const {
    v("name", name);
    v("address", address);
    v("protocol", protocol);
    v("routes", routes);
    v("limits", limits);
    v("http", http);
    v.when(tls.has_value(), [&](V& w) { w("tls", tls); });
  }
};

enum class UpstreamProtocol { Http1, Http2, Grpc };

struct EndpointSpec {
  std::string address;  // host:port (IPv4 literal, [IPv6] literal, or a name resolved at load)
  uint32_t weight = 1;

  template <typename V>
  void fields(V& v) const {
    v("address", address);
    v("weight", weight);
  }
};

struct DnsSpec {
  std::string name;
  uint16_t port = 0;
  Duration refresh_interval{5000};

  template <typename V>
  void fields(V& v) const {
    v("name", name);
    v("port", port);
    v("refreshInterval", refresh_interval);
  }
};

enum class LbPolicy { RoundRobin, LeastRequest, Random, RingHash, Maglev, PeakEwma };

struct ConsistentHashSpec {
  std::string http_header_name;
  std::string http_cookie_name;
  bool use_source_ip = false;

  template <typename V>
  void fields(V& v) const {
    v.when(!http_header_name.empty(), [&](V& w) { w("httpHeaderName", http_header_name); });
    v.when(http_header_name.empty() && !http_cookie_name.empty(),
           [&](V& w) { w.group("httpCookie", [&](V& g) { g("name", http_cookie_name); }); });
    v.when(http_header_name.empty() && http_cookie_name.empty(),
           [&](V& w) { w("useSourceIp", use_source_ip); });
  }
};

struct LoadBalancerSpec {
  LbPolicy policy = LbPolicy::RoundRobin;
  uint32_t choice_count = 2;
  std::optional<ConsistentHashSpec> consistent_hash;

  template <typename V>
  void fields(V& v) const {
    v("simple", policy);
    v("choiceCount", choice_count);
    v("consistentHash", consistent_hash);
  }
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

  template <typename V>
  void fields(V& v) const {
    v.group("tcp", [&](V& g) {
      g("maxConnections", max_connections);
      g("connectTimeout", connect_timeout);
      g("idleTimeout", idle_timeout);
    });
    v.group("http", [&](V& g) {
      g("maxPendingRequests", max_pending_requests);
      g("maxRequests", max_requests);
      g("maxRequestsPerConnection", max_requests_per_connection);
      g("maxRetries", max_retries);
      g("maxConcurrentStreams", max_concurrent_streams);
    });
  }
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
  // 5xx answers carrying Retry-After / grpc-retry-pushback-ms are left out of every rule.
  bool ignore_retry_after = false;
  std::string mode = "enforce";  // enforce | dryRun (decide and count, never refuse)

  template <typename V>
  void fields(V& v) const {
    v("mode", mode);
    v("consecutive5xxErrors", consecutive_5xx_errors);
    v("consecutiveGatewayErrors", consecutive_gateway_errors);
    v("consecutiveLocalOriginFailures", consecutive_local_origin_failures);
    v("failurePercentageThreshold", failure_percentage_threshold);
    v("failurePercentageMinimumHosts", failure_percentage_minimum_hosts);
    v("failurePercentageRequestVolume", failure_percentage_request_volume);
    v("interval", interval);
    v("baseEjectionTime", base_ejection_time);
    v("maxEjectionTime", max_ejection_time);
    v("maxEjectionPercent", max_ejection_percent);
    v("panicThresholdPercent", panic_threshold_percent);
    v("ignoreRetryAfter", ignore_retry_after);
  }
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
  std::string mode = "enforce";  // enforce | dryRun (decide and count, never refuse)

  template <typename V>
  void fields(V& v) const {
    v("mode", mode);
    v("failureRateThreshold", failure_rate_threshold);
    v("slowCallDurationThreshold", slow_call_duration_threshold);
    v("slowCallRateThreshold", slow_call_rate_threshold);
    v("minimumRequests", minimum_requests);
    v("window", window);
    v("openDuration", open_duration);
    v("halfOpenRequests", half_open_requests);
    v("perHost", per_host);
  }
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

  template <typename V>
  void fields(V& v) const {
    v("interval", interval);
    v("timeout", timeout);
    v("unhealthyThreshold", unhealthy_threshold);
    v("healthyThreshold", healthy_threshold);
    v.when(kind == Kind::Http, [&](V& w) {
      w.group("http", [&](V& g) {
        g("path", http_path);
        g("expectedStatuses", expected_statuses);
      });
    });
    v.when(kind == Kind::Grpc,
           [&](V& w) { w.group("grpc", [&](V& g) { g("service", grpc_service); }); });
    v.when(kind == Kind::Tcp, [&](V& w) { w.group("tcp", [](V&) {}); });
  }
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
  std::optional<UpstreamTlsSpec> tls;
  Mark mark;

  template <typename V>
  void fields(V& v) const {
    v("name", name);
    v("protocol", protocol);
    v.group("endpoints", [&](V& g) {
      g.when(dns.has_value(), [&](V& w) { w("dns", dns); });
      g.when(!dns.has_value(), [&](V& w) { w("static", static_endpoints); });
    });
    v("loadBalancer", load_balancer);
    v("connectionPool", connection_pool);
    v("outlierDetection", outlier_detection);
    v("circuitBreaker", circuit_breaker);
    v("healthCheck", health_check);
    v.when(tls.has_value(), [&](V& w) { w("tls", tls); });
  }
};

struct PathMatchSpec {
  enum class Kind { Any, Prefix, Exact, Regex } kind = Kind::Any;
  std::string value;

  template <typename V>
  void fields(V& v) const {
    v.when(kind == Kind::Prefix, [&](V& w) { w("prefix", value); });
    v.when(kind == Kind::Exact, [&](V& w) { w("exact", value); });
    v.when(kind == Kind::Regex, [&](V& w) { w("regex", value); });
  }
};

struct HeaderMatchSpec {
  std::string name;  // lower-cased by the parser
  enum class Kind { Exact, Prefix, Regex, Present } kind = Kind::Present;
  std::string value;
  bool invert = false;

  template <typename V>
  void fields(V& v) const {
    v("name", name);
    v("invert", invert);
    v.when(kind == Kind::Exact, [&](V& w) { w("exact", value); });
    v.when(kind == Kind::Prefix, [&](V& w) { w("prefix", value); });
    v.when(kind == Kind::Regex, [&](V& w) { w("regex", value); });
    v.when(kind == Kind::Present, [&](V& w) { w("present", true); });
  }
};

struct GrpcMatchSpec {
  std::string service;  // e.g. ranking.v1.RankingService
  std::string method;   // empty = all methods

  template <typename V>
  void fields(V& v) const {
    v("service", service);
    v.when(!method.empty(), [&](V& w) { w("method", method); });
  }
};

struct RouteMatchSpec {
  PathMatchSpec path;
  std::vector<std::string> methods;  // upper-case; empty = any
  std::vector<HeaderMatchSpec> headers;
  std::optional<GrpcMatchSpec> grpc;
  std::vector<std::string> sni;  // TLS server names (lower-case; "*.example.com"); empty = any

  template <typename V>
  void fields(V& v) const {
    v.when(path.kind != PathMatchSpec::Kind::Any, [&](V& w) { w("path", path); });
    v.when(!methods.empty(), [&](V& w) { w("methods", methods); });
    v.when(!headers.empty(), [&](V& w) { w("headers", headers); });
    v.when(!sni.empty(), [&](V& w) { w("sni", sni); });
    v("grpc", grpc);
  }
};

struct GrpcTimeoutSpec {
  bool honor_deadline = true;
  Duration deadline_offset{0};
  Duration max_deadline{0};  // 0 = no cap

  template <typename V>
  void fields(V& v) const {
    v("honorDeadline", honor_deadline);
    v("deadlineOffset", deadline_offset);
    v("maxDeadline", max_deadline);
  }
};

struct TimeoutsSpec {
  Duration request{15000};  // 0 = none
  Duration idle{0};         // per-stream idle; 0 = none
  GrpcTimeoutSpec grpc;

  template <typename V>
  void fields(V& v) const {
    v("request", request);
    v("idle", idle);
    v("grpc", grpc);
  }
};

enum class Jitter { Full, Equal, None };
enum class NonIdempotentPolicy { Never, WithIdempotencyKey, Always };

struct BackoffSpec {
  Duration base_interval{25};
  Duration max_interval{250};
  Jitter jitter = Jitter::Full;

  template <typename V>
  void fields(V& v) const {
    v("baseInterval", base_interval);
    v("maxInterval", max_interval);
    v("jitter", jitter);
  }
};

struct RetryBudgetSpec {
  double percent = 20.0;
  uint32_t min_retry_concurrency = 3;

  template <typename V>
  void fields(V& v) const {
    v("percent", percent);
    v("minRetryConcurrency", min_retry_concurrency);
  }
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
  uint64_t retry_buffer_limit = 64UL * 1024;

  template <typename V>
  void fields(V& v) const {
    v("attempts", attempts);
    v("perTryTimeout", per_try_timeout);
    v("retryOn", retry_on);
    v("retriableStatusCodes", retriable_status_codes);
    v("backoff", backoff);
    v("budget", budget);
    v("retryIgnorePreviousHosts", retry_ignore_previous_hosts);
    v("respectRetryAfter", respect_retry_after);
    v("maxRetryAfter", max_retry_after);
    v("nonIdempotent", non_idempotent);
    v("retryBufferLimit", retry_buffer_limit);
  }
};

struct HedgingSpec {
  Duration delay{100};
  bool delay_auto = false;  // delay: auto = the recent `percentile` of attempt latencies
  Duration min_delay{5};    // auto: never hedge earlier
  double percentile = 95;   // auto: 50-99.9
  uint32_t max_requests = 2;

  template <typename V>
  void fields(V& v) const {
    v.when(delay_auto, [&](V& w) {
      w("delay", std::string("auto"));
      w("minDelay", min_delay);
      w("percentile", percentile);
    });
    v.when(!delay_auto, [&](V& w) { w("delay", delay); });
    v("maxRequests", max_requests);
  }
};

struct BulkheadSpec {
  uint32_t max_concurrent_requests = 1024;
  uint32_t max_queued_requests = 0;
  Duration queue_timeout{0};
  std::string partition_header;  // partitionBy.header; empty = no partitions
  uint32_t max_concurrent_per_partition = 0;
  std::string mode = "enforce";  // enforce | dryRun (decide and count, never refuse)

  template <typename V>
  void fields(V& v) const {
    v("mode", mode);
    v("maxConcurrentRequests", max_concurrent_requests);
    v("maxQueuedRequests", max_queued_requests);
    v("queueTimeout", queue_timeout);
    v.when(!partition_header.empty(), [&](V& w) {
      w.group("partitionBy", [&](V& g) { g("header", partition_header); });
      w("maxConcurrentPerPartition", max_concurrent_per_partition);
    });
  }
};

struct AdaptiveConcurrencySpec {
  std::string algorithm = "gradient";  // gradient | aimd
  uint32_t min_limit = 8;
  uint32_t max_limit = 1024;
  double latency_percentile = 0.9;
  Duration window{1000};

  template <typename V>
  void fields(V& v) const {
    v("algorithm", algorithm);
    v("minLimit", min_limit);
    v("maxLimit", max_limit);
    v("latencyPercentile", latency_percentile);
    v("window", window);
  }
};

struct RejectSpec {
  uint32_t http_status = 503;
  std::string grpc_status = "UNAVAILABLE";
  Duration retry_after{1000};

  template <typename V>
  void fields(V& v) const {
    v("httpStatus", http_status);
    v("grpcStatus", grpc_status);
    v("retryAfter", retry_after);
  }
};

struct LoadSheddingSpec {
  std::optional<AdaptiveConcurrencySpec> adaptive_concurrency;
  std::string priority_header;
  RejectSpec reject;
  std::string mode = "enforce";  // enforce | dryRun (decide and count, never refuse)

  template <typename V>
  void fields(V& v) const {
    v("mode", mode);
    v("adaptiveConcurrency", adaptive_concurrency);
    v.when(!priority_header.empty(), [&](V& w) { w("priorityHeader", priority_header); });
    v("reject", reject);
  }
};

struct RateLimitSpec {
  double requests_per_second = 0;
  uint32_t burst = 0;
  std::string key_header;  // empty = one bucket for the route
  bool key_client_ip = false;
  std::string headers = "draft";  // draft | legacy | off
  std::string scope = "local";    // local (per process) | global (shared through `redis`)
  // global only: what a request gets when Redis does not answer within redis.timeout.
  std::string failure_mode = "allow";  // allow | deny | local
  uint32_t expected_instances = 1;     // failureMode local: the bucket is rate / this
  std::string mode = "enforce";        // enforce | dryRun (decide and count, never refuse)

  template <typename V>
  void fields(V& v) const {
    v("mode", mode);
    v("requestsPerSecond", requests_per_second);
    v("burst", burst);
    v("headers", headers);
    v("scope", scope);
    v.when(scope == "global", [&](V& w) {
      w("failureMode", failure_mode);
      w("expectedInstances", expected_instances);
    });
    v.when(!key_header.empty(),
           [&](V& w) { w.group("key", [&](V& g) { g("header", key_header); }); });
    v.when(key_header.empty() && key_client_ip,
           [&](V& w) { w.group("key", [&](V& g) { g("clientIp", true); }); });
  }
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
  uint64_t dedupe_max_body_bytes = 1024UL * 1024;
  std::string dedupe_store = "memory";  // memory (per process) | redis (shared through `redis`)
  // store redis: how long an in-flight key blocks others when its instance never completes it
  // (a crash); longer than any request on the route may run.
  Duration dedupe_lease{60000};
  std::string dedupe_failure_mode = "deny";  // store redis, Redis unavailable: deny (503) | allow

  template <typename V>
  void fields(V& v) const {
    v("header", header);
    v("requiredFor", required_for);
    v("onMissing", on_missing);
    v.group("dedupe", [&](V& g) {
      g("enabled", dedupe_enabled);
      g("ttl", dedupe_ttl);
      g("maxEntries", dedupe_max_entries);
      g("fingerprint", dedupe_fingerprint);
      g("maxBodyBytes", dedupe_max_body_bytes);
      g("store", dedupe_store);
      g.when(dedupe_store == "redis", [&](V& w) {
        w("lease", dedupe_lease);
        w("failureMode", dedupe_failure_mode);
      });
    });
  }
};

struct FallbackSpec {
  std::vector<std::string> on;  // circuitOpen | shed | rateLimited | timeout | upstream5xx
  uint32_t status = 200;
  std::vector<std::pair<std::string, std::string>> headers;
  std::string body;
  std::string grpc_status;  // gRPC routes: status name to answer with
  std::string grpc_message;

  template <typename V>
  void fields(V& v) const {
    v("on", on);
    v.when(!grpc_status.empty(), [&](V& w) {
      w.group("grpc", [&](V& g) {
        g("status", grpc_status);
        g("message", grpc_message);
      });
    });
    v.when(grpc_status.empty(), [&](V& w) {
      w.group("response", [&](V& g) {
        g("status", status);
        g("headers", headers);
        g("body", body);
      });
    });
  }
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

  template <typename V>
  void fields(V& v) const {
    v("timeouts", timeouts);
    v("retries", retries);
    v("hedging", hedging);
    v("bulkhead", bulkhead);
    v("loadShedding", load_shedding);
    v("rateLimit", rate_limit);
    v("idempotency", idempotency);
    v("fallback", fallback);
  }
};

struct RouteSpec {
  std::string name;
  RouteMatchSpec match;
  std::string upstream;
  // HTTP/1.1 Upgrade protocols tunnelled to the upstream once it answers 101 (lower-case tokens,
  // e.g. "websocket"); any other upgrade request is answered 403.
  std::vector<std::string> upgrades;
  PolicyBlocks policies;  // after inheritance: defaults merged in (block-wise replacement)
  Mark mark;

  template <typename V>
  void fields(V& v) const {
    v("name", name);
    v("match", match);
    v("upstream", upstream);
    v.when(!upgrades.empty(), [&](V& w) { w("upgrades", upgrades); });
    policies.fields(v);  // the blocks sit beside name and match
  }
};

/**
 * The shared-state connection (`redis`): one per worker, used only by the blocks that ask for it
 * (rateLimit scope global, idempotency.dedupe.store redis).
 */
struct RedisSpec {
  std::string address;  // host:port (IPv4 / [IPv6] literal or a name, resolved without blocking)
  uint32_t database = 0;
  std::string password_file;  // empty = no AUTH
  std::string password;       // read from password_file at load; never printed
  Duration timeout{20};       // per operation; beyond it the block's failure mode applies

  template <typename V>
  void fields(V& v) const {
    v("address", address);
    v("database", database);
    v.when(!password_file.empty(), [&](V& w) { w("passwordFile", password_file); });
    v("timeout", timeout);
  }
};

struct ProxyConfigSpec {
  std::string source_path;  // file the config came from
  std::string name;         // metadata.name
  AdminSpec admin;
  RuntimeSpec runtime;
  ObservabilitySpec observability;
  std::optional<RedisSpec> redis;
  PolicyBlocks defaults;
  std::vector<ListenerSpec> listeners;
  std::vector<UpstreamSpec> upstreams;
  std::vector<RouteSpec> routes;

  template <typename V>
  void fields(V& v) const {
    v.group("metadata", [&](V& g) { g("name", name); });
    v("admin", admin);
    v("runtime", runtime);
    v("observability", observability);
    v.when(redis.has_value(), [&](V& w) { w("redis", redis); });
    v("defaults", defaults);
    v("listeners", listeners);
    v("upstreams", upstreams);
    v("routes", routes);
  }
};

}  // namespace bulwark::config
