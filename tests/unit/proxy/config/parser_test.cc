#include "proxy/config/parser.h"

#include <algorithm>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "tests/unit/proxy/config/full_schema.h"
#include "tests/unit/proxy/config/test_util.h"

namespace bulwark::config {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using test::dataPath;
using test::formatted;
using test::kPreamble;
using test::loadText;
using ::testing::ElementsAre;
using ::testing::HasSubstr;

const RouteSpec& routeNamed(const ProxyConfigSpec& spec, const std::string& name) {
  auto it = std::find_if(spec.routes.begin(), spec.routes.end(),
                         [&](const RouteSpec& r) { return r.name == name; });
  EXPECT_NE(it, spec.routes.end()) << name;
  return *it;
}

// The edge example (tests/data/config/good/edge.yaml) loads with every value where it belongs.
TEST(ParserTest, LoadsEdgeExample) {
  LoadResult result = loadConfigFile(dataPath("good/edge.yaml"));
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(formatted(result));
  EXPECT_TRUE(result.diagnostics.empty()) << ::testing::PrintToString(formatted(result));
  const ProxyConfigSpec& c = *result.config;

  EXPECT_EQ(c.source_path, dataPath("good/edge.yaml"));
  EXPECT_EQ(c.name, "edge");
  EXPECT_EQ(c.admin.address, "127.0.0.1:9901");
  EXPECT_THAT(c.admin.require_upstreams, ElementsAre("ranking"));
  EXPECT_EQ(c.runtime.concurrency, 0);
  EXPECT_EQ(c.runtime.drain.min_duration, seconds(5));
  EXPECT_EQ(c.runtime.drain.timeout, seconds(25));
  EXPECT_TRUE(c.runtime.drain.exit_on_zero_active);
  EXPECT_EQ(c.runtime.max_connections_per_worker, 10000u);
  EXPECT_EQ(c.observability.access_log.path, "/dev/stdout");
  EXPECT_EQ(c.observability.access_log.sample, 0.5);
  EXPECT_EQ(c.observability.latency_buckets.size(), 11u);
  EXPECT_THAT(c.observability.trace_propagation, ElementsAre("w3c", "b3"));
  EXPECT_FALSE(c.observability.request_id.preserve_external);
  EXPECT_TRUE(c.observability.request_id.return_in_response);

  ASSERT_EQ(c.listeners.size(), 2u);
  const ListenerSpec& pub = c.listeners[0];
  EXPECT_EQ(pub.name, "public-http");
  EXPECT_EQ(pub.address, "0.0.0.0:8080");
  EXPECT_EQ(pub.protocol, ListenerProtocol::Auto);
  EXPECT_THAT(pub.routes,
              ElementsAre("ranking-grpc", "task-create", "task-read", "recommendations"));
  EXPECT_EQ(pub.limits.max_request_headers_bytes, 32u * 1024);
  EXPECT_EQ(pub.limits.max_headers_count, 64u);
  EXPECT_EQ(pub.limits.max_request_body_bytes, uint64_t{1} << 30);
  EXPECT_EQ(pub.limits.header_read_timeout, seconds(5));
  EXPECT_EQ(pub.limits.idle_timeout, seconds(90));
  EXPECT_EQ(pub.limits.max_concurrent_streams, 200u);
  EXPECT_EQ(pub.mark.line, 42);
  // A listener without routes serves all of them; limits keep their defaults.
  EXPECT_EQ(c.listeners[1].protocol, ListenerProtocol::H2c);
  EXPECT_EQ(c.listeners[1].routes.size(), 4u);
  EXPECT_EQ(c.listeners[1].limits.max_headers_count, 100u);

  ASSERT_EQ(c.upstreams.size(), 3u);
  const UpstreamSpec& ranking = c.upstreams[0];
  EXPECT_EQ(ranking.protocol, UpstreamProtocol::Grpc);
  ASSERT_EQ(ranking.static_endpoints.size(), 3u);
  EXPECT_EQ(ranking.static_endpoints[1].address, "127.0.0.1:50052");
  EXPECT_EQ(ranking.static_endpoints[1].weight, 2u);
  EXPECT_EQ(ranking.static_endpoints[0].weight, 1u);
  EXPECT_EQ(ranking.static_endpoints[2].address, "[::1]:50053");
  EXPECT_EQ(ranking.load_balancer.policy, LbPolicy::LeastRequest);
  EXPECT_EQ(ranking.connection_pool.max_connections, 16u);
  EXPECT_EQ(ranking.connection_pool.connect_timeout, milliseconds(250));
  EXPECT_EQ(ranking.connection_pool.idle_timeout, seconds(60));  // default kept
  EXPECT_EQ(ranking.connection_pool.max_pending_requests, 256u);
  EXPECT_EQ(ranking.connection_pool.max_requests, 2048u);
  EXPECT_EQ(ranking.connection_pool.max_retries, 64u);
  EXPECT_EQ(ranking.connection_pool.max_concurrent_streams, 100u);
  EXPECT_FALSE(ranking.dns);
  EXPECT_EQ(c.upstreams[1].load_balancer.policy, LbPolicy::Random);
  EXPECT_EQ(c.upstreams[1].connection_pool.max_requests_per_connection, 1000u);
  EXPECT_EQ(c.upstreams[1].connection_pool.idle_timeout, seconds(30));
  EXPECT_EQ(c.upstreams[2].load_balancer.policy, LbPolicy::RoundRobin);

  const RouteSpec& grpc = routeNamed(c, "ranking-grpc");
  ASSERT_TRUE(grpc.match.grpc);
  EXPECT_EQ(grpc.match.grpc->service, "ranking.v1.RankingService");
  EXPECT_EQ(grpc.match.grpc->method, "");
  EXPECT_EQ(grpc.match.path.kind, PathMatchSpec::Kind::Any);
  EXPECT_EQ(grpc.policies.timeouts->request, milliseconds(500));
  EXPECT_EQ(grpc.policies.timeouts->idle, Duration(0));  // own block replaces defaults' 60s
  EXPECT_TRUE(grpc.policies.timeouts->grpc.honor_deadline);
  EXPECT_EQ(grpc.policies.timeouts->grpc.deadline_offset, milliseconds(10));
  EXPECT_EQ(grpc.policies.timeouts->grpc.max_deadline, seconds(2));
  EXPECT_EQ(grpc.policies.retries->per_try_timeout, milliseconds(150));
  EXPECT_THAT(grpc.policies.retries->retry_on,
              ElementsAre("unavailable", "reset", "connect-failure", "refused-stream"));
  EXPECT_EQ(grpc.policies.retries->backoff.base_interval, milliseconds(10));
  EXPECT_EQ(grpc.policies.retries->backoff.max_interval, milliseconds(100));

  const RouteSpec& create = routeNamed(c, "task-create");
  EXPECT_EQ(create.match.path.kind, PathMatchSpec::Kind::Prefix);
  EXPECT_EQ(create.match.path.value, "/v1/tasks");
  EXPECT_THAT(create.match.methods, ElementsAre("POST"));
  ASSERT_EQ(create.match.headers.size(), 1u);
  EXPECT_EQ(create.match.headers[0].name, "content-type");  // lower-cased
  EXPECT_EQ(create.match.headers[0].kind, HeaderMatchSpec::Kind::Prefix);
  EXPECT_EQ(create.match.headers[0].value, "application/json");
  EXPECT_EQ(create.policies.timeouts->request, seconds(3));
  // Inherited from defaults.retries.
  ASSERT_TRUE(create.policies.retries);
  EXPECT_EQ(create.policies.retries->attempts, 1u);
  EXPECT_EQ(create.policies.retries->budget.percent, 20.0);
  EXPECT_EQ(create.policies.retries->budget.min_retry_concurrency, 3u);
  EXPECT_EQ(create.policies.retries->non_idempotent, NonIdempotentPolicy::Never);
  EXPECT_FALSE(create.policies.bulkhead);

  const RouteSpec& read = routeNamed(c, "task-read");
  EXPECT_EQ(read.match.path.kind, PathMatchSpec::Kind::Regex);
  EXPECT_EQ(read.match.path.value, "^/v1/tasks/[0-9a-f-]+$");
  EXPECT_THAT(read.match.methods, ElementsAre("GET", "HEAD"));
  EXPECT_EQ(read.match.headers[0].kind, HeaderMatchSpec::Kind::Present);
  EXPECT_TRUE(read.match.headers[0].invert);

  const RouteSpec& recs = routeNamed(c, "recommendations");
  EXPECT_EQ(recs.match.path.kind, PathMatchSpec::Kind::Exact);
  EXPECT_EQ(recs.policies.timeouts->request, seconds(2));  // inherited
  EXPECT_EQ(recs.policies.timeouts->idle, seconds(60));
  EXPECT_EQ(recs.mark.line, 117);
}

// The minimal file gets every documented default.
TEST(ParserTest, MinimalConfigGetsDefaults) {
  LoadResult result = loadConfigFile(dataPath("good/minimal.yaml"));
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(formatted(result));
  const ProxyConfigSpec& c = *result.config;
  EXPECT_EQ(c.admin.address, "127.0.0.1:9901");
  EXPECT_EQ(c.listeners[0].protocol, ListenerProtocol::Auto);
  EXPECT_THAT(c.listeners[0].routes, ElementsAre("all"));
  EXPECT_EQ(c.upstreams[0].protocol, UpstreamProtocol::Http1);
  const RouteSpec& r = c.routes[0];
  EXPECT_EQ(r.match.path.kind, PathMatchSpec::Kind::Any);
  ASSERT_TRUE(r.policies.timeouts);
  EXPECT_EQ(r.policies.timeouts->request, seconds(15));
  ASSERT_TRUE(r.policies.retries);
  EXPECT_EQ(r.policies.retries->attempts, 1u);
  EXPECT_FALSE(r.policies.hedging);
}

// The hardening knobs land where the server reads them; a bare overload block gets the ladder.
TEST(ParserTest, HardeningLimitsAndOverloadActions) {
  LoadResult result = loadConfigFile(dataPath("good/hardening.yaml"));
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(formatted(result));
  const ProxyConfigSpec& c = *result.config;
  EXPECT_EQ(c.runtime.overload.max_heap_bytes, 1ull << 30);
  EXPECT_EQ(c.runtime.overload.refresh_interval, milliseconds(100));
  ASSERT_EQ(c.runtime.overload.actions.size(), 2u);
  EXPECT_EQ(c.runtime.overload.actions[1].action, "resetHighMemoryStreams");
  EXPECT_DOUBLE_EQ(c.runtime.overload.actions[1].threshold, 0.9);
  const ListenerLimitsSpec& l = c.listeners[0].limits;
  EXPECT_EQ(l.min_request_body_rate, 2048u);
  EXPECT_EQ(l.request_body_rate_window, seconds(5));
  EXPECT_EQ(l.stream_error_burst, 50u);
  EXPECT_EQ(l.stream_errors_per_second, 5u);

  LoadResult bare = loadConfigString(std::string(kPreamble) + R"(
runtime: {overload: {maxHeapBytes: 512Mi}}
routes: [{name: all, upstream: backend}]
)",
                                     "bare.yaml");
  ASSERT_TRUE(bare.ok()) << ::testing::PrintToString(formatted(bare));
  const auto& actions = bare.config->runtime.overload.actions;
  ASSERT_EQ(actions.size(), 3u);
  EXPECT_EQ(actions[0].action, "disableKeepalive");
  EXPECT_DOUBLE_EQ(actions[0].threshold, 0.8);
  EXPECT_EQ(actions[2].action, "resetHighMemoryStreams");
  EXPECT_FALSE(bare.config->listeners.empty());
  EXPECT_EQ(bare.config->listeners[0].limits.min_request_body_rate, 0u);
}

