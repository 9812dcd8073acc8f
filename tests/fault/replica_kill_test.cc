// Labelled fault run (ctest -L fault): three recommendation-server
// replicas behind bulwark with examples/recommendation/bulwark.yaml's policy as shipped
// (retries on reset / connect-failure / 5xx within a budget, outlier detection, health checks,
// breaker, fallback), 500 req/s open loop; one replica is kill -9'd mid-run.
// Bounds: client-visible errors < 0.1 % of the run, and the dead host out of rotation
// (/upstreams health no longer "healthy") within 1 s of the kill.

#include <signal.h>

#include <algorithm>
#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "tests/fault/support/backends.h"
#include "tests/fault/support/open_loop.h"
#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"

namespace bulwark::testing::fault {
namespace {

using namespace std::chrono_literals;

TEST(ReplicaKillFaultTest, KilledReplicaIsEjectedWithinOneSecondAndClientsSeeNoErrors) {
  constexpr double kRate = 500;
  constexpr auto kDuration = 6s;
  constexpr auto kKillAt = 2s;
  std::string error;
  std::vector<std::unique_ptr<Replica>> replicas;
  for (int i = 0; i < 3; ++i) {
    replicas.push_back(spawnRecommendation("rec-" + std::to_string(i), {}, &error));
    ASSERT_NE(replicas.back(), nullptr) << error;
  }
  auto proxy =
      BulwarkProcess::start(recommendationConfig({replicas[0]->address(), replicas[1]->address(),
                                                  replicas[2]->address()}),
                            {kRecommendationListener}, &error);
  ASSERT_NE(proxy, nullptr) << error;
  const uint16_t admin = proxy->adminPort();
  const std::string victim = replicas[2]->address();

  OpenLoop load;
  OpenLoopOptions options;
  options.port = proxy->port(kRecommendationListener);
  options.rate = kRate;
  options.duration = kDuration;
  options.threads = 16;
  options.request = [](uint64_t i) { return recommendRequest(i % 2 == 0 ? "demo" : "tenantA", i); };
  load.start({options});

  // Kill at kKillAt, then watch /upstreams until the host leaves rotation.
  std::this_thread::sleep_until(load.startTime() + kKillAt);
  const auto killed_at = Clock::now();
  ASSERT_TRUE(replicas[2]->process->kill());
  std::string state = "healthy";
  Clock::time_point out_at{};
  waitFor(
      [&] {
        auto health = hostHealth(admin, "recommendation", victim);
        if (health && *health != "healthy") {
          state = *health;
          out_at = Clock::now();
          return true;
        }
        return false;
      },
      killed_at + 3s);
  auto samples = load.wait();

  const double ejection_ms =
      out_at == Clock::time_point{}
          ? -1
          : std::chrono::duration<double, std::milli>(out_at - killed_at).count();
  auto failed = select(samples, [](const Sample& s) { return !s.served(); });
  const double error_pct =
      100.0 * static_cast<double>(failed.size()) / static_cast<double>(samples.size());
  const auto after_kill = select(samples, [&](const Sample& s) { return s.intended >= killed_at; });
  std::printf("kill -9 run: %zu requests at %.0f req/s (%.0f s), statuses: %s\n", samples.size(),
              sendRate(samples), std::chrono::duration<double>(kDuration).count(),
              statusHistogram(samples).c_str());
  std::printf("latency after the kill: p50 %.2f ms, p99 %.2f ms, max %.2f ms\n",
              percentileMs(latenciesMs(after_kill), 50), percentileMs(latenciesMs(after_kill), 99),
              percentileMs(latenciesMs(after_kill), 100));
  // The slowest answers, to tell a stall in bulwark from a late sender.
  auto slowest = samples;
  std::sort(slowest.begin(), slowest.end(),
            [](const Sample& x, const Sample& y) { return x.serviceTime() > y.serviceTime(); });
  for (size_t i = 0; i < std::min<size_t>(5, slowest.size()); ++i) {
    const auto& s = slowest[i];
    std::printf("slow: sent %+.0f ms from the kill (%.1f ms late), service %.1f ms, status %d %s\n",
                std::chrono::duration<double, std::milli>(s.sent - killed_at).count(),
                std::chrono::duration<double, std::milli>(s.sent - s.intended).count(),
                std::chrono::duration<double, std::milli>(s.serviceTime()).count(), s.status,
                s.replica.c_str());
  }
  auto metrics = fetchMetrics(admin);
  std::optional<double> ejections;
  if (metrics) {
    ejections = metrics->sum("bulwark_outlier_ejections_total", {{"upstream", "recommendation"}});
  }
  auto retries = metricValue(admin, "bulwark_upstream_attempts_total",
                             {{"route", "recommendations"}, {"kind", "retry"}});
  std::printf("outlier ejections %.0f, retries %.0f\n", ejections.value_or(-1),
              retries.value_or(-1));

  EXPECT_TRUE(report("offered rate (open loop)", format("%.0f req/s", sendRate(samples)),
                     ">= 450 req/s", sendRate(samples) >= 0.9 * kRate));
  EXPECT_TRUE(report("client-visible errors (non-2xx, degraded, no answer)",
                     format("%zu of %zu = %.3f %%", failed.size(), samples.size(), error_pct),
                     "< 0.1 %", error_pct < 0.1))
      << statusHistogram(failed);
  EXPECT_TRUE(report("kill -9 -> dead host out of rotation (/upstreams)",
                     ejection_ms < 0 ? std::string("never (3 s)")
                                     : format("%.0f ms (%s)", ejection_ms, state.c_str()),
                     "<= 1000 ms", ejection_ms >= 0 && ejection_ms <= 1000));
}

}  // namespace
}  // namespace bulwark::testing::fault
