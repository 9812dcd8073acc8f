// Circuit breaker (failure and slow-call rates), outlier ejection (consecutive failures, failure
// percentage, maxEjectionPercent, growing ejection time), active health checks (HTTP and TCP)
// and readiness, through the real binary.

#include <atomic>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/admin_json.h"
#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/http1_client.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

/** HTTP/1.1 listener "public", upstream "backend" (HTTP/1.1, `upstream_extra`), route "all". */
ConfigBuilder config(const std::vector<std::string>& endpoints, const std::string& upstream_extra,
                     const std::string& route_extra = "") {
  ConfigBuilder builder;
  builder.listener("http1").upstream("http1", endpoints, upstream_extra).route(route_extra);
  return builder;
}

std::string breakerState(uint16_t admin) {
  auto backend = upstreamJson(admin);
  return backend.is_object() && backend.contains("circuitBreaker")
             ? backend["circuitBreaker"].value("state", "")
             : "";
}

TEST(UpstreamResilienceTest, BreakerOpensOnErrorsFailsFastAndClosesAfterRecovery) {
  auto up = FakeUpstream::start(Protocol::Http1);
  std::atomic<bool> broken{true};
  up->setHandler([&](const ReceivedRequest&) {
    // No body: the router reports a response's status only when it ends at the headers (a body
    // makes it report 200; see the router).
    return broken ? respond(500, {}, "") : respond(200, {}, "ok");
  });
  auto proxy = startBulwark(config({up->address()},
                                   "  circuitBreaker: {failureRateThreshold: 50, minimumRequests: "
                                   "5, window: 10s, openDuration: 1s, "
                                   "halfOpenRequests: 2}\n")
                                .yaml());
  ASSERT_NE(proxy, nullptr);
  EXPECT_EQ(breakerState(proxy->adminPort()), "closed");
  Http1Client c(proxy->port("public"));
  for (int i = 0; i < 5; ++i) {
    auto r = c.get("/x");
    ASSERT_TRUE(r) << c.lastError();
    EXPECT_EQ(r->status, 500);
  }
  // Open: bulwark answers 503 itself with Retry-After, the upstream sees nothing.
  EXPECT_EQ(breakerState(proxy->adminPort()), "open");
  size_t seen = up->requestCount();
  auto r = c.get("/x");
  ASSERT_TRUE(r) << c.lastError();
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->header("x-bulwark-reason"), "circuit_open");
  EXPECT_EQ(r->header("retry-after"), "1");
  EXPECT_EQ(up->requestCount(), seen);
  EXPECT_TRUE(waitForMetric(proxy->adminPort(), "bulwark_circuit_breaker_state",
                            {{"upstream", "backend"}, {"state", "open"}},
                            [](double v) { return v == 1; }));
  // Healed: after openDuration the half-open probes succeed and the breaker closes.
  broken = false;
  ASSERT_TRUE(waitFor(
      [&] {
        auto probe = c.get("/x");
        return probe && probe->status == 200;
      },
      deadlineIn(5s)));
  auto second = c.get("/x");
  ASSERT_TRUE(second);
  EXPECT_EQ(second->status, 200);
  EXPECT_TRUE(waitForMetric(proxy->adminPort(), "bulwark_circuit_breaker_state",
                            {{"upstream", "backend"}, {"state", "closed"}},
                            [](double v) { return v == 1; }));
  EXPECT_EQ(breakerState(proxy->adminPort()), "closed");
}

