// A real gRPC client (grpc++, examples/ranking/ranking-client) through bulwark to real gRPC
// servers (examples/ranking/ranking-server): unary and server-streaming calls, and per-request
// balancing of calls that share one HTTP/2 connection.

#include <signal.h>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/bulwark_process.h"
#include "tests/integration/ranking_backend.h"
#include "tests/integration/test_pki.h"
#include "tests/support/admin_client.h"
#include "tests/support/process.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

nlohmann::json runClient(const std::vector<std::string>& args) { return runRankingClient(args); }

class GrpcClientTest : public ::testing::Test {
protected:
  void SetUp() override {
    for (int i = 0; i < 3; ++i) {
      replicas_.push_back(startRankingReplica("replica-" + std::to_string(i)));
      ASSERT_NE(replicas_.back().port, 0);
    }
    std::vector<std::string> endpoints;
    for (auto& r : replicas_) {
      endpoints.push_back(r.address());
    }
    proxy_ = startBulwark(simpleConfig("h2c", "grpc", endpoints, "  timeouts: {request: 5s}\n"));
    ASSERT_TRUE(proxy_);
    target_ = "127.0.0.1:" + std::to_string(proxy_->port("public"));
  }

  std::vector<RankingReplica> replicas_;
  std::unique_ptr<BulwarkProcess> proxy_;
  std::string target_;
};

// Proves unary gRPC calls from one client connection are balanced per request across replicas.
TEST_F(GrpcClientTest, UnaryCallsBalancedPerRequestOverOneConnection) {
  auto result = runClient({"--target", target_, "--method", "rank", "--tenant", "tenantA",
                           "--count", "300", "--concurrency", "8", "--deadline-ms", "2000"});
  ASSERT_TRUE(result.contains("ok")) << result.dump();
  EXPECT_EQ(300, result["ok"].get<int>()) << result.dump();
  EXPECT_EQ(0, result["errors"].get<int>()) << result.dump();
  // One grpc++ channel = one HTTP/2 connection = one bulwark worker, whose round robin is exact.
  ASSERT_EQ(3u, result["replicas"].size()) << result.dump();
  for (auto& [replica, calls] : result["replicas"].items()) {
    EXPECT_NEAR(100, calls.get<int>(), 2) << replica;
  }
}

// Proves server-streaming calls work end to end through bulwark.
TEST_F(GrpcClientTest, ServerStreamingCalls) {
  auto result = runClient({"--target", target_, "--method", "stream", "--tenant", "tenantB",
                           "--count", "30", "--concurrency", "4", "--deadline-ms", "2000"});
  ASSERT_TRUE(result.contains("ok")) << result.dump();
  EXPECT_EQ(30, result["ok"].get<int>()) << result.dump();
  EXPECT_EQ(0, result["errors"].get<int>()) << result.dump();
}

// Proves a gRPC client over TLS (grpc++ SslCredentials, ALPN h2) reaches the ranking replicas
// through a TLS listener.
TEST(GrpcTlsTest, GrpcClientOverTlsThroughATlsListener) {
  std::string error;
  auto pki = TestPki::create("grpc-ca", &error);
  ASSERT_TRUE(pki) << error;
  auto cert = pki->issue("ranking.test", "DNS:ranking.test", &error);
  ASSERT_TRUE(cert) << error;
  auto replica = startRankingReplica("replica-tls");
  ASSERT_NE(replica.port, 0);
  auto proxy = startBulwark(
      ConfigBuilder()
          .listener("grpc", "  tls:\n    certificates:\n    - {certificateChain: " +
                                cert->certificate + ", privateKey: " + cert->key + "}\n")
          .upstream("grpc", {replica.address()})
          .route("  timeouts: {request: 5s}\n")
          .yaml());
  ASSERT_TRUE(proxy);
  auto result = runRankingClient({"--target", "127.0.0.1:" + std::to_string(proxy->port("public")),
                                  "--tls-ca", pki->caCertificate(), "--tls-server-name",
                                  "ranking.test", "--method", "rank", "--count", "100",
                                  "--concurrency", "4", "--deadline-ms", "2000"});
  ASSERT_TRUE(result.contains("ok")) << result.dump();
  EXPECT_EQ(100, result["ok"].get<int>()) << result.dump();
  EXPECT_GE(metricValue(proxy->adminPort(), "bulwark_tls_handshakes_total",
                        {{"listener", "public"}, {"result", "ok"}})
                .value_or(0),
            1);
}

