// What /config shows is what is in force: a reload changing a field the process reads only at
// start is refused with the field named and both values, and command-line overrides show in
// /config. (tests/unit/proxy/server/reload_policy_test.cc walks every field of the table.)

#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"
#include "tests/support/fake_upstream.h"

namespace bulwark::testing {
namespace {

std::string configWith(const FakeUpstream& up, int workers, const std::string& top = "") {
  return ConfigBuilder()
      .concurrency(workers)
      .topLevel(top)
      .listener("http1")
      .upstream("http1", {up.address()})
      .route()
      .yaml();
}

nlohmann::json effective(const BulwarkProcess& proxy) {
  return nlohmann::json::parse(adminGet(proxy.adminPort(), "/config").body, nullptr, false);
}

TEST(ReloadHonestyTest, RestartOnlyFieldsAreRefusedByName) {
  FakeUpstream up(Protocol::Http1);
  auto proxy = startBulwark(configWith(up, 2));
  ASSERT_TRUE(proxy);

  proxy->rewriteConfig(configWith(up, 3));
  auto refused = adminPost(proxy->adminPort(), "/reload");
  EXPECT_EQ(400, refused.status);
  EXPECT_NE(std::string::npos,
            refused.body.find("runtime.concurrency (2 -> 3): takes effect only on restart"))
      << refused.body;
  EXPECT_EQ(2, effective(*proxy)["runtime"]["concurrency"]);

  proxy->rewriteConfig(
      configWith(up, 2, "observability:\n  metrics: {latencyBuckets: [0.1, 1]}\n"));
  refused = adminPost(proxy->adminPort(), "/reload");
  EXPECT_EQ(400, refused.status);
  EXPECT_NE(std::string::npos, refused.body.find("observability.metrics.latencyBuckets ("))
      << refused.body;
  EXPECT_EQ(14u, effective(*proxy)["observability"]["metrics"]["latencyBuckets"].size());

  // A field a reload can apply still applies alongside.
  proxy->rewriteConfig(configWith(up, 2, "observability:\n  metrics: {path: /stats}\n"));
  auto applied = adminPost(proxy->adminPort(), "/reload");
  EXPECT_EQ(200, applied.status) << applied.body;
  EXPECT_EQ("/stats", effective(*proxy)["observability"]["metrics"]["path"]);
  EXPECT_EQ(200, adminGet(proxy->adminPort(), "/stats").status);
}

TEST(ReloadHonestyTest, CommandLineConcurrencyShowsInConfigAndSurvivesReload) {
  FakeUpstream up(Protocol::Http1);
  BulwarkStartOptions options;
  options.extra_args = {"--concurrency", "3"};
  auto proxy = startBulwark(configWith(up, 2), options);
  ASSERT_TRUE(proxy);
  EXPECT_EQ(3, effective(*proxy)["runtime"]["concurrency"]);
  // The file still says 2; the flag keeps winning, so this reload changes nothing restart-only.
  auto reload = adminPost(proxy->adminPort(), "/reload");
  EXPECT_EQ(200, reload.status) << reload.body;
  EXPECT_EQ(3, effective(*proxy)["runtime"]["concurrency"]);
}

}  // namespace
}  // namespace bulwark::testing
