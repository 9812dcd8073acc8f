// HealthChecker against real peers: a FakeUpstream (its own thread) whose health answers the
// test changes, or a loopback port nobody listens on. Intervals are tens of milliseconds; every
// wait ends on the host's check counters, so each threshold is observed one check at a time.

#include "proxy/upstream/health_checker.h"

#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <memory>
#include <string>

#include <gtest/gtest.h>

#include "proxy/event/dispatcher.h"
#include "proxy/upstream/upstream.h"
#include "tests/mocks/dispatcher_loop.h"
#include "tests/support/fake_upstream.h"

namespace bulwark::upstream {
namespace {

using namespace std::chrono_literals;
using testing::FakeUpstream;
using testing::Protocol;

/** A loopback port nothing listens on (bound, then closed). */
uint16_t closedPort() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof(addr);
  ::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr));
  ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len);
  ::close(fd);
  return ntohs(addr.sin_port);
}

/**
 * A HealthChecker of a one-host upstream. Thread: test (the checker's dispatcher); a
 * FakeUpstream runs on its own thread.
 */
class HealthCheckerTest : public ::testing::Test {
protected:
  HealthCheckerTest() {
    check_.kind = config::HealthCheckSpec::Kind::Http;
    check_.http_path = "/healthz";
    check_.interval = 20ms;
    check_.timeout = 1000ms;
    check_.unhealthy_threshold = 3;
    check_.healthy_threshold = 2;
  }

  void start(const std::string& address, config::UpstreamProtocol protocol) {
    config::UpstreamSpec spec;
    spec.name = "u";
    spec.protocol = protocol;
    spec.static_endpoints = {{address, 1}};
    spec.health_check = check_;
    upstream_ = std::make_shared<Upstream>(spec, buildStaticHostSet(spec));
    checker_ = std::make_unique<HealthChecker>(dispatcher_, upstream_);
    checker_->syncHosts();
  }
  void startHttp(Protocol protocol = Protocol::Http1) {
    fake_ = FakeUpstream::start(protocol);
    ASSERT_NE(fake_, nullptr);
    start(fake_->address(), protocol == Protocol::Http2 ? config::UpstreamProtocol::Grpc
                                                        : config::UpstreamProtocol::Http1);
  }
  ~HealthCheckerTest() override {
    checker_.reset();
    mocks::runReady(dispatcher_);
  }

  Host& host() { return *upstream_->hosts()->hosts.at(0); }
  bool waitForFailuresInRow(uint32_t n) {
    return mocks::runUntil(dispatcher_,
                           [&] { return host().health_check_failures_in_row.load() >= n; });
  }
  bool waitForSuccessesInRow(uint32_t n) {
    return mocks::runUntil(dispatcher_,
                           [&] { return host().health_check_successes_in_row.load() >= n; });
  }

  event::Dispatcher dispatcher_;
  config::HealthCheckSpec check_;
  std::unique_ptr<FakeUpstream> fake_;
  UpstreamSharedPtr upstream_;
  std::unique_ptr<HealthChecker> checker_;
};

TEST_F(HealthCheckerTest, UnhealthyAfterExactlyTheUnhealthyThresholdOfFailures) {
  startHttp();
  fake_->script().forPath("/healthz", testing::respond(503));
  ASSERT_TRUE(waitForFailuresInRow(2));
  EXPECT_TRUE(host().healthy()) << "unhealthy before unhealthyThreshold failures in a row";
  ASSERT_TRUE(waitForFailuresInRow(3));
  EXPECT_FALSE(host().healthy());
  EXPECT_EQ(fake_->request(0)->path, "/healthz");
  EXPECT_EQ(fake_->request(0)->method, "GET");
}

TEST_F(HealthCheckerTest, HealthyAgainAfterExactlyTheHealthyThresholdOfSuccesses) {
  check_.unhealthy_threshold = 1;
  startHttp();
  fake_->script().forPath("/healthz", testing::respond(500));
  ASSERT_TRUE(waitForFailuresInRow(1));
  ASSERT_FALSE(host().healthy());
  fake_->script().reset();  // back to 200 for everything
  ASSERT_TRUE(waitForSuccessesInRow(1));
  EXPECT_FALSE(host().healthy()) << "healthy before healthyThreshold successes in a row";
  ASSERT_TRUE(waitForSuccessesInRow(2));
  EXPECT_TRUE(host().healthy());
}