// A route's block replaces the inherited block as a whole: no field-by-field merge.
TEST(ParserTest, RouteBlockReplacesDefaultsBlock) {
  const std::string yaml = std::string(kPreamble) + R"(
defaults:
  timeouts: {request: 9s, idle: 9s}
  retries:
    attempts: 1
    retryOn: [reset]
    backoff: {baseInterval: 100ms, maxInterval: 1s, jitter: none}
routes:
- name: own
  upstream: backend
  retries: {perTryTimeout: 100ms}
- name: inherits
  upstream: backend
  timeouts: {request: 1s}
)";
  LoadResult result = loadConfigString(yaml, "test.yaml");
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(formatted(result));
  const RouteSpec& own = result.config->routes[0];
  EXPECT_EQ(own.policies.retries->per_try_timeout, milliseconds(100));
  EXPECT_EQ(own.policies.retries->backoff.jitter, Jitter::Full);
  EXPECT_EQ(own.policies.retries->backoff.base_interval, milliseconds(25));
  EXPECT_THAT(own.policies.retries->retry_on, ElementsAre("connect-failure", "refused-stream"));
  EXPECT_EQ(own.policies.timeouts->request, seconds(9));
  const RouteSpec& inherits = result.config->routes[1];
  EXPECT_EQ(inherits.policies.retries->backoff.jitter, Jitter::None);
  EXPECT_THAT(inherits.policies.retries->retry_on, ElementsAre("reset"));
  EXPECT_EQ(inherits.policies.timeouts->request, seconds(1));
  EXPECT_EQ(inherits.policies.timeouts->idle, Duration(0));
  // defaults itself is kept as written (for --print-effective).
  EXPECT_EQ(result.config->defaults.timeouts->request, seconds(9));
}

