#pragma once

// The full example of the schema: every block, DNS discovery, every policy, plus two routes with
// the remaining fields. Shared by the parser, effective-config and reload-policy tests.

namespace bulwark::config::test {

inline constexpr const char* kFullSchemaYaml = R"YAML(apiVersion: bulwark.dev/v1alpha1
kind: ProxyConfig
metadata:
  name: edge

admin:
  address: 0.0.0.0:9901          # /live /ready /metrics open; mutating endpoints POST + loopback only

runtime:
  concurrency: auto
  drain:
    minDuration: 5s
    timeout: 25s
    exitOnZeroActive: true

observability:
  accessLog: {path: /dev/stdout, format: json}
  metrics:
    path: /metrics
    latencyBuckets: [0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10]
  tracing:
    propagation: [w3c, b3]
    requestId: {generate: true, preserveExternal: false, returnInResponse: true}
    sampling: {ratio: 0.05, parentBased: false}
    exporter:
      otlp:
        endpoint: http://127.0.0.1:4318/v1/traces
        timeout: 2s
        batch: {maxSpans: 256, interval: 500ms}
        maxQueue: 4096
  explain: {allowFrom: [127.0.0.0/8, 10.0.0.0/8]}

redis: {address: redis.shared:6379, database: 1, timeout: 25ms}

defaults:
  timeouts: {request: 2s, idle: 60s}
  retries:
    attempts: 1
    retryOn: [connect-failure, refused-stream]
    backoff: {baseInterval: 25ms, maxInterval: 250ms, jitter: full}
    budget: {percent: 20, minRetryConcurrency: 3}
    respectRetryAfter: true
    nonIdempotent: never

listeners:
- name: public-http
  address: 0.0.0.0:8080
  protocol: auto                      # HTTP/1.1 and h2c prior knowledge
  routes: [ranking-grpc, task-create, task-read, recommendations]

upstreams:
- name: ranking
  protocol: grpc
  endpoints:
    dns: {name: ranking-headless.ranking.svc.cluster.local, port: 50051, refreshInterval: 5s}
  loadBalancer: {simple: LEAST_REQUEST, choiceCount: 2}     # per-request L7 balancing over HTTP/2
  connectionPool:
    tcp: {maxConnections: 16, connectTimeout: 250ms}
    http: {maxPendingRequests: 256, maxRequests: 2048, maxConcurrentStreams: 100, maxRetries: 64}
  outlierDetection:
    consecutiveGatewayErrors: 3       # 502/503/504 + connect failures
    consecutive5xxErrors: 5
    interval: 5s
    baseEjectionTime: 30s
    maxEjectionPercent: 50
  healthCheck:
    grpc: {service: ranking.v1.RankingService}              # grpc.health.v1.Health/Check
    interval: 5s
    timeout: 1s
    unhealthyThreshold: 3
    healthyThreshold: 2

- name: task
  protocol: http1
  endpoints:
    dns: {name: task-headless.task.svc.cluster.local, port: 8081, refreshInterval: 5s}
  loadBalancer: {simple: LEAST_REQUEST}
  connectionPool:
    tcp: {maxConnections: 256, connectTimeout: 250ms}
    http: {maxPendingRequests: 512, maxRequests: 1024, maxRequestsPerConnection: 1000}
  outlierDetection: {consecutive5xxErrors: 5, ignoreRetryAfter: true, interval: 10s, baseEjectionTime: 30s,
                     maxEjectionPercent: 34}   # 503 + Retry-After at capacity is not an outlier
  healthCheck: {http: {path: /healthz}, interval: 5s, timeout: 1s, unhealthyThreshold: 3, healthyThreshold: 2}

- name: recommendation
  protocol: http1
  endpoints:
    dns: {name: recommendation-headless.recs.svc.cluster.local, port: 8082, refreshInterval: 5s}
  loadBalancer: {simple: ROUND_ROBIN}
  connectionPool:
    tcp: {maxConnections: 512, connectTimeout: 200ms}
    http: {maxPendingRequests: 1024, maxRequests: 2048}
  outlierDetection: {consecutive5xxErrors: 5, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 50}
  circuitBreaker:
    failureRateThreshold: 50          # % of calls in the window
    slowCallDurationThreshold: 400ms
    slowCallRateThreshold: 80
    minimumRequests: 20
    window: 10s
    openDuration: 5s
    halfOpenRequests: 5
  healthCheck: {http: {path: /healthz}, interval: 5s, timeout: 1s, unhealthyThreshold: 3, healthyThreshold: 2}

routes:
# 1) gRPC ranking service: idempotent reads, deadline-aware, retries on UNAVAILABLE only
- name: ranking-grpc
  match:
    grpc: {service: ranking.v1.RankingService}   # all methods; add `method: Rank` to narrow
  upstream: ranking
  timeouts:
    request: 500ms
    grpc: {honorDeadline: true, deadlineOffset: 10ms, maxDeadline: 2s}   # like Envoy grpc_timeout_header_{offset,max}
  retries:
    attempts: 2
    perTryTimeout: 150ms              # capped by the remaining grpc-timeout
    retryOn: [unavailable, reset, connect-failure, refused-stream]
    backoff: {baseInterval: 10ms, maxInterval: 100ms, jitter: full}
    budget: {percent: 20, minRetryConcurrency: 3}
    retryIgnorePreviousHosts: true
    respectRetryAfter: true           # grpc-retry-pushback-ms; negative = do not retry
  bulkhead: {maxConcurrentRequests: 512, maxQueuedRequests: 128, queueTimeout: 20ms}
  loadShedding:
    adaptiveConcurrency: {minLimit: 32, maxLimit: 1024, latencyPercentile: 0.9, window: 1s}
    reject: {grpcStatus: UNAVAILABLE, retryAfter: 200ms}   # HTTP 200 + trailers-only grpc-status 14

# 2) POST-heavy task service: creates are only retried with an Idempotency-Key
- name: task-create
  match:
    path: {prefix: /v1/tasks}
    methods: [POST]
  upstream: task
  timeouts: {request: 3s}
  retries:
    attempts: 2
    perTryTimeout: 1s
    retryOn: [connect-failure, refused-stream, reset-before-request, gateway-error]
    backoff: {baseInterval: 50ms, maxInterval: 500ms, jitter: full}
    nonIdempotent: withIdempotencyKey # gateway-error/reset retried only when the key is present
  idempotency:
    header: Idempotency-Key           # draft-ietf-httpapi-idempotency-key-header (sf-string)
    requiredFor: [POST, PATCH]
    onMissing: noRetry                # or `reject` -> 400 application/problem+json
    dedupe:
      enabled: true                   # replay stored result; 409 while in flight; 422 on payload mismatch
      ttl: 24h
      maxEntries: 100000
      fingerprint: [method, path, bodySha256]
  bulkhead: {maxConcurrentRequests: 256, maxQueuedRequests: 256, queueTimeout: 100ms}
  loadShedding:
    priorityHeader: x-request-priority
    reject: {httpStatus: 503, retryAfter: 1s}

- name: task-read
  match:
    path: {prefix: /v1/tasks}
    methods: [GET, HEAD]
  upstream: task
  timeouts: {request: 1s}
  retries:
    attempts: 2
    perTryTimeout: 300ms
    retryOn: [5xx, reset, connect-failure, refused-stream]

# 3) HTTP recommendation service: aggressive retries, breaker, degraded fallback
- name: recommendations
  match:
    path: {prefix: /v1/recommendations}
    methods: [GET]
  upstream: recommendation
  timeouts: {request: 800ms}
  retries:
    attempts: 3
    perTryTimeout: 250ms
    retryOn: [5xx, gateway-error, reset, connect-failure, refused-stream, retriable-status-codes]
    retriableStatusCodes: [429]
    backoff: {baseInterval: 25ms, maxInterval: 250ms, jitter: full}
    budget: {percent: 20, minRetryConcurrency: 5}
    respectRetryAfter: true
    maxRetryAfter: 2s                 # never wait longer than this on a Retry-After
  hedging: {delay: 120ms, maxRequests: 2}     # optional tail-latency cut for idempotent GETs
  bulkhead: {maxConcurrentRequests: 1024, maxQueuedRequests: 0}
  loadShedding:
    adaptiveConcurrency: {minLimit: 64, maxLimit: 4096, latencyPercentile: 0.9, window: 1s}
    reject: {httpStatus: 503, retryAfter: 1s}
  fallback:
    on: [circuitOpen, shed, timeout]
    response:
      status: 200
      headers: {content-type: application/json, x-bulwark-degraded: "true"}
      body: '{"items":[],"degraded":true}'

# Extra routes exercising the rest of the schema.
- name: everything
  match:
    path: {regex: "^/v2/.*$"}
    methods: [PUT, PATCH]
    headers:
    - {name: X-Tenant, exact: acme}
    - {name: x-canary, present: true, invert: true}
  upstream: task
  upgrades: [WebSocket]
  timeouts: {request: 5s, idle: 30s}
  retries:
    attempts: 3
    retryOn: "reset,connect-failure"
    retryBufferLimit: 1Mi
    nonIdempotent: always
  bulkhead:
    maxConcurrentRequests: 100
    partitionBy: {header: X-Tenant}
    maxConcurrentPerPartition: 10
  rateLimit: {requestsPerSecond: 50.5, burst: 100, key: {header: X-Tenant}, headers: legacy,
              mode: dryRun}
  idempotency: {header: Idempotency-Key, requiredFor: [PUT], onMissing: reject}
- name: grpc-fallback
  match:
    grpc: {service: ranking.v1.RankingService, method: Rank}
  upstream: ranking
  rateLimit: {requestsPerSecond: 10, key: {clientIp: true}, scope: global, failureMode: local,
              expectedInstances: 3}
  idempotency:
    dedupe: {enabled: true, store: redis, lease: 30s, failureMode: allow}
  fallback:
    on: [rateLimited]
    grpc: {status: RESOURCE_EXHAUSTED, message: slow down}
)YAML";

}  // namespace bulwark::config::test
