// The admin listener of the real bulwark binary: /live, /ready (with its list of checks),
// /metrics (Prometheus text counting proxied traffic), /config (effective config as JSON),
// /upstreams (hosts and their counters), and that mutating endpoints need POST.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/http1_client.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

class AdminTest : public ::testing::Test {
protected:
  void SetUp() override {
    upstream_ =
        FakeUpstream::start(FakeUpstreamOptions().withProtocol(Protocol::Http1).withName("a"));
    ASSERT_TRUE(upstream_);
    upstream_->script().otherwise(respond(200, {}, "ok"));
    std::string error;
    proxy_ = BulwarkProcess::start(simpleConfig("http1", "http1", {upstream_->address()}),
                                   {"public"}, &error);
    ASSERT_TRUE(proxy_) << error;
  }

  void sendRequests(int n) {
    Http1Client client(proxy_->port("public"));
    for (int i = 0; i < n; ++i) {
      auto r = client.get("/item/" + std::to_string(i));
      ASSERT_TRUE(r) << client.lastError();
      ASSERT_EQ(200, r->status);
    }
  }

  std::unique_ptr<FakeUpstream> upstream_;
  std::unique_ptr<BulwarkProcess> proxy_;
};

TEST_F(AdminTest, LiveAnswers200) {
  auto r = adminGet(proxy_->adminPort(), "/live");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(200, r.status);
  EXPECT_EQ("live\n", r.body);
}

TEST_F(AdminTest, ReadyAnswers200AndListsEachCheck) {
  auto r = adminGet(proxy_->adminPort(), "/ready");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(200, r.status) << r.body;
  EXPECT_NE(std::string::npos, r.body.find("[+] config applied")) << r.body;
  EXPECT_NE(std::string::npos, r.body.find("[+] listeners bound")) << r.body;
  EXPECT_NE(std::string::npos, r.body.find("[+] not draining")) << r.body;
}

TEST_F(AdminTest, MetricsCountProxiedRequestsInPrometheusText) {
  ASSERT_NO_FATAL_FAILURE(sendRequests(3));
  // The counter is bumped when the stream completes, which may trail the response on the wire.
  EXPECT_TRUE(waitForMetric(
      proxy_->adminPort(), "bulwark_requests_total", {{"route", "all"}, {"code_class", "2xx"}},
      [](double v) { return v == 3; }, deadlineIn(2s)));

  auto r = adminGet(proxy_->adminPort(), "/metrics");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(200, r.status);
  auto content_type = findHeader(r.headers, "content-type");
  ASSERT_TRUE(content_type);
  EXPECT_NE(std::string::npos, content_type->find("text/plain"));
  std::string parse_error;
  auto metrics = PrometheusText::parse(r.body, &parse_error);
  ASSERT_TRUE(metrics) << parse_error;
  EXPECT_EQ(3, metrics->sum("bulwark_requests_total",
                            {{"listener", "public"}, {"route", "all"}, {"upstream", "backend"}}));
  EXPECT_EQ(0, metrics->sum("bulwark_requests_total", {{"code_class", "5xx"}}));
  EXPECT_EQ(1, metrics->value("bulwark_server_state", {{"state", "live"}}));
  EXPECT_EQ(0, metrics->value("bulwark_server_state", {{"state", "draining"}}));
  EXPECT_GE(metrics->sum("bulwark_downstream_connections_total", {{"listener", "public"}}), 1);
  EXPECT_EQ(3, metrics->sum("bulwark_request_duration_seconds_count", {{"route", "all"}}));
  EXPECT_EQ(0, metrics->value("bulwark_config_reload_failures_total"));
  EXPECT_EQ(1, metrics->value("bulwark_config_last_reload_successful"));
  EXPECT_TRUE(metrics->has("bulwark_build_info"));
  EXPECT_GT(metrics->value("process_resident_memory_bytes").value_or(0), 0);
}

TEST_F(AdminTest, ConfigIsTheEffectiveConfigAsJson) {
  auto r = adminGet(proxy_->adminPort(), "/config");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(200, r.status);
  EXPECT_EQ("application/json", findHeader(r.headers, "content-type").value_or(""));
  auto json = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(json.is_discarded()) << r.body;
  EXPECT_EQ("bulwark.dev/v1alpha1", json.value("apiVersion", ""));
  EXPECT_EQ("ProxyConfig", json.value("kind", ""));
  ASSERT_TRUE(json["listeners"].is_array());
  ASSERT_EQ(1u, json["listeners"].size());
  EXPECT_EQ("public", json["listeners"][0].value("name", ""));
  ASSERT_EQ(1u, json["upstreams"].size());
  EXPECT_EQ("backend", json["upstreams"][0].value("name", ""));
  EXPECT_EQ(upstream_->address(),
            json["upstreams"][0]["endpoints"]["static"][0].value("address", ""));
  ASSERT_EQ(1u, json["routes"].size());
  EXPECT_EQ("all", json["routes"][0].value("name", ""));
  // Defaults are filled in: the effective config, not the file.
  EXPECT_TRUE(json["runtime"].contains("drain")) << json["runtime"].dump();
}

TEST_F(AdminTest, UpstreamsListsHostsWithCounters) {
  ASSERT_NO_FATAL_FAILURE(sendRequests(2));
  auto r = adminGet(proxy_->adminPort(), "/upstreams");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(200, r.status);
  auto json = nlohmann::json::parse(r.body, nullptr, /*allow_exceptions=*/false);
  ASSERT_FALSE(json.is_discarded()) << r.body;
  ASSERT_TRUE(json.is_array()) << r.body;
  ASSERT_EQ(1u, json.size()) << r.body;
  const auto& backend = json[0];
  EXPECT_EQ("backend", backend.value("name", ""));
  EXPECT_EQ(2u, backend.value("requestsTotal", uint64_t{0})) << r.body;
  ASSERT_EQ(1u, backend["hosts"].size()) << r.body;
  const auto& host = backend["hosts"][0];
  EXPECT_EQ(upstream_->address(), host.value("address", ""));
  EXPECT_EQ(2u, host.value("requestsTotal", uint64_t{0})) << r.body;
  EXPECT_EQ(0u, host.value("errorsTotal", uint64_t{1})) << r.body;
  EXPECT_EQ(0u, host.value("activeRequests", uint64_t{1})) << r.body;
}

TEST_F(AdminTest, UnknownPathIs404) {
  auto r = adminGet(proxy_->adminPort(), "/no-such-endpoint");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(404, r.status);
  auto p = adminPost(proxy_->adminPort(), "/no-such-endpoint");
  ASSERT_TRUE(p.ok) << p.error;
  EXPECT_EQ(404, p.status);
}

// Mutating endpoints are POST only: a GET (a crawler, a misrouted probe) must not drain.
TEST_F(AdminTest, GetDrainDoesNotDrain) {
  auto r = adminGet(proxy_->adminPort(), "/drain");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_NE(200, r.status);
  auto ready = adminGet(proxy_->adminPort(), "/ready");
  ASSERT_TRUE(ready.ok) << ready.error;
  EXPECT_EQ(200, ready.status) << ready.body;
  ASSERT_NO_FATAL_FAILURE(sendRequests(1));
}

// POST /drain and /reload answer only to loopback peers. Proving the refusal needs a
// connection from a non-loopback address, i.e. binding the admin port on a routable
// interface, which these loopback-only tests do not do; the loopback side is covered by
// LifecycleTest (POST /drain, POST /reload).

}  // namespace
}  // namespace bulwark::testing