// Every block of the schema is parsed.
TEST(ParserTest, ParsesEveryBlockOfTheFullSchema) {
  LoadResult result = loadText(test::kFullSchemaYaml);
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(formatted(result));
  const ProxyConfigSpec& c = *result.config;
  // Warnings the example earns: task-create retries on gateway-error without being
  // a problem (it has idempotency), so there are none.
  EXPECT_THAT(formatted(result), ::testing::IsEmpty());
  EXPECT_EQ(c.admin.address, "0.0.0.0:9901");
  EXPECT_EQ(c.observability.access_log.format, "json");

  const UpstreamSpec& ranking = c.upstreams[0];
  ASSERT_TRUE(ranking.dns);
  EXPECT_EQ(ranking.dns->name, "ranking-headless.ranking.svc.cluster.local");
  EXPECT_EQ(ranking.dns->port, 50051);
  EXPECT_EQ(ranking.dns->refresh_interval, seconds(5));
  EXPECT_EQ(ranking.load_balancer.choice_count, 2u);
  ASSERT_TRUE(ranking.outlier_detection);
  EXPECT_EQ(ranking.outlier_detection->consecutive_gateway_errors, 3u);
  EXPECT_EQ(ranking.outlier_detection->interval, seconds(5));
  EXPECT_EQ(ranking.outlier_detection->max_ejection_percent, 50u);
  EXPECT_FALSE(ranking.outlier_detection->ignore_retry_after);
  ASSERT_TRUE(c.upstreams[1].outlier_detection);
  EXPECT_TRUE(c.upstreams[1].outlier_detection->ignore_retry_after);
  ASSERT_TRUE(ranking.health_check);
  EXPECT_EQ(ranking.health_check->kind, HealthCheckSpec::Kind::Grpc);
  EXPECT_EQ(ranking.health_check->grpc_service, "ranking.v1.RankingService");
  EXPECT_EQ(c.upstreams[1].health_check->kind, HealthCheckSpec::Kind::Http);
  EXPECT_EQ(c.upstreams[1].health_check->http_path, "/healthz");
  const UpstreamSpec& recs = c.upstreams[2];
  ASSERT_TRUE(recs.circuit_breaker);
  EXPECT_EQ(recs.circuit_breaker->failure_rate_threshold, 50u);
  EXPECT_EQ(recs.circuit_breaker->slow_call_duration_threshold, milliseconds(400));
  EXPECT_EQ(recs.circuit_breaker->slow_call_rate_threshold, 80u);
  EXPECT_EQ(recs.circuit_breaker->half_open_requests, 5u);

  const RouteSpec& grpc = routeNamed(c, "ranking-grpc");
  EXPECT_EQ(grpc.policies.retries->attempts, 2u);
  ASSERT_TRUE(grpc.policies.bulkhead);
  EXPECT_EQ(grpc.policies.bulkhead->max_queued_requests, 128u);
  EXPECT_EQ(grpc.policies.bulkhead->queue_timeout, milliseconds(20));
  ASSERT_TRUE(grpc.policies.load_shedding);
  ASSERT_TRUE(grpc.policies.load_shedding->adaptive_concurrency);
  EXPECT_EQ(grpc.policies.load_shedding->adaptive_concurrency->min_limit, 32u);
  EXPECT_EQ(grpc.policies.load_shedding->adaptive_concurrency->latency_percentile, 0.9);
  EXPECT_EQ(grpc.policies.load_shedding->reject.grpc_status, "UNAVAILABLE");
  EXPECT_EQ(grpc.policies.load_shedding->reject.retry_after, milliseconds(200));

  const RouteSpec& create = routeNamed(c, "task-create");
  EXPECT_EQ(create.policies.retries->non_idempotent, NonIdempotentPolicy::WithIdempotencyKey);
  ASSERT_TRUE(create.policies.idempotency);
  EXPECT_EQ(create.policies.idempotency->header, "idempotency-key");
  EXPECT_TRUE(create.policies.idempotency->dedupe_enabled);
  EXPECT_EQ(create.policies.idempotency->dedupe_ttl, std::chrono::hours(24));
  EXPECT_THAT(create.policies.idempotency->dedupe_fingerprint,
              ElementsAre("method", "path", "bodySha256"));
  EXPECT_EQ(create.policies.load_shedding->priority_header, "x-request-priority");
  EXPECT_FALSE(create.policies.load_shedding->adaptive_concurrency);

  const RouteSpec& r = routeNamed(c, "recommendations");
  EXPECT_THAT(r.policies.retries->retriable_status_codes, ElementsAre(429u));
  EXPECT_EQ(r.policies.retries->max_retry_after, seconds(2));
  ASSERT_TRUE(r.policies.hedging);
  EXPECT_EQ(r.policies.hedging->delay, milliseconds(120));
  ASSERT_TRUE(r.policies.fallback);
  EXPECT_THAT(r.policies.fallback->on, ElementsAre("circuitOpen", "shed", "timeout"));
  EXPECT_EQ(r.policies.fallback->status, 200u);
  EXPECT_THAT(r.policies.fallback->headers,
              ElementsAre(std::pair<std::string, std::string>{"content-type", "application/json"},
                          std::pair<std::string, std::string>{"x-bulwark-degraded", "true"}));
  EXPECT_EQ(r.policies.fallback->body, R"({"items":[],"degraded":true})");

  const RouteSpec& e = routeNamed(c, "everything");
  EXPECT_THAT(e.upgrades, ElementsAre("websocket"));
  EXPECT_THAT(e.policies.retries->retry_on, ElementsAre("reset", "connect-failure"));
  EXPECT_EQ(e.policies.retries->retry_buffer_limit, 1024u * 1024);
  EXPECT_EQ(e.policies.bulkhead->partition_header, "x-tenant");
  EXPECT_EQ(e.policies.bulkhead->max_concurrent_per_partition, 10u);
  EXPECT_EQ(e.policies.rate_limit->requests_per_second, 50.5);
  EXPECT_EQ(e.policies.rate_limit->key_header, "x-tenant");
  EXPECT_EQ(e.policies.rate_limit->headers, "legacy");
  EXPECT_EQ(e.policies.idempotency->on_missing, "reject");
  EXPECT_EQ(e.match.headers[0].kind, HeaderMatchSpec::Kind::Exact);
  const RouteSpec& f = routeNamed(c, "grpc-fallback");
  EXPECT_EQ(f.match.grpc->method, "Rank");
  EXPECT_TRUE(f.policies.rate_limit->key_client_ip);
  EXPECT_EQ(f.policies.fallback->grpc_status, "RESOURCE_EXHAUSTED");
  EXPECT_EQ(f.policies.fallback->grpc_message, "slow down");
  // Blocks absent everywhere stay absent after inheritance.
  EXPECT_FALSE(routeNamed(c, "task-read").policies.bulkhead);
}

