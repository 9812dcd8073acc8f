// stats::Stats and RouteStats read back through their own Prometheus exposition, parsed strictly
// (tests/support/prometheus_text.h), so what is asserted is what a scrape would see.

#include "proxy/stats/stats.h"

#include <unistd.h>

#include <string>

#include <gtest/gtest.h>

#include "tests/support/prometheus_text.h"

namespace bulwark::stats {
namespace {

using bulwark::testing::Labels;
using bulwark::testing::PrometheusText;

/** One Stats registry, scraped as text. Thread: test. */
class StatsTest : public ::testing::Test {
protected:
  PrometheusText scrape() {
    std::string error;
    auto text = PrometheusText::parse(stats_.serialize(), &error);
    EXPECT_TRUE(text.has_value()) << error;
    return text.value_or(PrometheusText());
  }
  std::optional<double> value(std::string_view name, const Labels& labels = {}) {
    return scrape().value(name, labels);
  }

  Stats stats_{{0.01, 0.1, 1}};
};

TEST(CodeClassTest, StatusesMapToTheirClassAndNothingElseDoes) {
  EXPECT_EQ(codeClassIndex(0), 0u);
  EXPECT_EQ(codeClassIndex(99), 0u);
  EXPECT_EQ(codeClassIndex(100), 1u);
  EXPECT_EQ(codeClassIndex(204), 2u);
  EXPECT_EQ(codeClassIndex(308), 3u);
  EXPECT_EQ(codeClassIndex(499), 4u);
  EXPECT_EQ(codeClassIndex(599), 5u);
  EXPECT_EQ(codeClassIndex(600), 0u);
  EXPECT_STREQ(codeClassName(codeClassIndex(503)), "5xx");
  EXPECT_STREQ(codeClassName(0), "none");
}

TEST_F(StatsTest, RouteRequestsAreCountedPerCodeClassWithTheRoutesLabels) {
  auto route = stats_.routeStats("edge", "rank", "ranking");
  route->requests[codeClassIndex(503)]->Increment();
  route->requests[codeClassIndex(200)]->Increment(2);
  const Labels labels = {{"listener", "edge"}, {"route", "rank"}, {"upstream", "ranking"}};
  auto with = [&](std::string code_class) {
    Labels l = labels;
    l["code_class"] = std::move(code_class);
    l["grpc_status"] = "";
    return l;
  };
  EXPECT_EQ(value("bulwark_requests_total", with("5xx")), 1);
  EXPECT_EQ(value("bulwark_requests_total", with("2xx")), 2);
  EXPECT_EQ(value("bulwark_requests_total", with("4xx")), 0);
}

TEST_F(StatsTest, AttemptsAreCountedByKind) {
  auto route = stats_.routeStats("edge", "rank", "ranking");
  route->attempts_initial->Increment();
  route->attempts_retry->Increment(3);
  route->attempts_hedge->Increment(2);
  auto text = scrape();
  EXPECT_EQ(text.value("bulwark_upstream_attempts_total", {{"kind", "initial"}}), 1);
  EXPECT_EQ(text.value("bulwark_upstream_attempts_total", {{"kind", "retry"}}), 3);
  EXPECT_EQ(text.value("bulwark_upstream_attempts_total", {{"kind", "hedge"}}), 2);
}

TEST_F(StatsTest, GrpcStatusCountersAreMadeOncePerStatusName) {
  auto route = stats_.routeStats("edge", "rank", "ranking");
  auto& ok = route->grpcStatus("OK");
  EXPECT_EQ(&route->grpcStatus("OK"), &ok);
  EXPECT_NE(&route->grpcStatus("UNAVAILABLE"), &ok);
  ok.Increment();
  route->grpcStatus("UNAVAILABLE").Increment(4);
  EXPECT_EQ(value("bulwark_requests_total", {{"route", "rank"}, {"grpc_status", "OK"}}), 1);
  EXPECT_EQ(value("bulwark_requests_total", {{"route", "rank"}, {"grpc_status", "UNAVAILABLE"}}),
            4);
}

TEST_F(StatsTest, RareRouteEventsAreCountedByTheirLabels) {
  auto route = stats_.routeStats("edge", "rank", "ranking");
  route->retry("5xx").Increment();
  route->retry("5xx").Increment();
  route->retry("reset").Increment();
  route->hedge("won");
  route->retryLimitExceeded();
  route->retryBudgetExhausted();
  route->pushbackHonored();
  route->deadlineExceeded();
  route->streamIdleTimeout(true);
  route->streamIdleTimeout(false);
  route->streamIdleTimeout(false);
  auto text = scrape();
  const Labels route_labels = {{"route", "rank"}, {"upstream", "ranking"}};
  EXPECT_EQ(text.value("bulwark_retries_total", {{"reason", "5xx"}}), 2);
  EXPECT_EQ(text.value("bulwark_retries_total", {{"reason", "reset"}}), 1);
  EXPECT_EQ(text.value("bulwark_hedges_total", {{"result", "won"}}), 1);
  EXPECT_EQ(text.value("bulwark_retry_limit_exceeded_total", route_labels), 1);
  EXPECT_EQ(text.value("bulwark_retry_budget_exhausted_total", route_labels), 1);
  EXPECT_EQ(text.value("bulwark_retry_pushback_honored_total", route_labels), 1);
  EXPECT_EQ(text.value("bulwark_deadline_exceeded_total", route_labels), 1);
  EXPECT_EQ(text.value("bulwark_stream_idle_timeouts_total", {{"action", "reset"}}), 1);
  EXPECT_EQ(text.value("bulwark_stream_idle_timeouts_total", {{"action", "504"}}), 2);
}

TEST_F(StatsTest, DurationsLandInTheConfiguredBuckets) {
  auto route = stats_.routeStats("edge", "rank", "ranking");
  route->duration[2]->observe(0.05);
  auto text = scrape();
  const Labels labels = {{"route", "rank"}, {"code_class", "2xx"}};
  auto bucket = [&](std::string le) {
    Labels l = labels;
    l["le"] = std::move(le);
    return text.value("bulwark_request_duration_seconds_bucket", l);
  };
  EXPECT_EQ(bucket("0.01"), 0);
  EXPECT_EQ(bucket("0.1"), 1);
  EXPECT_EQ(bucket("1"), 1);
  EXPECT_EQ(bucket("+Inf"), 1);
}

TEST_F(StatsTest, ServerStateIsOneOfThree) {
  auto text = scrape();
  EXPECT_EQ(text.value("bulwark_server_state", {{"state", "initializing"}}), 1);
  stats_.setServerState("draining");
  text = scrape();
  EXPECT_EQ(text.value("bulwark_server_state", {{"state", "initializing"}}), 0);
  EXPECT_EQ(text.value("bulwark_server_state", {{"state", "live"}}), 0);
  EXPECT_EQ(text.value("bulwark_server_state", {{"state", "draining"}}), 1);
}

TEST_F(StatsTest, ListenerAndReloadCountersKeepTheirOwnLabels) {
  stats_.localReply("rank", "circuit_open").Increment();
  stats_.protocolError("edge", "http1.bare_lf").Increment();
  stats_.fallback("rank", "timeout").Increment();
  stats_.downstreamConnectionsActive("edge").Increment();
  stats_.configReload("success").Increment();
  stats_.configReloadFailures().Increment();
  auto text = scrape();
  EXPECT_EQ(
      text.value("bulwark_local_replies_total", {{"route", "rank"}, {"reason", "circuit_open"}}),
      1);
  EXPECT_EQ(text.value("bulwark_downstream_protocol_errors_total", {{"reason", "http1.bare_lf"}}),
            1);
  EXPECT_EQ(text.value("bulwark_fallback_responses_total", {{"trigger", "timeout"}}), 1);
  EXPECT_EQ(text.value("bulwark_downstream_connections_active", {{"listener", "edge"}}), 1);
  EXPECT_EQ(text.value("bulwark_config_reloads_total", {{"result", "success"}}), 1);
  EXPECT_EQ(text.value("bulwark_config_reload_failures_total"), 1);
}

TEST_F(StatsTest, OpenFileDescriptorsAreCountedAtScrapeTime) {
  const double before = value("process_open_fds").value_or(-1);
  ASSERT_GT(before, 0);
  int fds[2][2];
  ASSERT_EQ(::pipe(fds[0]), 0);
  ASSERT_EQ(::pipe(fds[1]), 0);
  const double after = value("process_open_fds").value_or(-1);
  for (auto& pair : fds) {
    ::close(pair[0]);
    ::close(pair[1]);
  }
  EXPECT_EQ(after - before, 4);
  EXPECT_GT(value("process_resident_memory_bytes").value_or(0), 0);
  EXPECT_GT(value("process_start_time_seconds").value_or(0), 1.0e9);
}

}  // namespace
}  // namespace bulwark::stats