/**
 * Retries of gRPC calls through bulwark against real grpc++ replicas: a route that may re-send
 * sent calls, and replicas whose injected errors must be retriable.
 */
class GrpcRetryTest : public ::testing::Test {
protected:
  /** Starts one replica per entry of `replica_args` and bulwark in front with `route_extra`. */
  void start(const std::vector<std::vector<std::string>>& replica_args,
             const std::string& route_extra) {
    std::vector<std::string> endpoints;
    for (size_t i = 0; i < replica_args.size(); ++i) {
      replicas_.push_back(startRankingReplica("replica-" + std::to_string(i), replica_args[i]));
      ASSERT_NE(replicas_.back().port, 0);
      endpoints.push_back(replicas_.back().address());
    }
    proxy_ = startBulwark(simpleConfig("h2c", "grpc", endpoints, route_extra));
    ASSERT_TRUE(proxy_);
    target_ = "127.0.0.1:" + std::to_string(proxy_->port("public"));
  }
  double metricSum(const std::string& name, const Labels& labels) {
    auto text = fetchMetrics(proxy_->adminPort());
    EXPECT_TRUE(text);
    return text ? text->sum(name, labels) : -1;
  }

  std::vector<RankingReplica> replicas_;
  std::unique_ptr<BulwarkProcess> proxy_;
  std::string target_;
};

// Proves a normal grpc++ answer (initial metadata, message, grpc-status in the trailers) is not
// re-sent on a route with nonIdempotent: always and a per-try timeout: each call is one attempt.
TEST_F(GrpcRetryTest, SuccessfulCallsNotRetriedWithNonIdempotentAlways) {
  start({{}, {}, {}},
        "  timeouts: {request: 5s}\n"
        "  retries: {attempts: 2, perTryTimeout: 1s, nonIdempotent: always, "
        "retryIgnorePreviousHosts: true,\n"
        "            retryOn: [unavailable, reset, connect-failure, refused-stream],\n"
        "            backoff: {baseInterval: 1ms, maxInterval: 5ms}}\n");
  auto result = runClient({"--target", target_, "--method", "rank", "--tenant", "tenantA",
                           "--count", "30", "--deadline-ms", "2000"});
  ASSERT_TRUE(result.contains("ok")) << result.dump();
  EXPECT_EQ(30, result["ok"].get<int>()) << result.dump();
  EXPECT_EQ(0, metricSum("bulwark_retries_total", {{"route", "all"}}));
  EXPECT_EQ(30,
            metricSum("bulwark_upstream_attempts_total", {{"route", "all"}, {"kind", "initial"}}));
  EXPECT_EQ(0, metricSum("bulwark_upstream_attempts_total", {{"route", "all"}, {"kind", "retry"}}));
}

// Proves a replica's injected UNAVAILABLE is retried on another replica with the default
// nonIdempotent: never: it is trailers-only, so bulwark knows the call was not served.
TEST_F(GrpcRetryTest, InjectedUnavailableRetriedOnAnotherReplica) {
  start({{"--fault-error-rate", "1"}, {}},
        "  timeouts: {request: 5s}\n"
        "  retries: {attempts: 2, retryOn: [unavailable], retryIgnorePreviousHosts: true,\n"
        "            backoff: {baseInterval: 1ms, maxInterval: 5ms}, budget: {percent: 100}}\n");
  auto result = runClient({"--target", target_, "--method", "rank", "--tenant", "tenantA",
                           "--count", "20", "--deadline-ms", "2000"});
  ASSERT_TRUE(result.contains("ok")) << result.dump();
  EXPECT_EQ(20, result["ok"].get<int>()) << result.dump();
  EXPECT_EQ(0, result["errors"].get<int>()) << result.dump();
  // Round robin over two replicas: every other call met the failing one first.
  EXPECT_GE(metricSum("bulwark_retries_total", {{"route", "all"}, {"reason", "unavailable"}}), 5);
}

}  // namespace
}  // namespace bulwark::testing