// The full example, every block of the schema, loads without an error or a warning.
TEST(ParserTest, FullSchemaLoadsCleanly) {
  LoadResult result = loadConfigString(test::kFullSchemaYaml, "full.yaml");
  EXPECT_TRUE(result.ok()) << ::testing::PrintToString(formatted(result));
  EXPECT_TRUE(result.diagnostics.empty()) << ::testing::PrintToString(formatted(result));
}

// One load reports every independent problem, in file order.
TEST(ParserTest, ReportsAllProblemsInOrder) {
  const std::string yaml = std::string(kPreamble) + R"(
routes:
- name: a
  upstream: nowhere
  timeouts: {request: 0.5s}
- name: b
  upstream: backend
  retries: {atempts: 1}
)";
  LoadResult result = loadConfigString(yaml, "x.yaml");
  EXPECT_FALSE(result.ok());
  EXPECT_THAT(formatted(result),
              ElementsAre("x.yaml:17:13: error: routes[0].upstream: unknown upstream \"nowhere\"",
                          "x.yaml:18:23: error: routes[0].timeouts.request: expected a duration "
                          "like \"250ms\", got \"0.5s\" (no fractions: write \"500ms\")",
                          "x.yaml:21:13: error: routes[1].retries: unknown field \"atempts\"; "
                          "did you mean \"attempts\"?"));
  auto as_result = LoadResult(result).toResult();
  ASSERT_FALSE(as_result.isOk());
  EXPECT_EQ(as_result.error(), result.errorText());
  EXPECT_EQ(std::count(as_result.error().begin(), as_result.error().end(), '\n'), 2);
}

