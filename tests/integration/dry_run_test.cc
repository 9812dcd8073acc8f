// `mode: dryRun` on the protective policies: the engine decides exactly as in enforcement, the
// request goes on, and what would have happened is counted
// (bulwark_dry_run_decisions_total) and listed in the access log's `dry_run`.

#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/http1_client.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

double dryRuns(uint16_t admin, const Labels& labels) {
  return metricValue(admin, "bulwark_dry_run_decisions_total", labels).value_or(0);
}

/** Access-log lines (JSON, on the proxy's stdout) that list `decision` in dry_run. */
size_t loggedDryRuns(BulwarkProcess& proxy, const std::string& decision) {
  size_t n = 0;
  for (const auto& line : proxy.process().lines()) {
    auto entry = nlohmann::json::parse(line.text, nullptr, false);
    if (!entry.is_object() || !entry.contains("dry_run")) {
      continue;
    }
    for (const auto& d : entry["dry_run"]) {
      n += d == decision ? 1 : 0;
    }
  }
  return n;
}

const char kAccessLog[] = "observability:\n  accessLog: {path: /dev/stdout}\n";

// 200 requests at once against 5/s (burst 5): every one answered 200, the other 195 counted as
// would-be 429s and named in the access log.
TEST(DryRunTest, RateLimitCountsButNeverRefuses) {
  auto upstream = FakeUpstream::start();
  ASSERT_TRUE(upstream);
  upstream->script().otherwise(respond(200, {}, "ok"));
  auto proxy =
      startBulwark(ConfigBuilder()
                       .topLevel(kAccessLog)
                       .listener("http1")
                       .upstream("http1", {"127.0.0.1:" + std::to_string(upstream->port())})
                       .route("  rateLimit: {requestsPerSecond: 5, mode: dryRun}\n")
                       .yaml());
  ASSERT_TRUE(proxy);
  Http1Client client(proxy->port("public"));
  const auto start = Clock::now();
  for (int i = 0; i < 200; ++i) {
    auto r = client.get("/x");
    ASSERT_TRUE(r) << client.lastError();
    ASSERT_EQ(200, r->status) << i;
  }
  EXPECT_LT(Clock::now() - start, 2s);
  const Labels labels = {{"route", "all"}, {"policy", "rate_limit"}, {"decision", "rate_limited"}};
  EXPECT_GE(dryRuns(proxy->adminPort(), labels), 185);
  EXPECT_EQ(0, metricValue(proxy->adminPort(), "bulwark_rate_limited_total", {{"route", "all"}})
                   .value_or(0));
  ASSERT_TRUE(waitFor([&] { return loggedDryRuns(*proxy, "rate_limited") >= 185; }, 5s));
}

// One slot, no queue, five requests at once to a slow upstream: all five reach it; four are
// counted as would-be bulkhead_full.
TEST(DryRunTest, BulkheadCountsButNeverRefuses) {
  auto upstream = FakeUpstream::start();
  ASSERT_TRUE(upstream);
  upstream->script().otherwise(respond(200, {}, "ok").withDelay(300ms));
  auto proxy = startBulwark(
      ConfigBuilder()
          .topLevel(kAccessLog)
          .listener("http1")
          .upstream("http1", {"127.0.0.1:" + std::to_string(upstream->port())})
          .route("  bulkhead: {maxConcurrentRequests: 1, maxQueuedRequests: 0, mode: dryRun}\n")
          .yaml());
  ASSERT_TRUE(proxy);
  std::vector<std::unique_ptr<Http1Client>> clients;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(std::make_unique<Http1Client>(proxy->port("public")));
    ASSERT_TRUE(clients.back()->sendRequest(http1Get("/slow")));
  }
  for (auto& client : clients) {
    auto r = client->readResponse(deadlineIn(5s));
    ASSERT_TRUE(r) << client->lastError();
    EXPECT_EQ(200, r->status);
  }
  EXPECT_EQ(5u, upstream->requests().size());
  EXPECT_EQ(4, dryRuns(proxy->adminPort(),
                       {{"route", "all"}, {"policy", "bulkhead"}, {"decision", "bulkhead_full"}}));
  ASSERT_TRUE(waitFor([&] { return loggedDryRuns(*proxy, "bulkhead_full") == 4; }, 5s));
}