// Proves the slow-call rate opens the breaker on its own: every answer is a 200, only slower than
// slowCallDurationThreshold.
TEST(UpstreamResilienceTest, SlowCallRateOpensTheBreakerOnSuccessfulAnswers) {
  auto up = FakeUpstream::start(Protocol::Http1);
  up->setHandler([](const ReceivedRequest&) { return respond(200, {}, "").withDelay(150ms); });
  auto proxy = startBulwark(config({up->address()},
                                   "  circuitBreaker: {slowCallDurationThreshold: 50ms, "
                                   "slowCallRateThreshold: 50, failureRateThreshold: 100, "
                                   "minimumRequests: 4, window: 10s, openDuration: 30s}\n")
                                .yaml());
  ASSERT_NE(proxy, nullptr);
  Http1Client c(proxy->port("public"));
  for (int i = 0; i < 4; ++i) {
    auto r = c.get("/slow");
    ASSERT_TRUE(r) << c.lastError();
    EXPECT_EQ(r->status, 200);
  }
  ASSERT_TRUE(waitForMetric(
      proxy->adminPort(), "bulwark_circuit_breaker_state",
      {{"upstream", "backend"}, {"state", "open"}}, [](double v) { return v == 1; },
      deadlineIn(2s)));
  auto backend = upstreamJson(proxy->adminPort());
  EXPECT_EQ(backend["circuitBreaker"].value("state", ""), "open") << backend.dump();
  EXPECT_EQ(backend["circuitBreaker"]["window"].value("failures", -1), 0) << backend.dump();
  EXPECT_GE(backend["circuitBreaker"]["window"].value("slow", 0), 4) << backend.dump();
  const size_t seen = up->requestCount();
  auto r = c.get("/slow");
  ASSERT_TRUE(r) << c.lastError();
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->header("x-bulwark-reason"), "circuit_open");
  EXPECT_EQ(up->requestCount(), seen);
}