// The format is exactly FILE:LINE:COL: severity: PATH: MESSAGE, parts left out when unknown.
TEST(ParserTest, DiagnosticFormat) {
  ConfigDiagnostic d{"/etc/bulwark.yaml",
                     41,
                     9,
                     "routes[2].timeouts.request",
                     "expected a duration like \"250ms\"",
                     false,
                     "BW0103"};
  EXPECT_EQ(d.format(),
            "/etc/bulwark.yaml:41:9: error: routes[2].timeouts.request: expected a duration like "
            "\"250ms\"");
  d.warning = true;
  d.field_path.clear();
  d.line = 0;
  EXPECT_EQ(d.format(), "/etc/bulwark.yaml: warning: expected a duration like \"250ms\"");
}

// gRPC routes retrying on HTTP 5xx get a warning; the config still loads.
TEST(ParserTest, WarnsOnGrpcRouteRetryingOn5xx) {
  const std::string yaml = std::string(kPreamble) + R"(
defaults:
  retries: {retryOn: [5xx]}
routes:
- name: by-match
  upstream: grpc-backend
  match: {grpc: {service: a.B}}
  retries: {retryOn: [5xx, unavailable]}
- name: by-upstream-inherited
  upstream: grpc-backend
- name: http
  upstream: backend
)";
  LoadResult result = loadConfigString(yaml, "w.yaml");
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(formatted(result));
  EXPECT_THAT(
      formatted(result),
      ElementsAre("w.yaml:16:22: warning: routes[1].retries.retryOn: \"5xx\" never matches on a "
                  "gRPC route: gRPC errors arrive as HTTP 200 with a grpc-status (use "
                  "unavailable, internal, ...) (inherited from defaults)",
                  "w.yaml:21:22: warning: routes[0].retries.retryOn: \"5xx\" never matches on a "
                  "gRPC route: gRPC errors arrive as HTTP 200 with a grpc-status (use "
                  "unavailable, internal, ...)"));
  EXPECT_EQ(result.diagnostics[0].code, codes::kGrpcRetryOn5xx);
}

