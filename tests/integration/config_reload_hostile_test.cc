// Config files that used to terminate bulwark (an exception out of the loader, a stack overflow
// in number scanning, a JSON dump of bytes that are not UTF-8): `bulwark check` exits 1 with a
// diagnostic instead of aborting, and a running proxy that gets one by SIGHUP or POST /reload
// rejects it, counts the failure and keeps serving its old config.

#include <signal.h>

#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/http1_client.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

/** One hostile value, where it goes in simpleConfig, and the field the diagnostic names. */
struct HostileConfig {
  std::string what;
  std::string route_extra;
  std::string top_extra;
  std::string field_path;
};

std::vector<HostileConfig> hostileConfigs() {
  return {
      {"duration fraction underflowing a double (std::stod threw)",
       "  timeouts: {request: 0." + std::string(400, '0') + "1s}\n", "",
       "routes[0].timeouts.request"},
      {"duration fraction overflowing a double (std::stod threw)",
       "  timeouts: {request: " + std::string(400, '9') + ".5s}\n", "",
       "routes[0].timeouts.request"},
      {"duration parts overflowing int64",
       "  timeouts: {request: 999999999999h999999999999h999999999999h}\n", "",
       "routes[0].timeouts.request"},
      {"40000-digit integer (std::regex stack overflow)",
       "  retries: {attempts: 1" + std::string(40000, '0') + "}\n", "",
       "routes[0].retries.attempts"},
      {"40000-digit number (std::regex stack overflow)", "",
       "observability: {accessLog: {sample: 5." + std::string(40000, '5') + "}}\n",
       "observability.accessLog.sample"},
      {"duration too large to print back", "  timeouts: {request: 99999h99999m}\n", "",
       "routes[0].timeouts.request"},
  };
}

/** `text` as a regular expression that matches exactly it. */
std::string literalPattern(const std::string& text) {
  std::string pattern;
  for (char c : text) {
    if (std::string_view("\\^$.|?*+()[]{}").find(c) != std::string_view::npos) {
      pattern += '\\';
    }
    pattern += c;
  }
  return pattern;
}

/**
 * `bulwark check -c path`: the exit code (nullopt if it did not exit normally) and whether it
 * printed `expected` (waited for, since the output is read on another thread).
 */
std::optional<int> runCheck(const std::string& path, bool json, const std::string& expected,
                            bool* printed, std::string* output) {
  ProcessOptions options;
  options.path = bulwarkBinary();
  options.args = {"check", "-c", path};
  if (json) {
    options.args.insert(options.args.end(), {"--output", "json"});
  }
  std::string error;
  auto child = ChildProcess::spawn(options, &error);
  if (!child) {
    *output = error;
    return std::nullopt;
  }
  *printed = child->waitForLine(literalPattern(expected), deadlineIn(10s)).has_value();
  auto status = child->waitForExit(deadlineIn(10s));
  *output = child->output();
  if (!status || !status->exited) {
    return std::nullopt;
  }
  return status->code;
}

// Each file is invalid, and `bulwark check` says where, in text and JSON, instead of aborting.
TEST(ConfigReloadHostileTest, CheckReportsEachFileInsteadOfAborting) {
  int i = 0;
  for (const HostileConfig& c : hostileConfigs()) {
    const std::string path = writeTempFile(
        "hostile-" + std::to_string(i++) + ".yaml",
        simpleConfig("http1", "http1", {"127.0.0.1:9"}, c.route_extra, "", c.top_extra));
    for (const bool json : {false, true}) {
      std::string output;
      bool printed = false;
      auto code = runCheck(path, json, c.field_path, &printed, &output);
      ASSERT_TRUE(code.has_value()) << c.what << ": check did not exit normally\n"
                                    << output.substr(0, 2000);
      EXPECT_EQ(1, *code) << c.what << "\n" << output.substr(0, 2000);
      EXPECT_TRUE(printed) << c.what << "\n" << output.substr(0, 2000);
    }
  }
  // Bytes that are not UTF-8 in a field name: the JSON report replaces them.
  const std::string not_utf8 = writeTempFile(
      "not-utf8.yaml", simpleConfig("http1", "http1", {"127.0.0.1:9"}, "  upstrea\x80: x\n"));
  std::string output;
  bool printed = false;
  auto code = runCheck(not_utf8, true, "upstrea\xEF\xBF\xBD", &printed, &output);
  ASSERT_TRUE(code.has_value()) << output;
  EXPECT_EQ(1, *code) << output;
  EXPECT_TRUE(printed) << output;
}