TEST(UpstreamResilienceTest, DeadHostIsEjectedAndRetriesHideIt) {
  auto hosts = FakeUpstreamGroup::start(2, Protocol::Http1);
  auto endpoints = hosts.addresses();
  RefusingPort refusing;
  const std::string dead = refusing.address();
  endpoints.push_back(dead);
  auto proxy = startBulwark(config(endpoints,
                                   "  outlierDetection: {consecutiveLocalOriginFailures: 3, "
                                   "interval: 1s, baseEjectionTime: 30s, "
                                   "maxEjectionPercent: 50}\n",
                                   "  retries: {attempts: 3, retryOn: [connect-failure], backoff: "
                                   "{baseInterval: 1ms, maxInterval: 5ms}}\n")
                                .yaml());
  ASSERT_NE(proxy, nullptr);
  const uint16_t admin = proxy->adminPort();
  Http1Client c(proxy->port("public"));
  int errors = 0;
  for (int i = 0; i < 200; ++i) {
    auto r = c.get("/x");
    if (!r || r->status != 200) {
      ++errors;
    }
  }
  EXPECT_EQ(errors, 0);
  EXPECT_TRUE(
      waitForMetric(admin, "bulwark_outlier_ejections_total",
                    {{"upstream", "backend"}, {"reason", "consecutive_local_origin_failure"}},
                    [](double v) { return v >= 1; }));
  auto dead_host = hostJson(admin, dead);
  ASSERT_TRUE(dead_host.is_object()) << adminGet(admin, "/upstreams").body;
  EXPECT_EQ(dead_host["ejected"], true) << dead_host.dump();
  EXPECT_EQ(dead_host.value("health", ""), "ejected") << dead_host.dump();
  // Each worker's attempts to the dead host are refused connects; at least the 3 that ejected it.
  const uint64_t refused = dead_host.value("connectFailuresTotal", uint64_t{0});
  EXPECT_GE(refused, 3u) << dead_host.dump();
  for (const auto& live : hosts.addresses()) {
    EXPECT_EQ(hostJson(admin, live)["ejected"], false) << live;
  }
  // Once ejected, the dead host gets no more attempts (its refused connects stay where they
  // were), and all traffic reaches the live ones without a retry.
  const size_t before = hosts.requestCount();
  const double retries_before =
      metricValue(admin, "bulwark_upstream_attempts_total", {{"route", "all"}, {"kind", "retry"}})
          .value_or(0);
  for (int i = 0; i < 50; ++i) {
    auto r = c.get("/x");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_EQ(hosts.requestCount() - before, 50u);
  EXPECT_EQ(hostJson(admin, dead).value("connectFailuresTotal", uint64_t{0}), refused);
  EXPECT_EQ(
      metricValue(admin, "bulwark_upstream_attempts_total", {{"route", "all"}, {"kind", "retry"}})
          .value_or(-1),
      retries_before);
}

TEST(UpstreamResilienceTest, FailingHealthChecksRemoveAHostAndRecoveryBringsItBack) {
  auto hosts = FakeUpstreamGroup::start(2, Protocol::Http1);
  std::atomic<bool> sick{false};
  for (size_t i = 0; i < 2; ++i) {
    hosts[i].setHandler([&sick, i](const ReceivedRequest& r) {
      if (r.path == "/healthz") {
        return respond(i == 1 && sick ? 503 : 200, {}, "h");
      }
      return respond(200, {}, "ok");
    });
  }
  auto proxy = startBulwark(config(hosts.addresses(),
                                   "  healthCheck: {http: {path: /healthz}, interval: 100ms, "
                                   "timeout: 200ms, unhealthyThreshold: 2, healthyThreshold: 1}\n")
                                .adminExtra("readiness: {requireUpstreams: [backend]}")
                                .yaml());
  ASSERT_NE(proxy, nullptr);
  EXPECT_TRUE(waitForAdminStatus(proxy->adminPort(), "/ready", 200));
  sick = true;
  // interval × unhealthyThreshold (200 ms) plus jitter; the deadline leaves room for a loaded
  // machine.
  ASSERT_TRUE(waitForMetric(
      proxy->adminPort(), "bulwark_upstream_endpoints",
      {{"upstream", "backend"}, {"health", "unhealthy"}}, [](double v) { return v == 1; },
      deadlineIn(3s)));
  EXPECT_EQ(hostJson(proxy->adminPort(), hosts[1].address()).value("health", ""), "unhealthy");
  auto count = [&] {
    size_t n = 0;
    for (const auto& r : hosts[1].requests()) {
      n += r.path == "/x" ? 1 : 0;
    }
    return n;
  };
  size_t before = count();
  Http1Client c(proxy->port("public"));
  for (int i = 0; i < 40; ++i) {
    auto r = c.get("/x");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_EQ(count(), before);
  sick = false;
  ASSERT_TRUE(waitForMetric(
      proxy->adminPort(), "bulwark_upstream_endpoints",
      {{"upstream", "backend"}, {"health", "healthy"}}, [](double v) { return v == 2; },
      deadlineIn(3s)));
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(c.get("/x"));
  }
  EXPECT_GT(count(), before);
  EXPECT_TRUE(waitForMetric(proxy->adminPort(), "bulwark_health_checks_total",
                            {{"upstream", "backend"}, {"result", "failure"}},
                            [](double v) { return v >= 2; }));
}

// Proves an outlier-ejected host that passes its active health checks is taken back at once
// (Envoy's successful_active_health_check_uneject_host) instead of after baseEjectionTime, and
// that outlier detection then judges it afresh: new consecutive failures eject it again well
// within the first ejection's 30 s.
TEST(UpstreamResilienceTest, SuccessfulHealthCheckEndsAnOutlierEjection) {
  auto hosts = FakeUpstreamGroup::start(2, Protocol::Http1);
  std::atomic<bool> failing{true};
  std::atomic<size_t> failures_served{0};  // host 1's 503s
  for (size_t i = 0; i < 2; ++i) {
    hosts[i].setHandler([&failing, &failures_served, i](const ReceivedRequest& r) {
      if (r.path == "/healthz") {
        return respond(200, {}, "h");
      }
      if (i == 1 && failing) {
        ++failures_served;
        return respond(503, {}, "");
      }
      return respond(200, {}, "");
    });
  }
  auto proxy = startBulwark(config(hosts.addresses(),
                                   "  outlierDetection: {consecutive5xxErrors: 2, interval: 10s, "
                                   "baseEjectionTime: 30s, maxEjectionPercent: 50}\n"
                                   "  healthCheck: {http: {path: /healthz}, interval: 100ms, "
                                   "timeout: 200ms, unhealthyThreshold: 2, "
                                   "healthyThreshold: 1}\n")
                                .yaml());
  ASSERT_NE(proxy, nullptr);
  Http1Client c(proxy->port("public"));
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(c.get("/x"));
  }
  ASSERT_TRUE(waitForMetric(proxy->adminPort(), "bulwark_outlier_ejections_total",
                            {{"upstream", "backend"}, {"reason", "consecutive_5xx"}},
                            [](double v) { return v == 1; }));
  failing = false;
  // The next health check (every 100 ms) ends the 30 s ejection.
  ASSERT_TRUE(waitForMetric(
      proxy->adminPort(), "bulwark_outlier_unejections_total",
      {{"upstream", "backend"}, {"reason", "active_health_check"}}, [](double v) { return v == 1; },
      deadlineIn(3s)));
  auto json =
      nlohmann::json::parse(adminGet(proxy->adminPort(), "/upstreams").body, nullptr, false);
  nlohmann::json backend;
  for (const auto& u : json) {
    if (u["name"] == "backend") {
      backend = u;
    }
  }
  ASSERT_TRUE(backend.is_object()) << json.dump();
  const auto& host = backend["hosts"][1];
  EXPECT_EQ(host["ejected"], false) << host.dump();
  EXPECT_EQ(host["timesEjected"], 1) << host.dump();
  EXPECT_EQ(host["healthCheckUnejections"], 1) << host.dump();
  // Back in rotation well within the 30 s ejection.
  size_t before = hosts[1].requestCount();
  for (int i = 0; i < 10; ++i) {
    auto r = c.get("/x");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_GT(hosts[1].requestCount(), before);

  // Failing again: two more 503s in a row eject it again (the detector no longer holds the
  // first ejection, which would have ignored them until its 30 s were up), and the next passing
  // health check ends that ejection too.
  failing = true;
  failures_served = 0;
  for (int i = 0; i < 50 && failures_served < 2; ++i) {
    ASSERT_TRUE(c.get("/x")) << c.lastError();
  }
  ASSERT_EQ(failures_served, 2u);
  ASSERT_TRUE(waitForMetric(
      proxy->adminPort(), "bulwark_outlier_ejections_total",
      {{"upstream", "backend"}, {"reason", "consecutive_5xx"}}, [](double v) { return v == 2; },
      deadlineIn(3s)));
  ASSERT_TRUE(waitForMetric(
      proxy->adminPort(), "bulwark_outlier_unejections_total",
      {{"upstream", "backend"}, {"reason", "active_health_check"}}, [](double v) { return v == 2; },
      deadlineIn(3s)));
  json = nlohmann::json::parse(adminGet(proxy->adminPort(), "/upstreams").body, nullptr, false);
  for (const auto& u : json) {
    if (u["name"] == "backend") {
      backend = u;
    }
  }
  EXPECT_EQ(backend["hosts"][1]["timesEjected"], 2) << backend.dump();
  EXPECT_EQ(backend["hosts"][1]["healthCheckUnejections"], 2) << backend.dump();
}

TEST(UpstreamResilienceTest, ReadinessNeedsAHealthyHost) {
  auto up = FakeUpstream::start(Protocol::Http1);
  up->setHandler([](const ReceivedRequest&) { return respond(503, {}, "down"); });
  auto proxy = startBulwark(config({up->address()},
                                   "  healthCheck: {http: {path: /healthz}, interval: 100ms, "
                                   "timeout: 200ms, unhealthyThreshold: 1, healthyThreshold: 1}\n")
                                .adminExtra("readiness: {requireUpstreams: [backend]}")
                                .yaml());
  ASSERT_NE(proxy, nullptr);
  EXPECT_TRUE(waitForAdminStatus(proxy->adminPort(), "/ready", 503));
  up->setHandler([](const ReceivedRequest&) { return respond(200, {}, "up"); });
  EXPECT_TRUE(waitForAdminStatus(proxy->adminPort(), "/ready", 200));
}

// Proves a TCP health check only connects: hosts that answer every HTTP path but /x with 503
// stay healthy (an HTTP check would fail them), and a host whose port stops accepting leaves
// the rotation.
TEST(UpstreamResilienceTest, TcpHealthCheckConnectsOnlyAndRemovesAHostThatRefuses) {
  auto hosts = FakeUpstreamGroup::start(2, Protocol::Http1);
  hosts.setHandler([](const ReceivedRequest& r) {
    return r.path == "/x" ? respond(200, {}, "ok") : respond(503, {}, "");
  });
  auto proxy = startBulwark(config(hosts.addresses(),
                                   "  healthCheck: {tcp: {}, interval: 100ms, timeout: 200ms, "
                                   "unhealthyThreshold: 2, healthyThreshold: 1}\n")
                                .yaml());
  ASSERT_NE(proxy, nullptr);
  const uint16_t admin = proxy->adminPort();
  // Several rounds of checks pass, each a connection to both hosts and no request at all.
  ASSERT_TRUE(waitForMetric(
      admin, "bulwark_health_checks_total", {{"upstream", "backend"}, {"result", "success"}},
      [](double v) { return v >= 6; }, deadlineIn(3s)));
  EXPECT_EQ(metricValue(admin, "bulwark_health_checks_total",
                        {{"upstream", "backend"}, {"result", "failure"}})
                .value_or(0),
            0);
  EXPECT_EQ(hosts.requestCount(), 0u);
  EXPECT_GE(hosts[0].totalConnections(), 3u);
  EXPECT_GE(hosts[1].totalConnections(), 3u);

  const std::string gone = hosts[1].address();
  hosts[1].stop();
  // Held so that no other process starts listening there while the checks run.
  RefusingPort refusing(hosts[1].port());
  ASSERT_TRUE(waitForMetric(
      admin, "bulwark_upstream_endpoints", {{"upstream", "backend"}, {"health", "unhealthy"}},
      [](double v) { return v == 1; }, deadlineIn(3s)));
  EXPECT_EQ(hostJson(admin, gone).value("health", ""), "unhealthy");
  Http1Client c(proxy->port("public"));
  for (int i = 0; i < 20; ++i) {
    auto r = c.get("/x");
    ASSERT_TRUE(r) << c.lastError();
    EXPECT_EQ(r->status, 200) << r->header("x-bulwark-reason").value_or("");
  }
  EXPECT_EQ(hosts[0].requestCount(), 20u);
}

// Proves failure-percentage ejection: a host failing every other request never has two failures
// in a row (the consecutive detectors are off anyway), yet at 50 % it is ejected by the sweep.
TEST(UpstreamResilienceTest, FailurePercentageEjectsAHostFailingHalfItsRequests) {
  auto hosts = FakeUpstreamGroup::start(3, Protocol::Http1);
  std::atomic<uint64_t> served{0};
  hosts.setHandler([&](const ReceivedRequest&) { return respond(200, {}, ""); });
  hosts[2].setHandler(
      [&](const ReceivedRequest&) { return respond(++served % 2 == 0 ? 503 : 200, {}, ""); });
  auto proxy = startBulwark(
      config(hosts.addresses(),
             "  loadBalancer: {simple: ROUND_ROBIN}\n"
             "  outlierDetection: {consecutive5xxErrors: 0, consecutiveLocalOriginFailures: 0,\n"
             "                     failurePercentageThreshold: 50, failurePercentageMinimumHosts: "
             "3,\n"
             "                     failurePercentageRequestVolume: 10, interval: 500ms,\n"
             "                     baseEjectionTime: 30s, maxEjectionPercent: 34}\n")
          .concurrency(1)
          .yaml());
  ASSERT_NE(proxy, nullptr);
  const uint16_t admin = proxy->adminPort();
  Http1Client c(proxy->port("public"));
  auto ejected = [&] {
    return metricValue(admin, "bulwark_outlier_ejections_total",
                       {{"upstream", "backend"}, {"reason", "failure_percentage"}})
               .value_or(0) >= 1;
  };
  // Traffic until a sweep saw at least 10 results per host within one interval.
  const auto deadline = deadlineIn(10s);
  while (!ejected() && Clock::now() < deadline) {
    for (int i = 0; i < 30; ++i) {
      ASSERT_TRUE(c.get("/x")) << c.lastError();
    }
  }
  ASSERT_TRUE(ejected()) << adminGet(admin, "/upstreams").body;
  EXPECT_EQ(hostJson(admin, hosts[2].address())["ejected"], true);
  EXPECT_EQ(hostJson(admin, hosts[0].address())["ejected"], false);
  EXPECT_EQ(hostJson(admin, hosts[1].address())["ejected"], false);
  const size_t before = hosts[2].requestCount();
  for (int i = 0; i < 30; ++i) {
    auto r = c.get("/x");
    ASSERT_TRUE(r) << c.lastError();
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_EQ(hosts[2].requestCount(), before);
}

// Proves ignoreRetryAfter through the proxy: a host answering 503 + Retry-After to everything
// (shedding load) stays in however many it sends, and turns into an outlier at once when it
// answers 500 instead.
TEST(UpstreamResilienceTest, IgnoreRetryAfterKeepsASheddingHostIn) {
  auto hosts = FakeUpstreamGroup::start(2, Protocol::Http1);
  std::atomic<bool> broken{false};
  hosts.setHandler([](const ReceivedRequest&) { return respond(200, {}, ""); });
  hosts[0].setHandler([&](const ReceivedRequest&) {
    return broken ? respond(500, {}, "") : respond(503, {{"retry-after", "1"}}, "");
  });
  auto proxy =
      startBulwark(config(hosts.addresses(),
                          "  loadBalancer: {simple: ROUND_ROBIN}\n"
                          "  outlierDetection: {consecutive5xxErrors: 2, "
                          "consecutiveGatewayErrors: 2, ignoreRetryAfter: true, "
                          "interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 50}\n")
                       .concurrency(1)
                       .yaml());
  ASSERT_NE(proxy, nullptr);
  const uint16_t admin = proxy->adminPort();
  Http1Client c(proxy->port("public"));
  int shed = 0;
  for (int i = 0; i < 20; ++i) {
    auto r = c.get("/x");
    ASSERT_TRUE(r) << c.lastError();
    shed += r->status == 503 ? 1 : 0;
  }
  EXPECT_EQ(shed, 10);  // round robin: every other request
  EXPECT_EQ(
      metricValue(admin, "bulwark_outlier_ejections_total", {{"upstream", "backend"}}).value_or(0),
      0);
  EXPECT_EQ(hostJson(admin, hosts[0].address())["ejected"], false);

  broken = true;
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(c.get("/x")) << c.lastError();
  }
  EXPECT_EQ(metricValue(admin, "bulwark_outlier_ejections_total",
                        {{"upstream", "backend"}, {"reason", "consecutive_5xx"}})
                .value_or(0),
            1);
  EXPECT_EQ(hostJson(admin, hosts[0].address())["ejected"], true);
}

// Proves maxEjectionPercent caps ejections: two of four hosts always fail, but at 25 % only one
// may be out; the other keeps getting (and failing) requests.
TEST(UpstreamResilienceTest, MaxEjectionPercentKeepsTheSecondFailingHostIn) {
  auto hosts = FakeUpstreamGroup::start(4, Protocol::Http1);
  hosts.setHandler([](const ReceivedRequest&) { return respond(200, {}, ""); });
  hosts[0].setHandler([](const ReceivedRequest&) { return respond(503, {}, ""); });
  hosts[1].setHandler([](const ReceivedRequest&) { return respond(503, {}, ""); });
  auto proxy = startBulwark(config(hosts.addresses(),
                                   "  loadBalancer: {simple: ROUND_ROBIN}\n"
                                   "  outlierDetection: {consecutive5xxErrors: 2, interval: 10s, "
                                   "baseEjectionTime: 30s, maxEjectionPercent: 25}\n")
                                .concurrency(1)
                                .yaml());
  ASSERT_NE(proxy, nullptr);
  const uint16_t admin = proxy->adminPort();
  Http1Client c(proxy->port("public"));
  // Round robin: 8 requests give each failing host 2 failures in a row.
  for (int i = 0; i < 40; ++i) {
    ASSERT_TRUE(c.get("/x")) << c.lastError();
  }
  EXPECT_EQ(metricValue(admin, "bulwark_outlier_ejections_total",
                        {{"upstream", "backend"}, {"reason", "consecutive_5xx"}})
                .value_or(0),
            1);
  EXPECT_EQ(metricValue(admin, "bulwark_outlier_ejected_endpoints", {{"upstream", "backend"}})
                .value_or(-1),
            1);
  const bool first_out = hostJson(admin, hosts[0].address())["ejected"] == true;
  FakeUpstream& in = first_out ? hosts[1] : hosts[0];
  EXPECT_EQ(hostJson(admin, in.address())["ejected"], false);
  const size_t before = in.requestCount();
  for (int i = 0; i < 12; ++i) {
    ASSERT_TRUE(c.get("/x")) << c.lastError();
  }
  EXPECT_GE(in.requestCount(), before + 3) << "the capped host left the rotation";
}

// Proves the ejection time grows with each ejection (base × times ejected): the second ejection
// of the same host is announced for twice as long as the first.
TEST(UpstreamResilienceTest, EjectionTimeGrowsWithEachEjection) {
  auto hosts = FakeUpstreamGroup::start(3, Protocol::Http1);
  hosts.setHandler([](const ReceivedRequest&) { return respond(200, {}, ""); });
  hosts[0].setHandler([](const ReceivedRequest&) { return respond(503, {}, ""); });
  auto proxy = startBulwark(config(hosts.addresses(),
                                   "  loadBalancer: {simple: ROUND_ROBIN}\n"
                                   "  outlierDetection: {consecutive5xxErrors: 2, interval: 30s, "
                                   "baseEjectionTime: 2s, maxEjectionTime: 20s, "
                                   "maxEjectionPercent: 50}\n")
                                .concurrency(1)
                                .yaml());
  ASSERT_NE(proxy, nullptr);
  const uint16_t admin = proxy->adminPort();
  const std::string failing = hosts[0].address();
  Http1Client c(proxy->port("public"));
  // Sends requests until the failing host is ejected; returns its /upstreams entry.
  auto ejected = [&] {
    auto host = hostJson(admin, failing);
    for (int i = 0; i < 30 && host["ejected"] != true; ++i) {
      EXPECT_TRUE(c.get("/x")) << c.lastError();
      host = hostJson(admin, failing);
    }
    return host;
  };
  auto first = ejected();
  ASSERT_EQ(first["ejected"], true) << first.dump();
  EXPECT_EQ(first["timesEjected"], 1) << first.dump();
  EXPECT_GT(first.value("ejectedForMs", 0), 0) << first.dump();
  EXPECT_LE(first.value("ejectedForMs", 0), 2000) << first.dump();
  // Back after 2 s, still failing: ejected again, now for 2 × 2 s.
  ASSERT_TRUE(waitFor([&] { return hostJson(admin, failing)["ejected"] == false; }, 5s));
  auto second = ejected();
  ASSERT_EQ(second["ejected"], true) << second.dump();
  EXPECT_EQ(second["timesEjected"], 2) << second.dump();
  EXPECT_GT(second.value("ejectedForMs", 0), 2000) << second.dump();
  EXPECT_LE(second.value("ejectedForMs", 0), 4000) << second.dump();
}

}  // namespace
}  // namespace bulwark::testing
