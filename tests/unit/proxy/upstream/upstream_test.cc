#include "proxy/upstream/upstream.h"

#include <vector>

#include <gtest/gtest.h>

namespace bulwark::upstream {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

config::UpstreamSpec specWith(size_t hosts) {
  config::UpstreamSpec spec;
  spec.name = "u";
  for (size_t i = 0; i < hosts; ++i) {
    spec.static_endpoints.push_back({"127.0.0.1:" + std::to_string(9000 + i), 1});
  }
  return spec;
}

policies::AttemptResult status(uint32_t code) {
  policies::AttemptResult r;
  r.http_status = code;
  r.request_sent = true;
  return r;
}

policies::AttemptResult connectFailure() {
  policies::AttemptResult r;
  r.local_failure = policies::LocalFailure::ConnectFailure;
  return r;
}

AttemptPermitPtr admitted(std::variant<AttemptPermitPtr, AdmitRejection> v) {
  EXPECT_TRUE(std::holds_alternative<AttemptPermitPtr>(v));
  return std::holds_alternative<AttemptPermitPtr>(v) ? std::move(std::get<AttemptPermitPtr>(v))
                                                     : nullptr;
}

TEST(UpstreamTest, MaxRequestsIsExactAndReleasedWithThePermit) {
  auto spec = specWith(1);
  spec.connection_pool.max_requests = 2;
  Upstream u(spec, buildStaticHostSet(spec));
  auto now = Clock::now();
  auto a = admitted(u.admitAttempt(now));
  auto b = admitted(u.admitAttempt(now));
  auto c = u.admitAttempt(now);
  ASSERT_TRUE(std::holds_alternative<AdmitRejection>(c));
  EXPECT_EQ(std::get<AdmitRejection>(c).reason, upstream::AdmitRejection::Reason::Overflow);
  EXPECT_EQ(u.overflow_total.load(), 1u);
  u.onAttemptComplete(*u.hosts()->hosts[0], status(200), milliseconds(1), std::move(a), now);
  EXPECT_TRUE(std::holds_alternative<AttemptPermitPtr>(u.admitAttempt(now)));
}

TEST(UpstreamTest, MaxRetriesAndPendingAreExact) {
  auto spec = specWith(1);
  spec.connection_pool.max_retries = 1;
  spec.connection_pool.max_pending_requests = 2;
  Upstream u(spec, buildStaticHostSet(spec));
  auto r1 = u.tryAcquireRetry();
  ASSERT_NE(r1, nullptr);
  EXPECT_EQ(u.tryAcquireRetry(), nullptr);
  r1.reset();
  EXPECT_NE(u.tryAcquireRetry(), nullptr);
  EXPECT_TRUE(u.tryAcquirePending());
  EXPECT_TRUE(u.tryAcquirePending());
  EXPECT_FALSE(u.tryAcquirePending());
  u.releasePending();
  EXPECT_TRUE(u.tryAcquirePending());
}

TEST(UpstreamTest, BreakerOpensFailsFastWithRetryAfterAndClosesAfterProbes) {
  auto spec = specWith(1);
  config::CircuitBreakerSpec cb;
  cb.minimum_requests = 4;
  cb.failure_rate_threshold = 50;
  cb.open_duration = milliseconds(2000);
  cb.half_open_requests = 2;
  spec.circuit_breaker = cb;
  Upstream u(spec, buildStaticHostSet(spec));
  Host& host = *u.hosts()->hosts[0];
  auto now = Clock::now();
  for (int i = 0; i < 4; ++i) {
    u.onAttemptComplete(host, status(503), milliseconds(1), admitted(u.admitAttempt(now)), now);
  }
  EXPECT_EQ(u.breakerState(), policies::BreakerState::Open);
  auto rejected = u.admitAttempt(now + milliseconds(500));
  ASSERT_TRUE(std::holds_alternative<AdmitRejection>(rejected));
  EXPECT_EQ(std::get<AdmitRejection>(rejected).reason,
            upstream::AdmitRejection::Reason::CircuitOpen);
  EXPECT_EQ(std::get<AdmitRejection>(rejected).retry_after, milliseconds(1500));
  // After openDuration: exactly halfOpenRequests probes, then refusals until they report.
  auto later = now + milliseconds(2001);
  auto p1 = admitted(u.admitAttempt(later));
  auto p2 = admitted(u.admitAttempt(later));
  EXPECT_TRUE(std::holds_alternative<AdmitRejection>(u.admitAttempt(later)));
  u.onAttemptComplete(host, status(200), milliseconds(1), std::move(p1), later);
  u.onAttemptComplete(host, status(200), milliseconds(1), std::move(p2), later);
  EXPECT_EQ(u.breakerState(), policies::BreakerState::Closed);
}

TEST(UpstreamTest, SlowCallsTripTheBreaker) {
  auto spec = specWith(1);
  config::CircuitBreakerSpec cb;
  cb.minimum_requests = 2;
  cb.slow_call_duration_threshold = milliseconds(100);
  cb.slow_call_rate_threshold = 100;
  spec.circuit_breaker = cb;
  Upstream u(spec, buildStaticHostSet(spec));
  auto now = Clock::now();
  for (int i = 0; i < 2; ++i) {
    u.onAttemptComplete(*u.hosts()->hosts[0], status(200), milliseconds(300),
                        admitted(u.admitAttempt(now)), now);
  }
  EXPECT_EQ(u.breakerState(), policies::BreakerState::Open);
}

TEST(UpstreamTest, ConnectFailuresEjectAHostUntilItsTimeIsUp) {
  auto spec = specWith(3);
  config::OutlierDetectionSpec od;
  od.consecutive_local_origin_failures = 3;
  od.base_ejection_time = milliseconds(1000);
  od.interval = milliseconds(10000);
  spec.outlier_detection = od;
  Upstream u(spec, buildStaticHostSet(spec));
  Host& dead = *u.hosts()->hosts[1];
  auto now = Clock::now();
  for (int i = 0; i < 2; ++i) {
    u.onAttemptComplete(dead, connectFailure(), milliseconds(1), nullptr, now);
  }
  EXPECT_FALSE(dead.ejected());
  u.onAttemptComplete(dead, connectFailure(), milliseconds(1), nullptr, now);
  EXPECT_TRUE(dead.ejected());
  EXPECT_EQ(u.healthyHostCount(), 2u);
  u.onOutlierTick(now + milliseconds(999));
  EXPECT_TRUE(dead.ejected());
  u.onOutlierTick(now + milliseconds(1001));
  EXPECT_FALSE(dead.ejected());
  EXPECT_EQ(u.healthyHostCount(), 3u);
  EXPECT_EQ(dead.times_ejected.load(), 1u);
}

// Proves a successful active health check ends an outlier ejection at once (Envoy's
// successful_active_health_check_uneject_host), is counted on the host, and that the detector's
// own end of that ejection later changes nothing.
TEST(UpstreamTest, SuccessfulHealthCheckUnejectsAHost) {
  auto spec = specWith(3);
  config::OutlierDetectionSpec od;
  od.consecutive_local_origin_failures = 2;
  od.base_ejection_time = milliseconds(30000);
  od.interval = milliseconds(10000);
  spec.outlier_detection = od;
  Upstream u(spec, buildStaticHostSet(spec));
  Host& h = *u.hosts()->hosts[1];
  Host& other = *u.hosts()->hosts[0];
  auto now = Clock::now();
  u.onActiveHealthCheckSuccess(other, now);  // not ejected: nothing to do
  EXPECT_EQ(other.health_check_unejections.load(), 0u);
  for (int i = 0; i < 2; ++i) {
    u.onAttemptComplete(h, connectFailure(), milliseconds(1), nullptr, now);
  }
  ASSERT_TRUE(h.ejected());
  EXPECT_EQ(u.toJson(now)["hosts"][1]["health"], "ejected");
  u.onActiveHealthCheckSuccess(h, now);
  EXPECT_FALSE(h.ejected());
  EXPECT_FALSE(h.outlierEjected());
  EXPECT_EQ(h.ejected_until_nanos.load(), 0);
  EXPECT_EQ(u.healthyHostCount(), 3u);
  auto json = u.toJson(now);
  EXPECT_EQ(json["hosts"][1]["health"], "healthy");
  EXPECT_EQ(json["hosts"][1]["healthCheckUnejections"], 1);
  EXPECT_EQ(json["hosts"][1]["timesEjected"], 1);
  // The detector's ejection record runs out later: the host stays in, counted once.
  u.onOutlierTick(now + milliseconds(31000));
  EXPECT_FALSE(h.ejected());
  u.onActiveHealthCheckSuccess(h, now);
  EXPECT_EQ(h.health_check_unejections.load(), 1u);
}

// Proves the detector forgets an ejection a health check ended: the host's fresh failures eject
// it again at once (for twice the base time: times ejected is kept), and it stops counting
// towards maxEjectionPercent, so another failing host can be ejected in its place.
TEST(UpstreamTest, HostUnejectedByAHealthCheckIsEjectedAgainByNewFailures) {
  auto spec = specWith(4);
  config::OutlierDetectionSpec od;
  od.consecutive_local_origin_failures = 2;
  od.base_ejection_time = milliseconds(30000);
  od.interval = milliseconds(10000);
  od.max_ejection_percent = 50;
  spec.outlier_detection = od;
  Upstream u(spec, buildStaticHostSet(spec));
  Host& a = *u.hosts()->hosts[1];
  Host& b = *u.hosts()->hosts[2];
  Host& c = *u.hosts()->hosts[3];
  auto now = Clock::now();
  auto fail = [&](Host& h, int n, Clock::time_point at) {
    for (int i = 0; i < n; ++i) {
      u.onAttemptComplete(h, connectFailure(), milliseconds(1), nullptr, at);
    }
  };
  fail(a, 2, now);
  fail(b, 2, now);
  fail(c, 2, now);
  ASSERT_TRUE(a.ejected());
  ASSERT_TRUE(b.ejected());
  EXPECT_FALSE(c.ejected());  // 3 of 4 would exceed 50 %
  // a's health check passes: its place under maxEjectionPercent goes to c at once.
  u.onActiveHealthCheckSuccess(a, now + milliseconds(1000));
  EXPECT_FALSE(a.ejected());
  fail(c, 1, now + milliseconds(1000));
  EXPECT_TRUE(c.ejected());
  // b's health check passes too; a fails again and is ejected again, well within its first
  // ejection's 30 s, for 2 x base.
  u.onActiveHealthCheckSuccess(b, now + milliseconds(2000));
  fail(a, 1, now + milliseconds(2000));
  EXPECT_FALSE(a.ejected());  // counting from zero after the uneject
  fail(a, 1, now + milliseconds(2000));
  ASSERT_TRUE(a.ejected());
  EXPECT_EQ(a.times_ejected.load(), 2u);
  EXPECT_EQ(a.ejected_until_nanos.load(), policies::toNanos(now + milliseconds(62000)));
  // The first ejection's deadline passes: the new ejection holds.
  u.onOutlierTick(now + milliseconds(31000));
  EXPECT_TRUE(a.ejected());
  EXPECT_FALSE(b.ejected());
  u.onOutlierTick(now + milliseconds(62000));
  EXPECT_FALSE(a.ejected());
  EXPECT_EQ(a.health_check_unejections.load(), 1u);
  EXPECT_EQ(b.health_check_unejections.load(), 1u);
}

TEST(UpstreamTest, FiveHundredsAreCountedPerHostAndSuccessResets) {
  auto spec = specWith(3);
  config::OutlierDetectionSpec od;
  od.consecutive_5xx_errors = 2;
  spec.outlier_detection = od;
  Upstream u(spec, buildStaticHostSet(spec));
  Host& h = *u.hosts()->hosts[0];
  auto now = Clock::now();
  u.onAttemptComplete(h, status(500), milliseconds(1), nullptr, now);
  u.onAttemptComplete(h, status(200), milliseconds(1), nullptr, now);
  u.onAttemptComplete(h, status(500), milliseconds(1), nullptr, now);
  EXPECT_FALSE(h.ejected());
  u.onAttemptComplete(h, status(500), milliseconds(1), nullptr, now);
  EXPECT_TRUE(h.ejected());
}

TEST(UpstreamTest, HostSetRefreshKeepsHostObjectsOfUnchangedAddresses) {
  auto first = buildHostSet({{"10.0.0.1:80", 1}, {"10.0.0.2:80", 1}}, nullptr);
  first->hosts[0]->requests_total = 7;
  auto second = buildHostSet(
      {{"10.0.0.2:80", 1}, {"10.0.0.1:80", 1}, {"10.0.0.3:80", 1}, {"10.0.0.3:80", 1}}, first);
  ASSERT_EQ(second->hosts.size(), 3u);
  EXPECT_EQ(second->hosts[1], first->hosts[0]);
  EXPECT_EQ(second->hosts[1]->requests_total.load(), 7u);
  EXPECT_EQ(second->hosts[0], first->hosts[1]);
  EXPECT_EQ(second->index.at(second->hosts[2].get()), 2u);
}

TEST(UpstreamTest, RemovedHostsAreMarked) {
  auto spec = specWith(2);
  Upstream u(spec, buildStaticHostSet(spec));
  auto gone = u.hosts()->hosts[1];
  u.setHosts(buildHostSet({{u.hosts()->hosts[0]->address, 1}}, u.hosts()));
  EXPECT_TRUE(gone->removed.load());
  EXPECT_FALSE(u.hosts()->hosts[0]->removed.load());
}

TEST(UpstreamTest, SameUpstreamSeesEveryField) {
  auto a = specWith(2);
  auto b = a;
  EXPECT_TRUE(sameUpstream(a, b));
  b.circuit_breaker = config::CircuitBreakerSpec{};
  EXPECT_FALSE(sameUpstream(a, b));
  b = a;
  b.load_balancer.choice_count = 3;
  EXPECT_FALSE(sameUpstream(a, b));
}

TEST(UpstreamTest, JsonShowsBreakerAndHostHealth) {
  auto spec = specWith(2);
  spec.circuit_breaker = config::CircuitBreakerSpec{};
  Upstream u(spec, buildStaticHostSet(spec));
  u.hosts()->hosts[1]->lb_state->healthy = false;
  auto json = u.toJson(Clock::now());
  EXPECT_EQ(json["circuitBreaker"]["state"], "closed");
  EXPECT_EQ(json["hosts"][0]["health"], "healthy");
  EXPECT_EQ(json["hosts"][1]["health"], "unhealthy");
  EXPECT_EQ(json["healthyHosts"], 1);
}

}  // namespace
}  // namespace bulwark::upstream
