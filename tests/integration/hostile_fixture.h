#pragma once

// The fixture the hostile HTTP/1.1 and HTTP/2 suites share: one bulwark with small listener
// limits in front of one HTTP/1.1 FakeUpstream, started once per suite (each start costs a
// process spawn). Every test ends by proving bulwark still serves, so a crash fails the test that
// caused it. Thread: the test thread.

#include <signal.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/wait.h"

namespace bulwark::testing {

inline constexpr uint32_t kMaxHeaderBytes = 4096;
inline constexpr uint32_t kMaxHeadersCount = 20;
inline constexpr uint64_t kMaxBodyBytes = 1024;
inline constexpr const char* kProtocolErrors = "bulwark_downstream_protocol_errors_total";

class HostileProxyTest : public ::testing::Test {
protected:
  /** Starts the shared upstream and bulwark with a `listener_protocol` listener "public". */
  static void startShared(const std::string& listener_protocol) {
    upstream_ = new FakeUpstream(Protocol::Http1);
    const std::string limits =
        "  limits: {maxRequestHeadersBytes: " + std::to_string(kMaxHeaderBytes) +
        ", maxHeadersCount: " + std::to_string(kMaxHeadersCount) +
        ", maxRequestBodyBytes: " + std::to_string(kMaxBodyBytes) +
        ", headerReadTimeout: 1s, idleTimeout: 30s}\n";
    bulwark_ =
        startBulwark(simpleConfig(listener_protocol, "http1", {upstream_->address()}, "", limits))
            .release();
    ASSERT_NE(bulwark_, nullptr);
  }

  /** Stops bulwark (it must exit cleanly after the whole suite) and the upstream. */
  static void stopShared() {
    if (bulwark_ != nullptr) {
      EXPECT_EQ(0, bulwark_->stop(SIGTERM))
          << "bulwark did not exit cleanly after the hostile suite";
    }
    delete bulwark_;
    bulwark_ = nullptr;
    delete upstream_;
    upstream_ = nullptr;
  }

  void SetUp() override {
    ASSERT_NE(bulwark_, nullptr);
    ASSERT_TRUE(bulwark_->process().running()) << "bulwark died in an earlier test";
    baseline_ = upstream_->requestCount();
    errors_before_ = totalProtocolErrors();
  }

  static uint16_t port() { return bulwark_->port("public"); }

  static double protocolErrors(const std::string& reason) {
    return metricValue(bulwark_->adminPort(), kProtocolErrors,
                       {{"listener", "public"}, {"reason", reason}})
        .value_or(0.0);
  }

  static double totalProtocolErrors() {
    auto metrics = fetchMetrics(bulwark_->adminPort());
    return metrics ? metrics->sum(kProtocolErrors, {{"listener", "public"}}) : 0.0;
  }

  /** Waits until `reason` was counted once more than `before`. */
  static bool waitForProtocolError(const std::string& reason, double before) {
    return waitForMetric(
        bulwark_->adminPort(), kProtocolErrors, {{"listener", "public"}, {"reason", reason}},
        [&](double v) { return v >= before + 1; }, deadlineIn(std::chrono::seconds(2)));
  }

  /**
   * A fresh `Client` connection (Http1Client or Http2Client) gets 200 from the upstream for a GET
   * and the process is alive. Returns the probe's path so upstream checks can tell it from
   * attack traffic.
   */
  template <typename Client>
  static std::string expectStillServingOver() {
    static std::atomic<int> probe{0};
    const std::string path = "/alive-" + std::to_string(probe.fetch_add(1));
    const auto deadline = deadlineIn(std::chrono::seconds(3));
    EXPECT_TRUE(bulwark_->process().running());
    Client client(port());
    EXPECT_TRUE(client.connect(deadline)) << client.lastError();
    auto r = client.get(path, {}, deadline);
    EXPECT_TRUE(r) << client.lastError();
    if (r) {
      EXPECT_EQ(200, r->status);
      EXPECT_EQ(path, r->header("x-echo-path").value_or(""));
    }
    return path;
  }

  /** Requests the upstream logged since SetUp() (or since baseline_ was last moved). */
  std::vector<ReceivedRequest> newUpstreamRequests() const {
    auto all = upstream_->requests();
    return std::vector<ReceivedRequest>(all.begin() + static_cast<long>(baseline_), all.end());
  }

  inline static FakeUpstream* upstream_ = nullptr;
  inline static BulwarkProcess* bulwark_ = nullptr;
  size_t baseline_ = 0;
  double errors_before_ = 0;
};

}  // namespace bulwark::testing
