// circuitBreaker.perHost through the real binary: the failing host's own breaker opens and
// takes it out of rotation (the upstream keeps serving from the others), /upstreams and the
// metrics show it, and once healed the half-open probe brings it back.

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

TEST(UpstreamPerHostBreakerTest, FailingHostIsTakenOutAloneAndProbedBackIn) {
  auto hosts = FakeUpstreamGroup::start(3, Protocol::Http1);
  ASSERT_TRUE(hosts.ok());
  std::atomic<bool> broken{true};
  hosts[0].setHandler([](const ReceivedRequest&) { return respond(200, {}, "ok"); });
  hosts[1].setHandler([&](const ReceivedRequest&) {
    return broken ? respond(500, {}, "") : respond(200, {}, "ok");
  });
  hosts[2].setHandler([](const ReceivedRequest&) { return respond(200, {}, "ok"); });
  const std::string bad = hosts[1].address();
  auto proxy = startBulwark(ConfigBuilder()
                                .listener("http1")
                                .upstream("http1", hosts.addresses(),
                                          "  loadBalancer: {simple: ROUND_ROBIN}\n"
                                          "  circuitBreaker: {perHost: true, failureRateThreshold: "
                                          "50, minimumRequests: 4, window: 10s, openDuration: "
                                          "2s, halfOpenRequests: 1}\n")
                                .route()
                                .yaml());
  ASSERT_NE(proxy, nullptr);
  const uint16_t admin = proxy->adminPort();
  Http1Client c(proxy->port("public"));

  // Round robin sends every third request to the failing host; its 4th failure opens its breaker.
  int errors = 0;
  for (int i = 0; i < 60 && hosts[1].requestCount() < 4; ++i) {
    auto r = c.get("/x");
    ASSERT_TRUE(r) << c.lastError() << "\n" << proxy->process().output();
    errors += r->status == 500 ? 1 : 0;
  }
  EXPECT_EQ(errors, 4);
  // The router reports an attempt before answering the client, so the breaker opened before now.
  const auto opened_by = Clock::now();
  ASSERT_TRUE(waitForMetric(
      admin, "bulwark_circuit_breaker_hosts", {{"upstream", "backend"}, {"state", "open"}},
      [](double v) { return v == 1; }, deadlineIn(2s)));
  EXPECT_TRUE(waitForMetric(
      admin, "bulwark_upstream_endpoints", {{"upstream", "backend"}, {"health", "circuit_open"}},
      [](double v) { return v == 1; }, deadlineIn(2s)));
  EXPECT_EQ(metricValue(admin, "bulwark_circuit_breaker_transitions_total",
                        {{"upstream", "backend"}, {"from", "closed"}, {"to", "open"}}),
            1.0);
  auto host = hostJson(admin, bad);
  EXPECT_EQ(host.value("health", ""), "circuit_open") << host.dump();
  EXPECT_EQ(host["circuitBreaker"].value("state", ""), "open") << host.dump();

  // Open: the upstream serves from the other two, nothing reaches the failing host (requests
  // sent well within openDuration of the opening; the first probe may go after 2 s).
  size_t seen = hosts[1].requestCount();
  int served = 0;
  for (int i = 0; i < 20 && Clock::now() < opened_by + 1500ms; ++i) {
    auto r = c.get("/x");
    ASSERT_TRUE(r) << c.lastError();
    EXPECT_EQ(r->status, 200);
    ++served;
  }
  EXPECT_GT(served, 0);
  EXPECT_EQ(hosts[1].requestCount(), seen);

  // Healed: after openDuration the host is picked again, its probe succeeds, the breaker closes.
  broken = false;
  ASSERT_TRUE(waitFor(
      [&] {
        auto r = c.get("/x");
        return r && r->status == 200 &&
               hostJson(admin, bad)["circuitBreaker"].value("state", "") == "closed";
      },
      deadlineIn(8s)));
  EXPECT_GT(hosts[1].requestCount(), seen);
  EXPECT_EQ(metricValue(admin, "bulwark_circuit_breaker_transitions_total",
                        {{"upstream", "backend"}, {"from", "half_open"}, {"to", "closed"}}),
            1.0);
  EXPECT_EQ(hostJson(admin, bad).value("health", ""), "healthy");
}

}  // namespace
}  // namespace bulwark::testing
