// The admin listener of the real bulwark binary: /live, /ready (with its list of checks),
// /metrics (Prometheus text counting proxied traffic), /config (effective config as JSON),
// /upstreams (hosts and their counters), and that mutating endpoints need POST.

#include <arpa/inet.h>
#include <net/if.h>
#include <netinet/in.h>

#include <optional>

#include <gtest/gtest.h>
#include <ifaddrs.h>
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
    // The route sets no policy block: it inherits retries from `defaults` and gets the built-in
    // timeouts; nothing else is set that /config reports below.
    proxy_ = startBulwark(simpleConfig("http1", "http1", {upstream_->address()}, "", "",
                                       "defaults:\n  retries: {attempts: 3, retryOn: [5xx]}\n"));
    ASSERT_TRUE(proxy_);
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

// Envoy's /logging: the level is read with GET and changed with a loopback POST, at once.
TEST_F(AdminTest, LoggingLevelChangesAtRunTime) {
  EXPECT_EQ("level: warning\n", adminGet(proxy_->adminPort(), "/logging").body);
  auto set = adminPost(proxy_->adminPort(), "/logging?level=debug");
  EXPECT_EQ(200, set.status) << set.body;
  EXPECT_EQ("level: debug\n", adminGet(proxy_->adminPort(), "/logging").body);
  EXPECT_EQ(400, adminPost(proxy_->adminPort(), "/logging?level=loud").status);
  EXPECT_EQ(400, adminPost(proxy_->adminPort(), "/logging").status);
  EXPECT_EQ("level: debug\n", adminGet(proxy_->adminPort(), "/logging").body);
  ASSERT_EQ(200, adminPost(proxy_->adminPort(), "/logging?level=warn").status);
  EXPECT_EQ("level: warning\n", adminGet(proxy_->adminPort(), "/logging").body);
}

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
  // The binary runs on the allocator this build chose (jemalloc unless told otherwise).
  EXPECT_EQ(1, metrics->value("bulwark_build_info", {{"allocator", BULWARK_EXPECTED_ALLOCATOR}}));
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
  const auto& route = json["routes"][0];
  EXPECT_EQ("all", route.value("name", ""));
  // The effective config, not the file: built-in defaults the file does not set...
  EXPECT_EQ(true, json["runtime"]["drain"]["exitOnZeroActive"]) << json["runtime"].dump();
  EXPECT_EQ(1024, json["upstreams"][0]["connectionPool"]["tcp"]["maxConnections"]);
  EXPECT_EQ(100, json["listeners"][0]["limits"]["maxHeadersCount"]);
  EXPECT_EQ("15s", route["timeouts"]["request"]) << route.dump();
  // ...and the retries block the route inherits from `defaults`, with that block's own defaults.
  ASSERT_TRUE(route.contains("retries")) << route.dump();
  EXPECT_EQ(3, route["retries"]["attempts"]) << route.dump();
  EXPECT_EQ(nlohmann::json::array({"5xx"}), route["retries"]["retryOn"]) << route.dump();
  EXPECT_EQ("never", route["retries"]["nonIdempotent"]) << route.dump();
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

/** An address of this host on a non-loopback interface that is up, or "" when there is none. */
std::string nonLoopbackAddress() {
  ifaddrs* list = nullptr;
  if (::getifaddrs(&list) != 0) {
    return "";
  }
  std::string found;
  for (ifaddrs* i = list; i != nullptr && found.empty(); i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET ||
        (i->ifa_flags & IFF_UP) == 0 || (i->ifa_flags & IFF_LOOPBACK) != 0) {
      continue;
    }
    char text[INET_ADDRSTRLEN] = {};
    ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, text,
                sizeof(text));
    found = text;
  }
  ::freeifaddrs(list);
  return found;
}

/** POST `path` to the admin at host:port from the local address `source`. */
std::optional<Http1Response> postFrom(const std::string& source, const std::string& host,
                                      uint16_t port, const std::string& path) {
  Http1Client client(host, port);
  client.setSourceAddress(source);
  auto r = client.request(http1Request("POST", path), deadlineIn(3s));
  EXPECT_TRUE(r) << "POST " << path << " from " << source << ": " << client.lastError();
  return r;
}

// POST /drain and /reload answer only to loopback peers, whatever address the admin listens on.
// The admin listens on every address; a peer connecting from another loopback address
// (127.0.0.2) is let through, one connecting from this host's own non-loopback address is
// refused with 403 and nothing happens. Both connections stay inside this host's kernel.
TEST(AdminLoopbackTest, MutatingEndpointsRefuseANonLoopbackPeer) {
  const std::string outside = nonLoopbackAddress();
  if (outside.empty()) {
    GTEST_SKIP() << "this host has no non-loopback IPv4 address to connect from";
  }
  auto upstream = FakeUpstream::start(Protocol::Http1);
  auto proxy = startBulwark(ConfigBuilder()
                                .adminAddress("0.0.0.0:0")
                                .listener("http1")
                                .upstream("http1", {upstream->address()})
                                .route()
                                .yaml());
  ASSERT_TRUE(proxy);
  const uint16_t admin = proxy->adminPort();

  // Reading is allowed from anywhere the admin listens.
  Http1Client reader(outside, admin);
  reader.setSourceAddress(outside);
  auto live = reader.get("/live", {}, deadlineIn(3s));
  ASSERT_TRUE(live) << reader.lastError();
  EXPECT_EQ(200, live->status);

  for (const char* path : {"/reload", "/drain"}) {
    auto refused = postFrom(outside, outside, admin, path);
    ASSERT_TRUE(refused);
    EXPECT_EQ(403, refused->status) << path << ": " << refused->body;
  }
  EXPECT_EQ(
      0, metricValue(admin, "bulwark_config_reloads_total", {{"result", "success"}}).value_or(0));
  EXPECT_EQ(200, adminGet(admin, "/ready").status) << "a refused POST /drain started a drain";

  // Another loopback address is loopback: the reload applies, the drain drains.
  auto reload = postFrom("127.0.0.2", "127.0.0.1", admin, "/reload");
  ASSERT_TRUE(reload);
  EXPECT_EQ(200, reload->status) << reload->body;
  EXPECT_TRUE(waitForMetric(
      admin, "bulwark_config_reloads_total", {{"result", "success"}},
      [](double v) { return v == 1; }, deadlineIn(2s)));
  auto drain = postFrom("127.0.0.2", "127.0.0.1", admin, "/drain");
  ASSERT_TRUE(drain);
  EXPECT_EQ(200, drain->status) << drain->body;
  EXPECT_EQ(0, proxy->waitForExit(10s)) << "POST /drain from 127.0.0.2 did not drain";
}

}  // namespace
}  // namespace bulwark::testing
