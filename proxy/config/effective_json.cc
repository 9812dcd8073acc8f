#include "proxy/config/effective_json.h"

#include "proxy/config/duration.h"
#include "proxy/config/parser.h"

namespace bulwark::config {
namespace {

using nlohmann::json;

std::string d(Duration duration) { return formatDuration(duration); }

json timeoutsJson(const TimeoutsSpec& t) {
  return {{"request", d(t.request)},
          {"idle", d(t.idle)},
          {"grpc",
           {{"honorDeadline", t.grpc.honor_deadline},
            {"deadlineOffset", d(t.grpc.deadline_offset)},
            {"maxDeadline", d(t.grpc.max_deadline)}}}};
}

json retriesJson(const RetriesSpec& r) {
  return {
      {"attempts", r.attempts},
      {"perTryTimeout", d(r.per_try_timeout)},
      {"retryOn", r.retry_on},
      {"retriableStatusCodes", r.retriable_status_codes},
      {"backoff",
       {{"baseInterval", d(r.backoff.base_interval)},
        {"maxInterval", d(r.backoff.max_interval)},
        {"jitter", toString(r.backoff.jitter)}}},
      {"budget",
       {{"percent", r.budget.percent}, {"minRetryConcurrency", r.budget.min_retry_concurrency}}},
      {"retryIgnorePreviousHosts", r.retry_ignore_previous_hosts},
      {"respectRetryAfter", r.respect_retry_after},
      {"maxRetryAfter", d(r.max_retry_after)},
      {"nonIdempotent", toString(r.non_idempotent)},
      {"retryBufferLimit", r.retry_buffer_limit}};
}

json bulkheadJson(const BulkheadSpec& b) {
  json j = {{"maxConcurrentRequests", b.max_concurrent_requests},
            {"maxQueuedRequests", b.max_queued_requests},
            {"queueTimeout", d(b.queue_timeout)}};
  if (!b.partition_header.empty()) {
    j["partitionBy"] = {{"header", b.partition_header}};
    j["maxConcurrentPerPartition"] = b.max_concurrent_per_partition;
  }
  return j;
}

json loadSheddingJson(const LoadSheddingSpec& s) {
  json j = json::object();
  if (s.adaptive_concurrency) {
    const AdaptiveConcurrencySpec& a = *s.adaptive_concurrency;
    j["adaptiveConcurrency"] = {{"algorithm", a.algorithm},
                                {"minLimit", a.min_limit},
                                {"maxLimit", a.max_limit},
                                {"latencyPercentile", a.latency_percentile},
                                {"window", d(a.window)}};
  }
  if (!s.priority_header.empty()) {
    j["priorityHeader"] = s.priority_header;
  }
  j["reject"] = {{"httpStatus", s.reject.http_status},
                 {"grpcStatus", s.reject.grpc_status},
                 {"retryAfter", d(s.reject.retry_after)}};
  return j;
}

json rateLimitJson(const RateLimitSpec& r) {
  json j = {
      {"requestsPerSecond", r.requests_per_second}, {"burst", r.burst}, {"headers", r.headers}};
  if (!r.key_header.empty()) {
    j["key"] = {{"header", r.key_header}};
  } else if (r.key_client_ip) {
    j["key"] = {{"clientIp", true}};
  }
  return j;
}

json idempotencyJson(const IdempotencySpec& i) {
  return {{"header", i.header},
          {"requiredFor", i.required_for},
          {"onMissing", i.on_missing},
          {"dedupe",
           {{"enabled", i.dedupe_enabled},
            {"ttl", d(i.dedupe_ttl)},
            {"maxEntries", i.dedupe_max_entries},
            {"fingerprint", i.dedupe_fingerprint},
            {"maxBodyBytes", i.dedupe_max_body_bytes}}}};
}

json fallbackJson(const FallbackSpec& f) {
  json j = {{"on", f.on}};
  if (!f.grpc_status.empty()) {
    j["grpc"] = {{"status", f.grpc_status}, {"message", f.grpc_message}};
  } else {
    json headers = json::object();
    for (const auto& [name, value] : f.headers) {
      headers[name] = value;
    }
    j["response"] = {{"status", f.status}, {"headers", headers}, {"body", f.body}};
  }
  return j;
}

json policyBlocksJson(const PolicyBlocks& p) {
  json j = json::object();
  if (p.timeouts) {
    j["timeouts"] = timeoutsJson(*p.timeouts);
  }
  if (p.retries) {
    j["retries"] = retriesJson(*p.retries);
  }
  if (p.hedging) {
    j["hedging"] = {{"delay", d(p.hedging->delay)}, {"maxRequests", p.hedging->max_requests}};
  }
  if (p.bulkhead) {
    j["bulkhead"] = bulkheadJson(*p.bulkhead);
  }
  if (p.load_shedding) {
    j["loadShedding"] = loadSheddingJson(*p.load_shedding);
  }
  if (p.rate_limit) {
    j["rateLimit"] = rateLimitJson(*p.rate_limit);
  }
  if (p.idempotency) {
    j["idempotency"] = idempotencyJson(*p.idempotency);
  }
  if (p.fallback) {
    j["fallback"] = fallbackJson(*p.fallback);
  }
  return j;
}

json listenerJson(const ListenerSpec& l) {
  const ListenerLimitsSpec& s = l.limits;
  return {{"name", l.name},
          {"address", l.address},
          {"protocol", toString(l.protocol)},
          {"routes", l.routes},
          {"limits",
           {{"maxRequestHeadersBytes", s.max_request_headers_bytes},
            {"maxHeadersCount", s.max_headers_count},
            {"maxRequestBodyBytes", s.max_request_body_bytes},
            {"headerReadTimeout", d(s.header_read_timeout)},
            {"idleTimeout", d(s.idle_timeout)},
            {"maxConcurrentStreams", s.max_concurrent_streams}}}};
}

json upstreamJson(const UpstreamSpec& u) {
  json j = {{"name", u.name}, {"protocol", toString(u.protocol)}};
  if (u.dns) {
    j["endpoints"] = {{"dns",
                       {{"name", u.dns->name},
                        {"port", u.dns->port},
                        {"refreshInterval", d(u.dns->refresh_interval)}}}};
  } else {
    json endpoints = json::array();
    for (const EndpointSpec& e : u.static_endpoints) {
      endpoints.push_back({{"address", e.address}, {"weight", e.weight}});
    }
    j["endpoints"] = {{"static", endpoints}};
  }
  json lb = {{"simple", toString(u.load_balancer.policy)},
             {"choiceCount", u.load_balancer.choice_count}};
  if (u.load_balancer.consistent_hash) {
    const ConsistentHashSpec& h = *u.load_balancer.consistent_hash;
    if (!h.http_header_name.empty()) {
      lb["consistentHash"] = {{"httpHeaderName", h.http_header_name}};
    } else if (!h.http_cookie_name.empty()) {
      lb["consistentHash"] = {{"httpCookie", {{"name", h.http_cookie_name}}}};
    } else {
      lb["consistentHash"] = {{"useSourceIp", h.use_source_ip}};
    }
  }
  j["loadBalancer"] = lb;
  const ConnectionPoolSpec& p = u.connection_pool;
  j["connectionPool"] = {{"tcp",
                          {{"maxConnections", p.max_connections},
                           {"connectTimeout", d(p.connect_timeout)},
                           {"idleTimeout", d(p.idle_timeout)}}},
                         {"http",
                          {{"maxPendingRequests", p.max_pending_requests},
                           {"maxRequests", p.max_requests},
                           {"maxRequestsPerConnection", p.max_requests_per_connection},
                           {"maxRetries", p.max_retries},
                           {"maxConcurrentStreams", p.max_concurrent_streams}}}};
  if (u.outlier_detection) {
    const OutlierDetectionSpec& o = *u.outlier_detection;
    j["outlierDetection"] = {
        {"consecutive5xxErrors", o.consecutive_5xx_errors},
        {"consecutiveGatewayErrors", o.consecutive_gateway_errors},
        {"consecutiveLocalOriginFailures", o.consecutive_local_origin_failures},
        {"failurePercentageThreshold", o.failure_percentage_threshold},
        {"failurePercentageMinimumHosts", o.failure_percentage_minimum_hosts},
        {"failurePercentageRequestVolume", o.failure_percentage_request_volume},
        {"interval", d(o.interval)},
        {"baseEjectionTime", d(o.base_ejection_time)},
        {"maxEjectionTime", d(o.max_ejection_time)},
        {"maxEjectionPercent", o.max_ejection_percent},
        {"panicThresholdPercent", o.panic_threshold_percent}};
  }
  if (u.circuit_breaker) {
    const CircuitBreakerSpec& c = *u.circuit_breaker;
    j["circuitBreaker"] = {{"failureRateThreshold", c.failure_rate_threshold},
                           {"slowCallDurationThreshold", d(c.slow_call_duration_threshold)},
                           {"slowCallRateThreshold", c.slow_call_rate_threshold},
                           {"minimumRequests", c.minimum_requests},
                           {"window", d(c.window)},
                           {"openDuration", d(c.open_duration)},
                           {"halfOpenRequests", c.half_open_requests},
                           {"perHost", c.per_host}};
  }
  if (u.health_check) {
    const HealthCheckSpec& h = *u.health_check;
    json hc = {{"interval", d(h.interval)},
               {"timeout", d(h.timeout)},
               {"unhealthyThreshold", h.unhealthy_threshold},
               {"healthyThreshold", h.healthy_threshold}};
    switch (h.kind) {
      case HealthCheckSpec::Kind::Http:
        hc["http"] = {{"path", h.http_path}, {"expectedStatuses", h.expected_statuses}};
        break;
      case HealthCheckSpec::Kind::Grpc: hc["grpc"] = {{"service", h.grpc_service}}; break;
      case HealthCheckSpec::Kind::Tcp: hc["tcp"] = json::object(); break;
    }
    j["healthCheck"] = hc;
  }
  return j;
}

json matchJson(const RouteMatchSpec& m) {
  json j = json::object();
  switch (m.path.kind) {
    case PathMatchSpec::Kind::Any: break;
    case PathMatchSpec::Kind::Prefix: j["path"] = {{"prefix", m.path.value}}; break;
    case PathMatchSpec::Kind::Exact: j["path"] = {{"exact", m.path.value}}; break;
    case PathMatchSpec::Kind::Regex: j["path"] = {{"regex", m.path.value}}; break;
  }
  if (!m.methods.empty()) {
    j["methods"] = m.methods;
  }
  if (!m.headers.empty()) {
    json headers = json::array();
    for (const HeaderMatchSpec& h : m.headers) {
      json hj = {{"name", h.name}, {"invert", h.invert}};
      switch (h.kind) {
        case HeaderMatchSpec::Kind::Exact: hj["exact"] = h.value; break;
        case HeaderMatchSpec::Kind::Prefix: hj["prefix"] = h.value; break;
        case HeaderMatchSpec::Kind::Regex: hj["regex"] = h.value; break;
        case HeaderMatchSpec::Kind::Present: hj["present"] = true; break;
      }
      headers.push_back(hj);
    }
    j["headers"] = headers;
  }
  if (m.grpc) {
    j["grpc"] = {{"service", m.grpc->service}};
    if (!m.grpc->method.empty()) {
      j["grpc"]["method"] = m.grpc->method;
    }
  }
  return j;
}

}  // namespace

std::string_view toString(ListenerProtocol protocol) {
  switch (protocol) {
    case ListenerProtocol::Http1: return "http1";
    case ListenerProtocol::H2c: return "h2c";
    case ListenerProtocol::Auto: return "auto";
  }
  return "auto";
}

std::string_view toString(UpstreamProtocol protocol) {
  switch (protocol) {
    case UpstreamProtocol::Http1: return "http1";
    case UpstreamProtocol::Http2: return "http2";
    case UpstreamProtocol::Grpc: return "grpc";
  }
  return "http1";
}

std::string_view toString(LbPolicy policy) {
  switch (policy) {
    case LbPolicy::RoundRobin: return "ROUND_ROBIN";
    case LbPolicy::LeastRequest: return "LEAST_REQUEST";
    case LbPolicy::Random: return "RANDOM";
    case LbPolicy::RingHash: return "RING_HASH";
    case LbPolicy::Maglev: return "MAGLEV";
    case LbPolicy::PeakEwma: return "PEAK_EWMA";
  }
  return "ROUND_ROBIN";
}

std::string_view toString(Jitter jitter) {
  switch (jitter) {
    case Jitter::Full: return "full";
    case Jitter::Equal: return "equal";
    case Jitter::None: return "none";
  }
  return "full";
}

std::string_view toString(NonIdempotentPolicy policy) {
  switch (policy) {
    case NonIdempotentPolicy::Never: return "never";
    case NonIdempotentPolicy::WithIdempotencyKey: return "withIdempotencyKey";
    case NonIdempotentPolicy::Always: return "always";
  }
  return "never";
}

nlohmann::json toJson(const ProxyConfigSpec& spec) {
  json j;
  j["apiVersion"] = kApiVersion;
  j["kind"] = kKind;
  j["metadata"] = {{"name", spec.name}};
  j["admin"] = {{"address", spec.admin.address},
                {"readiness", {{"requireUpstreams", spec.admin.require_upstreams}}}};
  json concurrency = spec.runtime.concurrency == 0 ? json("auto") : json(spec.runtime.concurrency);
  j["runtime"] = {{"concurrency", concurrency},
                  {"drain",
                   {{"minDuration", d(spec.runtime.drain.min_duration)},
                    {"timeout", d(spec.runtime.drain.timeout)},
                    {"exitOnZeroActive", spec.runtime.drain.exit_on_zero_active}}},
                  {"maxConnectionsPerWorker", spec.runtime.max_connections_per_worker}};
  const ObservabilitySpec& o = spec.observability;
  j["observability"] = {
      {"accessLog",
       {{"path", o.access_log.path},
        {"format", o.access_log.format},
        {"sample", o.access_log.sample}}},
      {"metrics", {{"path", o.metrics_path}, {"latencyBuckets", o.latency_buckets}}},
      {"tracing",
       {{"propagation", o.trace_propagation},
        {"requestId",
         {{"generate", o.request_id.generate},
          {"preserveExternal", o.request_id.preserve_external},
          {"returnInResponse", o.request_id.return_in_response}}}}}};
  j["defaults"] = policyBlocksJson(spec.defaults);
  j["listeners"] = json::array();
  for (const ListenerSpec& l : spec.listeners) {
    j["listeners"].push_back(listenerJson(l));
  }
  j["upstreams"] = json::array();
  for (const UpstreamSpec& u : spec.upstreams) {
    j["upstreams"].push_back(upstreamJson(u));
  }
  j["routes"] = json::array();
  for (const RouteSpec& r : spec.routes) {
    json route = {{"name", r.name}, {"match", matchJson(r.match)}, {"upstream", r.upstream}};
    route.update(policyBlocksJson(r.policies));
    j["routes"].push_back(route);
  }
  return j;
}

}  // namespace bulwark::config