// POST/PATCH routes retrying on 5xx/reset without idempotency get a warning.
TEST(ParserTest, WarnsOnUnsafeNonIdempotentRetries) {
  const std::string yaml = std::string(kPreamble) + R"(
routes:
- name: unsafe
  upstream: backend
  match: {methods: [POST]}
  retries: {attempts: 2, retryOn: [connect-failure, reset]}
- name: with-idempotency
  upstream: backend
  match: {methods: [PATCH]}
  retries: {attempts: 2, retryOn: [5xx]}
  idempotency: {}
- name: opted-in
  upstream: backend
  match: {methods: [POST]}
  retries: {attempts: 2, retryOn: [5xx], nonIdempotent: always}
- name: safe-tokens
  upstream: backend
  match: {methods: [POST]}
  retries: {attempts: 2, retryOn: [connect-failure, refused-stream, reset-before-request]}
- name: get
  upstream: backend
  match: {methods: [GET]}
  retries: {attempts: 2, retryOn: [5xx]}
)";
  LoadResult result = loadText(yaml);
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(formatted(result));
  EXPECT_THAT(formatted(result),
              ElementsAre("test.yaml:19:35: warning: routes[0].retries.retryOn: POST route "
                          "retries on \"reset\" without an idempotency block; only "
                          "connect-failure and refused-stream will be retried"));
  EXPECT_EQ(result.diagnostics[0].code, codes::kUnsafeRetry);
}

