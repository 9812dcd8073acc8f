// runtime.watchConfig through the real binary: an edited file is reloaded without a signal, an
// invalid one is counted as a failed reload while the old config keeps serving, and a file in a
// Kubernetes ConfigMap volume layout ("..data" symlink swapped atomically) is followed by
// default.

#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <string>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/http1_client.h"
#include "tests/support/wait.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

std::string configFor(const FakeUpstream& up, const std::string& runtime_extra) {
  ConfigBuilder builder;
  if (!runtime_extra.empty()) {
    builder.runtimeExtra(runtime_extra);
  }
  return builder.listener("http1")
      .upstream("http1", {up.address()}, "", up.options().name)
      .route("", "/", "all", up.options().name)
      .yaml();
}

bool reloadsReach(const BulwarkProcess& proxy, const std::string& result, double count) {
  return waitForMetric(
      proxy.adminPort(), "bulwark_config_reloads_total", {{"result", result}},
      [count](double v) { return v == count; }, deadlineIn(5s));
}

std::string servedBy(const BulwarkProcess& proxy) {
  Http1Client client(proxy.port("public"));
  auto r = client.get("/who", {}, deadlineIn(5s));
  return r ? r->header("x-upstream-name").value_or("") : "no answer: " + client.lastError();
}

bool watching(const BulwarkProcess& proxy) {
  auto config = nlohmann::json::parse(adminGet(proxy.adminPort(), "/config").body, nullptr, false);
  return config.is_object() && config["runtime"].value("watchConfig", false);
}

TEST(ConfigWatchTest, AnEditedFileIsReloadedAndABadOneKeepsTheOldConfig) {
  FakeUpstream a(FakeUpstreamOptions().withName("a"));
  FakeUpstream b(FakeUpstreamOptions().withName("b"));
  auto proxy = startBulwark(configFor(a, "watchConfig: true"));
  ASSERT_TRUE(proxy);
  EXPECT_TRUE(watching(*proxy));
  EXPECT_EQ("a", servedBy(*proxy));

  proxy->rewriteConfig(configFor(b, "watchConfig: true"));
  ASSERT_TRUE(reloadsReach(*proxy, "success", 1));
  EXPECT_EQ("b", servedBy(*proxy));

  proxy->rewriteConfig("listeners: [oops\n");
  ASSERT_TRUE(reloadsReach(*proxy, "failure", 1));
  EXPECT_EQ("b", servedBy(*proxy));
  EXPECT_EQ(0, metricValue(proxy->adminPort(), "bulwark_config_last_reload_successful"));
}

// The layout kubelet writes: the file is a symlink through "..data", which points at a
// timestamped directory; an update writes a new directory and renames a new "..data" over the
// old one.
TEST(ConfigWatchTest, AConfigMapVolumeIsFollowedByDefault) {
  FakeUpstream a(FakeUpstreamOptions().withName("a"));
  FakeUpstream b(FakeUpstreamOptions().withName("b"));
  namespace fs = std::filesystem;
  fs::path volume = fs::path(writeTempFile("volume-marker", "")).parent_path() / "configmap";
  fs::remove_all(volume);
  fs::create_directories(volume / "..2026_12_06_1");
  std::ofstream(volume / "..2026_12_06_1" / "bulwark.yaml") << configFor(a, "");
  fs::create_directory_symlink("..2026_12_06_1", volume / "..data");
  fs::create_symlink("..data/bulwark.yaml", volume / "bulwark.yaml");

  BulwarkStartOptions options;
  options.config_flag = false;
  options.env = {{"BULWARK_CONFIG", (volume / "bulwark.yaml").string()}};
  auto proxy = startBulwark(configFor(a, ""), options);
  ASSERT_TRUE(proxy);
  EXPECT_TRUE(watching(*proxy));
  EXPECT_EQ("a", servedBy(*proxy));

  fs::create_directories(volume / "..2026_12_06_2");
  std::ofstream(volume / "..2026_12_06_2" / "bulwark.yaml") << configFor(b, "");
  fs::create_directory_symlink("..2026_12_06_2", volume / "..data_tmp");
  fs::rename(volume / "..data_tmp", volume / "..data");
  ASSERT_TRUE(reloadsReach(*proxy, "success", 1));
  EXPECT_EQ("b", servedBy(*proxy));
}

TEST(ConfigWatchTest, APlainFileIsNotWatchedUnlessAsked) {
  FakeUpstream a(FakeUpstreamOptions().withName("a"));
  auto proxy = startBulwark(configFor(a, ""));
  ASSERT_TRUE(proxy);
  EXPECT_FALSE(watching(*proxy));
}

}  // namespace
}  // namespace bulwark::testing