// A running bulwark gets each file by SIGHUP (and the last by POST /reload): every reload is
// rejected and counted, the process keeps running, and requests keep going to the old upstream.
// Then a valid file that holds bytes that are not UTF-8 applies, and /config still answers.
TEST(ConfigReloadHostileTest, ReloadKeepsTheOldConfigServing) {
  auto a = FakeUpstream::start(FakeUpstreamOptions().withName("a"));
  auto b = FakeUpstream::start(FakeUpstreamOptions().withName("b"));
  ASSERT_TRUE(a && b);
  std::string error;
  auto proxy =
      BulwarkProcess::start(simpleConfig("http1", "http1", {a->address()}), {"public"}, &error);
  ASSERT_TRUE(proxy) << error;
  const uint16_t admin = proxy->adminPort();
  Http1Client client(proxy->port("public"));
  ASSERT_TRUE(client.get("/before")) << client.lastError();

  const std::vector<HostileConfig> configs = hostileConfigs();
  for (size_t i = 0; i < configs.size(); ++i) {
    const HostileConfig& c = configs[i];
    proxy->rewriteConfig(
        simpleConfig("http1", "http1", {b->address()}, c.route_extra, "", c.top_extra));
    if (i + 1 < configs.size()) {
      ASSERT_TRUE(proxy->process().signal(SIGHUP)) << c.what << ": bulwark is gone\n"
                                                   << proxy->process().output().substr(0, 4000);
    } else {
      auto r = adminPost(admin, "/reload");
      ASSERT_TRUE(r.ok) << c.what << ": " << r.error;
      EXPECT_EQ(400, r.status) << r.body.substr(0, 2000);
      EXPECT_NE(std::string::npos, r.body.find(c.field_path)) << r.body.substr(0, 2000);
    }
    const double failures = static_cast<double>(i + 1);
    ASSERT_TRUE(waitForMetric(
        admin, "bulwark_config_reload_failures_total", {},
        [failures](double v) { return v == failures; }, deadlineIn(10s)))
        << c.what << ": running " << proxy->process().running() << "\n"
        << proxy->process().output().substr(0, 4000);
    ASSERT_TRUE(proxy->process().running()) << c.what;
    auto resp = client.get("/after-" + std::to_string(i));
    ASSERT_TRUE(resp) << c.what << ": " << client.lastError();
    EXPECT_EQ(200, resp->status) << c.what;
    EXPECT_EQ("a", resp->header("x-upstream-name").value_or("?")) << c.what;
  }
  EXPECT_EQ(0u, b->requestCount());
  EXPECT_EQ(0, metricValue(admin, "bulwark_config_last_reload_successful"));

  // A valid file whose metrics path holds a byte that is not UTF-8 applies; /config answers.
  proxy->rewriteConfig(simpleConfig("http1", "http1", {b->address()}, "", "",
                                    "observability: {metrics: {path: /metrics\xE9}}\n"));
  auto good = adminPost(admin, "/reload");
  ASSERT_TRUE(good.ok) << good.error;
  EXPECT_EQ(200, good.status) << good.body;
  auto config = adminGet(admin, "/config");
  ASSERT_TRUE(config.ok) << config.error << "\n" << proxy->process().output().substr(0, 4000);
  EXPECT_EQ(200, config.status);
  EXPECT_NE(std::string::npos, config.body.find("/metrics\xEF\xBF\xBD")) << config.body;
  // Workers pick the new snapshot up on their own loop: new requests reach b soon after.
  EXPECT_TRUE(waitFor(
      [&] {
        Http1Client fresh(proxy->port("public"));
        auto r = fresh.get("/after-valid-reload", {}, deadlineIn(1s));
        return r && r->status == 200 && r->header("x-upstream-name") == "b";
      },
      deadlineIn(5s)));
  auto code = proxy->stop(SIGTERM);
  ASSERT_TRUE(code);
  EXPECT_EQ(0, *code);
}

}  // namespace
}  // namespace bulwark::testing
