// Labelled fault run (ctest -L fault), isolation:
//  - two routes on two recommendation-server backends (each 10 ms per request,
//    --fetch-latency-ms); route a's backend starts hanging (fault hang_rate 1.0) while both
//    routes take traffic. Route a has a 300 ms deadline and a bulkhead of 16; route b's p99 may
//    not move by more than 20 % from its p99 before the hang.
//  - one route, one backend (4 at a time, 10 ms each: 400 req/s; 16 may wait), three tenants
//    with a fair share of 60 req/s each; tenantA sends 10x its share (600 req/s). A per-tenant
//    rate limit (rateLimit keyed by x-tenant-id, 100 req/s, burst 20) keeps the backend under
//    capacity, so the other tenants' success rate stays >= 99.9 %.

#include <sstream>
#include <thread>

#include <gtest/gtest.h>

#include "tests/fault/support/backends.h"
#include "tests/fault/support/open_loop.h"
#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"

namespace bulwark::testing::fault {
namespace {

using namespace std::chrono_literals;

std::string header(const std::string& name) {
  return "apiVersion: bulwark.dev/v1alpha1\nkind: ProxyConfig\nmetadata: {name: " + name +
         "}\nadmin: {address: 127.0.0.1:0}\nlisteners:\n- {name: public, address: 127.0.0.1:0, "
         "protocol: http1}\n";
}

OpenLoopOptions stream(uint16_t port, int id, double rate, std::chrono::milliseconds duration,
                       int threads, std::function<Http1Request(uint64_t)> request) {
  OpenLoopOptions o;
  o.port = port;
  o.stream = id;
  o.rate = rate;
  o.duration = duration;
  o.threads = threads;
  o.timeout = 2000ms;
  o.request = std::move(request);
  return o;
}

Http1Request onRoute(const std::string& route, uint64_t i) {
  auto r = recommendRequest("demo", i);
  r.withHeader("x-route", route);
  return r;
}

TEST(IsolationFaultTest, HangingRouteDoesNotMoveAnotherRoutesP99) {
  constexpr double kRateB = 200;
  constexpr double kRateA = 100;
  std::string error;
  auto a = spawnRecommendation("dep-a", {"--fetch-latency-ms", "10"}, &error);
  ASSERT_NE(a, nullptr) << error;
  auto b = spawnRecommendation("dep-b", {"--fetch-latency-ms", "10"}, &error);
  ASSERT_NE(b, nullptr) << error;
  std::ostringstream y;
  y << header("isolation") << "upstreams:\n"
    << "- {name: dep-a, protocol: http1, endpoints: {static: [{address: \"" << a->address()
    << "\"}]}}\n"
    << "- {name: dep-b, protocol: http1, endpoints: {static: [{address: \"" << b->address()
    << "\"}]}}\n"
    << "routes:\n"
    << "- name: route-a\n  match: {headers: [{name: x-route, exact: a}]}\n  upstream: dep-a\n"
    << "  timeouts: {request: 300ms}\n  bulkhead: {maxConcurrentRequests: 16}\n"
    << "- name: route-b\n  match: {headers: [{name: x-route, exact: b}]}\n  upstream: dep-b\n"
    << "  timeouts: {request: 300ms}\n";
  auto proxy = BulwarkProcess::start(y.str(), {"public"}, &error);
  ASSERT_NE(proxy, nullptr) << error;
  const uint16_t port = proxy->port("public");
  auto route_a = [](uint64_t i) { return onRoute("a", i); };
  auto route_b = [](uint64_t i) { return onRoute("b", i); };

  // Before: both routes healthy.
  OpenLoop before;
  before.start(
      {stream(port, 0, kRateA, 5000ms, 8, route_a), stream(port, 1, kRateB, 5000ms, 8, route_b)});
  auto base = before.wait();
  // During: route a's backend hangs.
  ASSERT_TRUE(a->setFault(R"({"hang_rate":1.0})"));
  OpenLoop during;
  during.start(
      {stream(port, 0, kRateA, 5000ms, 48, route_a), stream(port, 1, kRateB, 5000ms, 8, route_b)});
  auto hung = during.wait();
  ASSERT_TRUE(a->setFault("{}"));

  auto b_before = select(base, [](const Sample& s) { return s.stream == 1; });
  auto b_during = select(hung, [](const Sample& s) { return s.stream == 1; });
  auto a_during = select(hung, [](const Sample& s) { return s.stream == 0; });
  const double p99_before = percentileMs(latenciesMs(b_before), 99);
  const double p99_during = percentileMs(latenciesMs(b_during), 99);
  auto b_failed = select(b_during, [](const Sample& s) { return !s.served(); });
  std::printf(
      "route b before: %zu requests, p50 %.2f ms, p99 %.2f ms; during: %zu requests, p50 %.2f ms, "
      "p99 %.2f ms\n",
      b_before.size(), percentileMs(latenciesMs(b_before), 50), p99_before, b_during.size(),
      percentileMs(latenciesMs(b_during), 50), p99_during);
  std::printf("route a during the hang: %s\n", statusHistogram(a_during).c_str());
  EXPECT_TRUE(report("route a hangs: route b p99 (before -> during)",
                     format("%.2f -> %.2f ms (%+.1f %%)", p99_before, p99_during,
                            100.0 * (p99_during - p99_before) / p99_before),
                     "<= +20 %", p99_during <= 1.2 * p99_before));
  EXPECT_TRUE(report("route a hangs: route b errors",
                     format("%zu of %zu", b_failed.size(), b_during.size()), "0", b_failed.empty()))
      << statusHistogram(b_failed);
}

TEST(IsolationFaultTest, NoisyTenantLeavesOtherTenantsServed) {
  constexpr double kShare = 60;
  std::string error;
  auto backend = spawnRecommendation(
      "rec-0", {"--max-inflight", "4", "--max-queue", "16", "--fetch-latency-ms", "10"}, &error);
  ASSERT_NE(backend, nullptr) << error;
  std::ostringstream y;
  y << header("tenants") << "upstreams:\n"
    << "- {name: recommendation, protocol: http1, endpoints: {static: [{address: \""
    << backend->address() << "\"}]}}\n"
    << "routes:\n- name: recommendations\n  upstream: recommendation\n  timeouts: {request: "
       "800ms}\n"
    << "  rateLimit: {requestsPerSecond: 100, burst: 20, key: {header: x-tenant-id}}\n";
  auto proxy = BulwarkProcess::start(y.str(), {"public"}, &error);
  ASSERT_NE(proxy, nullptr) << error;
  const uint16_t port = proxy->port("public");
  auto tenant = [](std::string name) {
    return [name](uint64_t i) { return recommendRequest(name, i); };
  };
  OpenLoop run;
  run.start({stream(port, 0, 10 * kShare, 10000ms, 16, tenant("tenantA")),
             stream(port, 1, kShare, 10000ms, 4, tenant("demo")),
             stream(port, 2, kShare, 10000ms, 4, tenant("tenantB"))});
  auto samples = run.wait();

  auto noisy = select(samples, [](const Sample& s) { return s.stream == 0; });
  auto others = select(samples, [](const Sample& s) { return s.stream != 0; });
  auto others_ok = select(others, [](const Sample& s) { return s.served(); });
  auto noisy_ok = select(noisy, [](const Sample& s) { return s.served(); });
  const double success =
      100.0 * static_cast<double>(others_ok.size()) / static_cast<double>(others.size());
  std::printf("noisy tenant: %zu sent (%.0f req/s), %zu served; statuses %s\n", noisy.size(),
              sendRate(noisy), noisy_ok.size(), statusHistogram(noisy).c_str());
  std::printf("other tenants: %zu sent, %zu served, p99 %.2f ms; statuses %s\n", others.size(),
              others_ok.size(), percentileMs(latenciesMs(others), 99),
              statusHistogram(others).c_str());
  EXPECT_TRUE(report("noisy tenant offered 10x its share", format("%.0f req/s", sendRate(noisy)),
                     format(">= %.0f req/s", 9 * kShare), sendRate(noisy) >= 9 * kShare));
  EXPECT_TRUE(report("other tenants' success rate",
                     format("%.3f %% (%zu of %zu)", success, others_ok.size(), others.size()),
                     ">= 99.9 %", success >= 99.9));
}

}  // namespace
}  // namespace bulwark::testing::fault