TEST_F(HealthCheckerTest, ASuccessBreaksARunOfFailures) {
  startHttp();
  // fail, fail, succeed, fail, fail: never three in a row.
  fake_->script()
      .nthRequest(1, testing::respond(503))
      .nthRequest(2, testing::respond(503))
      .nthRequest(4, testing::respond(503))
      .nthRequest(5, testing::respond(503));
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return fake_->requestCount() >= 6; }));
  ASSERT_TRUE(waitForSuccessesInRow(1));
  EXPECT_TRUE(host().healthy());
}

TEST_F(HealthCheckerTest, OnlyExpectedStatusesPass) {
  check_.expected_statuses = {204};
  check_.unhealthy_threshold = 1;
  startHttp();  // answers 200
  ASSERT_TRUE(waitForFailuresInRow(1));
  EXPECT_FALSE(host().healthy());
}

TEST_F(HealthCheckerTest, ATimedOutCheckIsAFailure) {
  check_.timeout = 30ms;
  check_.unhealthy_threshold = 1;
  startHttp();
  fake_->script().otherwise(testing::hang());
  ASSERT_TRUE(waitForFailuresInRow(1));
  EXPECT_FALSE(host().healthy());
}

TEST_F(HealthCheckerTest, ChecksAreAtLeastAnIntervalApartLessJitter) {
  check_.interval = 60ms;
  startHttp();
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return fake_->requestCount() >= 3; }));
  auto requests = fake_->requests();
  for (size_t i = 1; i < 3; ++i) {
    auto gap = requests[i].arrival_time - requests[i - 1].arrival_time;
    // ± 10 % jitter: never less than 54 ms after the previous check ended.
    EXPECT_GE(gap, 54ms) << "check " << i << " came early";
  }
}

TEST_F(HealthCheckerTest, TcpCheckPassesWhenTheHostAcceptsAndFailsWhenItRefuses) {
  check_.kind = config::HealthCheckSpec::Kind::Tcp;
  check_.unhealthy_threshold = 2;
  fake_ = FakeUpstream::start(Protocol::Http1);
  start(fake_->address(), config::UpstreamProtocol::Http1);
  ASSERT_TRUE(waitForSuccessesInRow(2));
  EXPECT_TRUE(host().healthy());
  EXPECT_EQ(fake_->requestCount(), 0u) << "a TCP check sent a request";

  checker_.reset();
  start("127.0.0.1:" + std::to_string(closedPort()), config::UpstreamProtocol::Http1);
  ASSERT_TRUE(waitForFailuresInRow(1));
  EXPECT_TRUE(host().healthy());
  ASSERT_TRUE(waitForFailuresInRow(2));
  EXPECT_FALSE(host().healthy());
}

TEST_F(HealthCheckerTest, GrpcCheckFollowsTheServingStatus) {
  check_.kind = config::HealthCheckSpec::Kind::Grpc;
  check_.grpc_service = "ranking.v1.Ranking";
  check_.unhealthy_threshold = 1;
  check_.healthy_threshold = 1;
  startHttp(Protocol::Http2);
  const std::string serving("\x08\x01", 2);      // HealthCheckResponse{status: SERVING}
  const std::string not_serving("\x08\x02", 2);  // HealthCheckResponse{status: NOT_SERVING}
  fake_->script().otherwise(testing::respondGrpc(testing::GrpcStatus::Ok, not_serving));
  ASSERT_TRUE(waitForFailuresInRow(1));
  EXPECT_FALSE(host().healthy());
  EXPECT_EQ(fake_->request(0)->path, "/grpc.health.v1.Health/Check");

  fake_->script().reset();
  fake_->script().otherwise(testing::respondGrpc(testing::GrpcStatus::Ok, serving));
  ASSERT_TRUE(waitForSuccessesInRow(1));
  EXPECT_TRUE(host().healthy());
}

}  // namespace
}  // namespace bulwark::upstream