// A failing upstream behind a dry-run breaker: the breaker opens (the transition is counted) but
// every request still reaches the upstream and gets its 503, never bulwark's circuit_open.
TEST(DryRunTest, BreakerTracksStateButNeverRefuses) {
  auto upstream = FakeUpstream::start();
  ASSERT_TRUE(upstream);
  upstream->script().otherwise(respond(503, {}, "down"));
  auto proxy = startBulwark(
      ConfigBuilder()
          .topLevel(kAccessLog)
          .listener("http1")
          .upstream("http1", {"127.0.0.1:" + std::to_string(upstream->port())},
                    "  circuitBreaker: {failureRateThreshold: 50, minimumRequests: 5, window: 10s, "
                    "openDuration: 30s, mode: dryRun}\n")
          .route()
          .yaml());
  ASSERT_TRUE(proxy);
  Http1Client client(proxy->port("public"));
  for (int i = 0; i < 30; ++i) {
    auto r = client.get("/x");
    ASSERT_TRUE(r) << client.lastError();
    EXPECT_EQ(503, r->status);
    EXPECT_EQ("", r->header("x-bulwark-reason").value_or("")) << i;
  }
  EXPECT_EQ(30u, upstream->requests().size());
  EXPECT_EQ(1, metricValue(proxy->adminPort(), "bulwark_circuit_breaker_transitions_total",
                           {{"upstream", "backend"}, {"from", "closed"}, {"to", "open"}})
                   .value_or(0));
  EXPECT_GE(dryRuns(proxy->adminPort(), {{"upstream", "backend"},
                                         {"policy", "circuit_breaker"},
                                         {"decision", "circuit_open"}}),
            20);
  ASSERT_TRUE(waitFor([&] { return loggedDryRuns(*proxy, "circuit_open") >= 20; }, 5s));
}

// Outlier detection in dry run: the failing host is reported as a would-be ejection and keeps
// receiving its share.
TEST(DryRunTest, OutlierDetectionReportsButNeverEjects) {
  auto good = FakeUpstream::start();
  auto bad = FakeUpstream::start();
  ASSERT_TRUE(good && bad);
  good->script().otherwise(respond(200, {}, "ok"));
  bad->script().otherwise(respond(503, {}, "down"));
  auto proxy =
      startBulwark(ConfigBuilder()
                       .listener("http1")
                       .upstream("http1",
                                 {"127.0.0.1:" + std::to_string(good->port()),
                                  "127.0.0.1:" + std::to_string(bad->port())},
                                 "  loadBalancer: {simple: ROUND_ROBIN}\n"
                                 "  outlierDetection: {consecutive5xxErrors: 3, interval: 100ms, "
                                 "maxEjectionPercent: 50, mode: dryRun}\n")
                       .route()
                       .yaml());
  ASSERT_TRUE(proxy);
  Http1Client client(proxy->port("public"));
  for (int i = 0; i < 20; ++i) {
    auto r = client.get("/x");
    ASSERT_TRUE(r) << client.lastError();
  }
  EXPECT_GE(
      dryRuns(proxy->adminPort(),
              {{"upstream", "backend"}, {"policy", "outlier_detection"}, {"decision", "ejected"}}),
      1);
  const size_t bad_before = bad->requests().size();
  for (int i = 0; i < 20; ++i) {
    auto r = client.get("/x");
    ASSERT_TRUE(r) << client.lastError();
  }
  EXPECT_GE(bad->requests().size(), bad_before + 5);
  EXPECT_EQ(0, metricValue(proxy->adminPort(), "bulwark_outlier_ejections_total",
                           {{"upstream", "backend"}})
                   .value_or(0));
}

}  // namespace
}  // namespace bulwark::testing
