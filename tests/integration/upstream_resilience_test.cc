// Circuit breaker, outlier ejection of a dead host, active health checks and readiness,
// through the real binary.

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/http1_client.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

std::string config(const std::vector<std::string>& endpoints, const std::string& upstream_extra,
                   const std::string& route_extra = "", const std::string& top_extra = "") {
  std::ostringstream y;
  y << "apiVersion: bulwark.dev/v1alpha1\nkind: ProxyConfig\nmetadata: {name: res}\n"
    << (top_extra.empty() ? "admin: {address: 127.0.0.1:0}\n" : top_extra)
    << "runtime: {concurrency: 2, drain: {minDuration: 0s, timeout: 5s}}\n"
    << "listeners:\n- {name: public, address: 127.0.0.1:0, protocol: http1}\n"
    << "upstreams:\n- name: backend\n  protocol: http1\n  endpoints:\n    static:\n";
  for (const auto& ep : endpoints) {
    y << "    - address: \"" << ep << "\"\n";
  }
  y << upstream_extra << "routes:\n- name: all\n  match: {path: {prefix: /}}\n  upstream: backend\n"
    << route_extra;
  return y.str();
}

std::unique_ptr<BulwarkProcess> startBulwark(const std::string& yaml) {
  std::string error;
  auto p = BulwarkProcess::start(yaml, {"public"}, &error);
  EXPECT_NE(p, nullptr) << error;
  return p;
}

/** A loopback port nothing listens on (bound, then closed): connects are refused. */
std::string deadAddress() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(a);
  ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof(a));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len);
  ::close(fd);
  return "127.0.0.1:" + std::to_string(ntohs(a.sin_port));
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
                                   "halfOpenRequests: 2}\n"));
  ASSERT_NE(proxy, nullptr);
  Http1Client c(proxy->port("public"));
  for (int i = 0; i < 5; ++i) {
    auto r = c.get("/x");
    ASSERT_TRUE(r) << c.lastError();
    EXPECT_EQ(r->status, 500);
  }
  // Open: fast 503 with Retry-After, the upstream sees nothing.
  size_t seen = up->requestCount();
  auto start = Clock::now();
  auto r = c.get("/x");
  auto took = Clock::now() - start;
  ASSERT_TRUE(r) << c.lastError();
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->header("retry-after"), "1");
  EXPECT_LT(took, 100ms);
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
  auto json = adminGet(proxy->adminPort(), "/upstreams");
  EXPECT_NE(json.body.find("\"circuitBreaker\""), std::string::npos) << json.body;
}

TEST(UpstreamResilienceTest, DeadHostIsEjectedAndRetriesHideIt) {
  auto hosts = FakeUpstreamGroup::start(2, Protocol::Http1);
  auto endpoints = hosts.addresses();
  std::string dead = deadAddress();
  endpoints.push_back(dead);
  auto proxy = startBulwark(config(endpoints,
                                   "  outlierDetection: {consecutiveLocalOriginFailures: 3, "
                                   "interval: 1s, baseEjectionTime: 30s, "
                                   "maxEjectionPercent: 50}\n",
                                   "  retries: {attempts: 3, retryOn: [connect-failure], backoff: "
                                   "{baseInterval: 1ms, maxInterval: 5ms}}\n"));
  ASSERT_NE(proxy, nullptr);
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
      waitForMetric(proxy->adminPort(), "bulwark_outlier_ejections_total",
                    {{"upstream", "backend"}, {"reason", "consecutive_local_origin_failure"}},
                    [](double v) { return v >= 1; }));
  auto json = adminGet(proxy->adminPort(), "/upstreams");
  EXPECT_NE(json.body.find("\"ejected\""), std::string::npos);
  // Once ejected, the dead host gets no more attempts: all traffic reaches the live ones.
  size_t before = hosts.requestCount();
  for (int i = 0; i < 50; ++i) {
    auto r = c.get("/x");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->status, 200);
  }
  EXPECT_EQ(hosts.requestCount() - before, 50u);
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
  auto proxy = startBulwark(
      config(hosts.addresses(),
             "  healthCheck: {http: {path: /healthz}, interval: 100ms, timeout: 200ms, "
             "unhealthyThreshold: 2, "
             "healthyThreshold: 1}\n",
             "", "admin: {address: 127.0.0.1:0, readiness: {requireUpstreams: [backend]}}\n"));
  ASSERT_NE(proxy, nullptr);
  EXPECT_TRUE(waitForAdminStatus(proxy->adminPort(), "/ready", 200));
  sick = true;
  auto marked = Clock::now();
  ASSERT_TRUE(waitForMetric(
      proxy->adminPort(), "bulwark_upstream_endpoints",
      {{"upstream", "backend"}, {"health", "unhealthy"}}, [](double v) { return v == 1; },
      deadlineIn(3s)));
  // interval × unhealthyThreshold plus jitter and a scrape.
  EXPECT_LT(Clock::now() - marked, 1s);
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
                                   "healthyThreshold: 1}\n"));
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
  auto proxy = startBulwark(
      config({up->address()},
             "  healthCheck: {http: {path: /healthz}, interval: 100ms, timeout: 200ms, "
             "unhealthyThreshold: 1, healthyThreshold: 1}\n",
             "", "admin: {address: 127.0.0.1:0, readiness: {requireUpstreams: [backend]}}\n"));
  ASSERT_NE(proxy, nullptr);
  EXPECT_TRUE(waitForAdminStatus(proxy->adminPort(), "/ready", 503));
  up->setHandler([](const ReceivedRequest&) { return respond(200, {}, "up"); });
  EXPECT_TRUE(waitForAdminStatus(proxy->adminPort(), "/ready", 200));
}

TEST(UpstreamResilienceTest, MaxRequestsOverflowIsAFast503) {
  auto up = FakeUpstream::start(Protocol::Http1);
  up->setHandler([](const ReceivedRequest&) { return hang(); });
  auto proxy =
      startBulwark(config({up->address()}, "  connectionPool: {http: {maxRequests: 1}}\n"));
  ASSERT_NE(proxy, nullptr);
  Http1Client hung(proxy->port("public"));
  ASSERT_TRUE(hung.sendRaw("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(up->waitForRequests(1));
  Http1Client c(proxy->port("public"));
  auto r = c.get("/b");
  ASSERT_TRUE(r) << c.lastError();
  EXPECT_EQ(r->status, 503);
  EXPECT_TRUE(waitForMetric(proxy->adminPort(), "bulwark_connection_pool_overflow_total",
                            {{"upstream", "backend"}, {"limit", "requests"}},
                            [](double v) { return v >= 1; }));
}

}  // namespace
}  // namespace bulwark::testing