// Settings that can never take effect are pointed out.
TEST(ParserTest, WarnsOnIneffectiveRetrySettings) {
  const std::string yaml = std::string(kPreamble) + R"(
routes:
- name: codes-without-token
  upstream: backend
  retries: {retryOn: [reset], retriableStatusCodes: [503]}
- name: token-without-codes
  upstream: backend
  retries: {retryOn: [retriable-status-codes]}
- name: no-time-for-retries
  upstream: backend
  timeouts: {request: 100ms}
  retries: {attempts: 3, perTryTimeout: 100ms}
)";
  LoadResult result = loadText(yaml);
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(formatted(result));
  EXPECT_THAT(
      formatted(result),
      ElementsAre("test.yaml:18:53: warning: routes[0].retries.retriableStatusCodes: has no "
                  "effect without the retryOn token \"retriable-status-codes\"",
                  "test.yaml:21:22: warning: routes[1].retries.retryOn: "
                  "\"retriable-status-codes\" has no effect without retriableStatusCodes",
                  "test.yaml:25:41: warning: routes[2].retries.perTryTimeout: no retry can "
                  "start: perTryTimeout 100ms plus backoff 25ms uses up timeouts.request 100ms"));
}

// Smaller schema rules: grpc listener = h2c, CSV retryOn, consistentHash alone = RING_HASH,
// backoff max defaults to 10x base, concurrency N.
TEST(ParserTest, SchemaConveniences) {
  const std::string yaml = R"(apiVersion: bulwark.dev/v1alpha1
kind: ProxyConfig
runtime: {concurrency: 4}
listeners:
- {name: g, address: "[::1]:0", protocol: grpc}
upstreams:
- name: u
  endpoints: {static: [{address: 10.0.0.1:80}]}
  loadBalancer: {consistentHash: {httpCookie: {name: session}}}
routes:
- name: r
  upstream: u
  retries: {retryOn: "5xx, reset", backoff: {baseInterval: 40ms}}
)";
  LoadResult result = loadText(yaml);
  ASSERT_TRUE(result.ok()) << ::testing::PrintToString(formatted(result));
  const ProxyConfigSpec& c = *result.config;
  EXPECT_EQ(c.runtime.concurrency, 4);
  EXPECT_EQ(c.listeners[0].protocol, ListenerProtocol::H2c);
  EXPECT_EQ(c.upstreams[0].load_balancer.policy, LbPolicy::RingHash);
  EXPECT_EQ(c.upstreams[0].load_balancer.consistent_hash->http_cookie_name, "session");
  EXPECT_THAT(c.routes[0].policies.retries->retry_on, ElementsAre("5xx", "reset"));
  EXPECT_EQ(c.routes[0].policies.retries->backoff.max_interval, milliseconds(400));
}

