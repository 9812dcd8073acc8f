// Labelled fault run (ctest -L fault): a recommendation-server replica
// answering 100 % errors (fault knob error_rate 1.0, 503) trips the circuit breaker within one
// window; after it heals, half-open probes close it; no client waits longer than fail-fast
// while it is open. Two runs, with examples/recommendation/bulwark.yaml's breaker settings
// (failureRate 50 %, minimumRequests 20, window 10 s, openDuration 5 s, 5 probes):
//  - upstream-wide breaker (the file as shipped), one replica: while open every request is
//    answered locally (the route's circuitOpen fallback), fail-fast = 10 ms at most;
//  - circuitBreaker.perHost, three replicas, one failing; outlierDetection removed so that the
//    breaker, not a consecutive-5xx ejection, is what takes the host out: while open the host
//    gets no request at all, and clients see no error and no extra wait (p99 within 1.2x of
//    their p99 before the fault).

#include <thread>

#include <gtest/gtest.h>

#include "tests/fault/support/backends.h"
#include "tests/fault/support/open_loop.h"
#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"

namespace bulwark::testing::fault {
namespace {

using namespace std::chrono_literals;

constexpr double kRate = 200;
constexpr auto kWindow = 10s;       // bulwark.yaml circuitBreaker.window
constexpr auto kOpenDuration = 5s;  // bulwark.yaml circuitBreaker.openDuration
constexpr double kFailFastMs = 10;  // the longest a refused request may take end to end

double msBetween(Clock::time_point a, Clock::time_point b) {
  return std::chrono::duration<double, std::milli>(b - a).count();
}

/** Polls `state_of` until it returns `want`; the instant it did, or nullopt at the deadline. */
std::optional<Clock::time_point> waitForState(
    const std::function<std::optional<std::string>()>& state_of, const std::string& want,
    Deadline deadline) {
  std::optional<Clock::time_point> at;
  waitFor(
      [&] {
        auto s = state_of();
        if (s && *s == want) {
          at = Clock::now();
        }
        return at.has_value();
      },
      deadline);
  return at;
}

OpenLoopOptions loadOn(uint16_t port, std::chrono::milliseconds duration) {
  OpenLoopOptions options;
  options.port = port;
  options.rate = kRate;
  options.duration = duration;
  options.threads = 8;
  options.request = [](uint64_t i) { return recommendRequest("demo", i); };
  return options;
}

TEST(ReplicaBreakerFaultTest, UpstreamBreakerTripsInOneWindowFailsFastAndProbesCloseIt) {
  std::string error;
  auto replica = spawnRecommendation("rec-0", {}, &error);
  ASSERT_NE(replica, nullptr) << error;
  auto proxy = BulwarkProcess::start(recommendationConfig({replica->address()}),
                                     {kRecommendationListener}, &error);
  ASSERT_NE(proxy, nullptr) << error;
  const uint16_t admin = proxy->adminPort();
  auto state = [&] { return breakerState(admin, "recommendation", ""); };

  OpenLoop load;
  load.start({loadOn(proxy->port(kRecommendationListener), 16000ms)});
  std::this_thread::sleep_until(load.startTime() + 1s);
  const auto broken_at = Clock::now();
  ASSERT_TRUE(replica->setFault(R"({"error_rate":1.0,"error_http_status":503})"));
  auto opened_at = waitForState(state, "open", broken_at + kWindow + 2s);
  ASSERT_TRUE(opened_at) << "breaker never opened";
  // Open for a while, then heal; the probes after openDuration close it.
  std::this_thread::sleep_until(*opened_at + 2s);
  const auto healed_at = Clock::now();
  ASSERT_TRUE(replica->setFault("{}"));
  auto closed_at = waitForState(state, "closed", healed_at + kOpenDuration + 5s);
  auto samples = load.wait();

  // While open: requests sent after it opened (plus a grace for answers in flight) and before
  // the first probe could go (openDuration after opening).
  auto while_open = select(samples, [&](const Sample& s) {
    return s.sent >= *opened_at + 50ms && s.sent < *opened_at + kOpenDuration - 50ms;
  });
  auto local = select(while_open, [](const Sample& s) { return s.degraded || !s.reason.empty(); });
  auto after =
      select(samples, [&](const Sample& s) { return closed_at && s.sent >= *closed_at + 100ms; });
  auto after_ok = select(after, [](const Sample& s) { return s.served(); });
  std::printf("upstream breaker run: %zu requests, statuses: %s\n", samples.size(),
              statusHistogram(samples).c_str());
  std::printf("while open: %zu requests, %s\n", while_open.size(),
              statusHistogram(while_open).c_str());
  const double open_ms = msBetween(broken_at, *opened_at);
  const double p99 = percentileMs(serviceTimesMs(while_open), 99);
  const double max = percentileMs(serviceTimesMs(while_open), 100);
  EXPECT_TRUE(report("100 % errors -> breaker open", format("%.0f ms", open_ms),
                     "<= window (10000 ms)",
                     open_ms <= std::chrono::duration<double, std::milli>(kWindow).count()));
  EXPECT_TRUE(report("while open: answered locally (fallback / 503)",
                     format("%zu of %zu", local.size(), while_open.size()), "all",
                     !while_open.empty() && local.size() == while_open.size()));
  auto lost = select(while_open, [](const Sample& s) { return s.closedUnannounced(); });
  EXPECT_TRUE(report("while open: lost to a keep-alive closed unannounced",
                     format("%zu", lost.size()), "0", lost.empty()));
  EXPECT_TRUE(report("while open: client wait p99 / max", format("%.2f ms / %.2f ms", p99, max),
                     format("max <= %.0f ms", kFailFastMs),
                     !while_open.empty() && max <= kFailFastMs));
  EXPECT_TRUE(
      report("healed -> half-open probes close it",
             closed_at ? format("%.0f ms", msBetween(healed_at, *closed_at)) : std::string("never"),
             "<= openDuration + 5 s", closed_at.has_value()));
  EXPECT_TRUE(report("after close: served", format("%zu of %zu", after_ok.size(), after.size()),
                     "all", !after.empty() && after_ok.size() == after.size()))
      << statusHistogram(after);
}

TEST(ReplicaBreakerFaultTest, PerHostBreakerTakesOnlyTheFailingReplicaOutAndProbesBringItBack) {
  std::string error;
  std::vector<std::unique_ptr<Replica>> replicas;
  for (int i = 0; i < 3; ++i) {
    replicas.push_back(spawnRecommendation("rec-" + std::to_string(i), {}, &error));
    ASSERT_NE(replicas.back(), nullptr) << error;
  }
  auto yaml =
      recommendationConfig({replicas[0]->address(), replicas[1]->address(), replicas[2]->address()},
                           [](YAML::Node& root) {
                             root["upstreams"][0]["circuitBreaker"]["perHost"] = true;
                             root["upstreams"][0].remove("outlierDetection");
                           });
  auto proxy = BulwarkProcess::start(yaml, {kRecommendationListener}, &error);
  ASSERT_NE(proxy, nullptr) << error;
  const uint16_t admin = proxy->adminPort();
  Replica& bad = *replicas[1];
  auto state = [&] { return breakerState(admin, "recommendation", bad.address()); };

  OpenLoop load;
  load.start({loadOn(proxy->port(kRecommendationListener), 16000ms)});
  std::this_thread::sleep_until(load.startTime() + 1s);
  const auto broken_at = Clock::now();
  ASSERT_TRUE(bad.setFault(R"({"error_rate":1.0,"error_http_status":503})"));
  auto opened_at = waitForState(state, "open", broken_at + kWindow + 2s);
  ASSERT_TRUE(opened_at) << "host breaker never opened";
  auto health_open = hostHealth(admin, "recommendation", bad.address());
  std::this_thread::sleep_until(*opened_at + 2s);
  const auto healed_at = Clock::now();
  ASSERT_TRUE(bad.setFault("{}"));
  auto closed_at = waitForState(state, "closed", healed_at + kOpenDuration + 5s);
  auto samples = load.wait();

  auto while_open = select(samples, [&](const Sample& s) {
    return s.sent >= *opened_at + 50ms && s.sent < *opened_at + kOpenDuration - 50ms;
  });
  auto reached_bad = select(while_open, [&](const Sample& s) { return s.replica == bad.id; });
  auto failed = select(samples, [](const Sample& s) { return !s.served(); });
  auto before = select(samples, [&](const Sample& s) { return s.sent < broken_at; });
  auto after =
      select(samples, [&](const Sample& s) { return closed_at && s.sent >= *closed_at + 100ms; });
  auto after_bad = select(after, [&](const Sample& s) { return s.replica == bad.id; });
  std::printf("per-host breaker run: %zu requests, statuses: %s\n", samples.size(),
              statusHistogram(samples).c_str());
  const double open_ms = msBetween(broken_at, *opened_at);
  const double p99_before = percentileMs(latenciesMs(before), 99);
  const double p99_open = percentileMs(latenciesMs(while_open), 99);
  const double max_open = percentileMs(latenciesMs(while_open), 100);
  auto rejected = metricValue(admin, "bulwark_circuit_breaker_rejected_total",
                              {{"upstream", "recommendation"}});
  std::printf("host breaker refusals (picks moved to another host): %.0f\n", rejected.value_or(-1));
  EXPECT_TRUE(report("100 % errors on 1 of 3 -> its host breaker open", format("%.0f ms", open_ms),
                     "<= window (10000 ms)",
                     open_ms <= std::chrono::duration<double, std::milli>(kWindow).count()));
  EXPECT_TRUE(report("while open: host in /upstreams", health_open.value_or("?"), "circuit_open",
                     health_open == "circuit_open"));
  EXPECT_TRUE(report("while open: requests answered by the failing replica",
                     format("%zu of %zu", reached_bad.size(), while_open.size()), "0",
                     !while_open.empty() && reached_bad.empty()));
  // Nobody is sent to the open host, so nobody waits on it: clients see the latency they saw
  // before the fault (the other replicas' ordinary latency, which no fail-fast bound applies to).
  EXPECT_TRUE(report("while open: client p99 (max) vs before the fault p99",
                     format("%.2f (%.2f) vs %.2f ms", p99_open, max_open, p99_before),
                     format("<= 1.2x = %.2f ms", 1.2 * p99_before), p99_open <= 1.2 * p99_before));
  EXPECT_TRUE(report("client-visible errors over the run (retries hide the first)",
                     format("%zu of %zu", failed.size(), samples.size()), "0", failed.empty()))
      << statusHistogram(failed);
  EXPECT_TRUE(
      report("healed -> half-open probes close it",
             closed_at ? format("%.0f ms", msBetween(healed_at, *closed_at)) : std::string("never"),
             "<= openDuration + 5 s", closed_at.has_value()));
  EXPECT_TRUE(report("after close: share answered by the healed replica",
                     format("%zu of %zu", after_bad.size(), after.size()), "> 20 %",
                     !after.empty() && after_bad.size() * 5 > after.size()));
}

}  // namespace
}  // namespace bulwark::testing::fault