// Quoted numbers, "yes" booleans and "0" durations are type errors, not silently converted.
TEST(ParserTest, RejectsLooseScalars) {
  const std::string yaml = std::string(kPreamble) + R"(
runtime:
  concurrency: 0
  maxConnectionsPerWorker: "5"
  drain: {exitOnZeroActive: "true", timeout: 0}
)";
  LoadResult result = loadConfigString(yaml, "t.yaml");
  EXPECT_THAT(formatted(result),
              ElementsAre("t.yaml:16:16: error: runtime.concurrency: must be between 1 and 1024, "
                          "got 0",
                          "t.yaml:17:28: error: runtime.maxConnectionsPerWorker: expected a "
                          "non-negative integer, got \"5\"",
                          "t.yaml:18:29: error: runtime.drain.exitOnZeroActive: expected true or "
                          "false, got \"true\"",
                          "t.yaml:18:46: error: runtime.drain.timeout: expected a duration like "
                          "\"250ms\", got \"0\" (add a unit: h, m, s or ms)"));
}

// Unreadable files are reported as such (bulwark check exits 2 for them).
TEST(ParserTest, MissingFileIsUnreadable) {
  LoadResult result = loadConfigFile(dataPath("does-not-exist.yaml"));
  EXPECT_TRUE(result.unreadable);
  EXPECT_FALSE(result.ok());
  ASSERT_EQ(result.diagnostics.size(), 1u);
  EXPECT_EQ(
      result.diagnostics[0].format(),
      dataPath("does-not-exist.yaml") + ": error: cannot read the file: No such file or directory");
  LoadResult dir = loadConfigFile(dataPath("good"));
  EXPECT_TRUE(dir.unreadable);
  EXPECT_THAT(dir.diagnostics[0].message, HasSubstr("Is a directory"));
}

// The mark table finds the closest recorded ancestor of a path.
TEST(ParserTest, MarkTableFallsBackToAncestors) {
  MarkTable marks;
  marks.set("routes[1]", Mark{10, 3});
  marks.set("routes[1].retries", Mark{12, 5});
  EXPECT_EQ(marks.find("routes[1].retries.backoff.baseInterval").line, 12);
  EXPECT_EQ(marks.find("routes[1].timeouts").line, 10);
  EXPECT_EQ(marks.find("routes[2]").line, 0);
  EXPECT_EQ(marks.find("").line, 0);
}

}  // namespace
}  // namespace bulwark::config
