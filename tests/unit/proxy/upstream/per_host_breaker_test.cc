// circuitBreaker.perHost: one breaker per host, fed by the attempts sent to it; an open host
// breaker takes the host out of picking (like an ejection, panic threshold included) instead
// of failing the upstream. Admit and pick run as the router runs them (admitAttempt, then
// pickHost with the permit); time is simulated through the instants passed in.

#include <map>
#include <random>

#include <gtest/gtest.h>

#include "proxy/upstream/thread_local_upstream.h"
#include "proxy/upstream/upstream.h"

namespace bulwark::upstream {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

config::UpstreamSpec perHostSpec(size_t hosts) {
  config::UpstreamSpec spec;
  spec.name = "u";
  spec.load_balancer.policy = config::LbPolicy::RoundRobin;
  for (size_t i = 0; i < hosts; ++i) {
    spec.static_endpoints.push_back({"127.0.0.1:" + std::to_string(9000 + i), 1});
  }
  config::CircuitBreakerSpec cb;
  cb.per_host = true;
  cb.minimum_requests = 4;
  cb.failure_rate_threshold = 50;
  cb.open_duration = milliseconds(1000);
  cb.half_open_requests = 2;
  spec.circuit_breaker = cb;
  return spec;
}

policies::AttemptResult status(uint32_t code) {
  policies::AttemptResult r;
  r.http_status = code;
  r.request_sent = true;
  return r;
}

/** One attempt as the router starts it: the permit and the host picked for it. */
struct Attempt {
  AttemptPermitPtr permit;
  HostSharedPtr host;
};

class PerHostBreakerTest : public ::testing::Test {
protected:
  void make(const config::UpstreamSpec& spec) {
    upstream_ = std::make_shared<Upstream>(spec, buildStaticHostSet(spec));
    upstream_->activate();
    tlu_ = std::make_unique<ThreadLocalUpstream>(dispatcher_, upstream_);
  }

  Attempt start(Clock::time_point now) {
    auto admitted = upstream_->admitAttempt(now);
    EXPECT_TRUE(std::holds_alternative<AttemptPermitPtr>(admitted))
        << "the upstream itself must not refuse";
    if (!std::holds_alternative<AttemptPermitPtr>(admitted)) {
      return {};
    }
    Attempt a{std::move(std::get<AttemptPermitPtr>(admitted)), nullptr};
    LbContext ctx;
    ctx.permit = a.permit.get();
    a.host = tlu_->pickHost(rng_, ctx);
    return a;
  }

  void finish(Attempt a, uint32_t code, Clock::time_point now) {
    ASSERT_NE(a.host, nullptr);
    upstream_->onAttemptComplete(*a.host, status(code), milliseconds(1), std::move(a.permit), now);
  }

  /** Runs attempts until host `index` has answered 503 `n` times, the others 200 (bounded). */
  void failHost(size_t index, int n, Clock::time_point now) {
    const Host* target = upstream_->hosts()->hosts[index].get();
    int failed = 0;
    for (int i = 0; i < 100 && failed < n; ++i) {
      auto a = start(now);
      bool hit = a.host.get() == target;
      finish(std::move(a), hit ? 503 : 200, now);
      if (hit) {
        ++failed;
      }
    }
    ASSERT_EQ(failed, n);
  }

  std::map<std::string, int> pickCounts(int n, Clock::time_point now) {
    std::map<std::string, int> counts;
    for (int i = 0; i < n; ++i) {
      auto a = start(now);
      if (a.host) {
        ++counts[a.host->address];
      }
      finish(std::move(a), 200, now);
    }
    return counts;
  }

  policies::BreakerState stateOf(size_t index) {
    return upstream_->lbSnapshot()->host_breakers.at(index)->breaker().state();
  }

  event::Dispatcher dispatcher_;
  std::mt19937_64 rng_{7};
  UpstreamSharedPtr upstream_;
  std::unique_ptr<ThreadLocalUpstream> tlu_;
};

TEST_F(PerHostBreakerTest, FailingHostIsTakenOutWhileTheUpstreamServes) {
  make(perHostSpec(3));
  auto now = Clock::now();
  EXPECT_FALSE(upstream_->breakerState().has_value())
      << "perHost replaces the upstream-wide breaker";
  failHost(0, 4, now);
  EXPECT_EQ(stateOf(0), policies::BreakerState::Open);
  EXPECT_EQ(stateOf(1), policies::BreakerState::Closed);
  Host& bad = *upstream_->hosts()->hosts[0];
  EXPECT_TRUE(bad.breakerOpen());
  EXPECT_FALSE(bad.outlierEjected());
  EXPECT_FALSE(bad.available());
  EXPECT_EQ(upstream_->healthyHostCount(), 2u);
  // Every attempt is admitted and lands on the two others.
  auto counts = pickCounts(60, now + milliseconds(500));
  EXPECT_EQ(counts.count(bad.address), 0u);
  EXPECT_NEAR(counts["127.0.0.1:9001"], 30, 1);
  EXPECT_NEAR(counts["127.0.0.1:9002"], 30, 1);
  auto json = upstream_->toJson(now);
  EXPECT_EQ(json["hosts"][0]["health"], "circuit_open");
  EXPECT_EQ(json["hosts"][0]["circuitBreaker"]["state"], "open");
  EXPECT_EQ(json["hosts"][0]["circuitBreaker"]["openForMs"], 1000);
  EXPECT_EQ(json["hosts"][1]["circuitBreaker"]["state"], "closed");
  EXPECT_EQ(json["circuitBreaker"]["perHost"], true);
  EXPECT_EQ(json["circuitBreaker"]["hosts"]["open"], 1);
  EXPECT_EQ(json["circuitBreaker"]["hosts"]["closed"], 2);
}

TEST_F(PerHostBreakerTest, AfterOpenDurationProbesCloseItAndExtraPicksGoElsewhere) {
  make(perHostSpec(3));
  auto now = Clock::now();
  failHost(0, 4, now);
  Host& bad = *upstream_->hosts()->hosts[0];
  upstream_->releaseDueHostBreakers(now + milliseconds(999));
  EXPECT_TRUE(bad.breakerOpen()) << "released before openDuration";
  auto later = now + milliseconds(1000);
  upstream_->releaseDueHostBreakers(later);
  EXPECT_FALSE(bad.breakerOpen());
  EXPECT_TRUE(bad.available());
  // Round robin reaches the host again: exactly halfOpenRequests probes go there, further
  // picks of it are refused and go to another host while the probes are out.
  std::vector<Attempt> probes;
  std::vector<Attempt> others;
  for (int i = 0; i < 12; ++i) {
    auto a = start(later);
    ASSERT_NE(a.host, nullptr);
    (a.host.get() == &bad ? probes : others).push_back(std::move(a));
  }
  EXPECT_EQ(probes.size(), 2u);
  EXPECT_EQ(others.size(), 10u);
  EXPECT_EQ(stateOf(0), policies::BreakerState::HalfOpen);
  EXPECT_GT(upstream_->toJson(later)["circuitBreaker"]["rejectedTotal"].get<uint64_t>(), 0u);
  for (auto& a : probes) {
    finish(std::move(a), 200, later);
  }
  for (auto& a : others) {
    finish(std::move(a), 200, later);
  }
  EXPECT_EQ(stateOf(0), policies::BreakerState::Closed);
  auto counts = pickCounts(30, later);
  EXPECT_NEAR(counts[bad.address], 10, 1);
}

TEST_F(PerHostBreakerTest, FailedProbeReopensAndTakesTheHostOutAgain) {
  make(perHostSpec(2));
  auto now = Clock::now();
  failHost(1, 4, now);
  auto later = now + milliseconds(1000);
  upstream_->releaseDueHostBreakers(later);
  Host& bad = *upstream_->hosts()->hosts[1];
  int probes = 0;
  for (int i = 0; i < 10 && probes == 0; ++i) {
    auto a = start(later);
    bool hit = a.host.get() == &bad;
    probes += hit ? 1 : 0;
    finish(std::move(a), hit ? 503 : 200, later);
  }
  ASSERT_EQ(probes, 1);
  EXPECT_EQ(stateOf(1), policies::BreakerState::HalfOpen);
  // The second probe fails too: OPEN again for another openDuration.
  for (int i = 0; i < 10 && probes == 1; ++i) {
    auto a = start(later);
    bool hit = a.host.get() == &bad;
    probes += hit ? 1 : 0;
    finish(std::move(a), hit ? 503 : 200, later);
  }
  EXPECT_EQ(stateOf(1), policies::BreakerState::Open);
  EXPECT_TRUE(bad.breakerOpen());
  upstream_->releaseDueHostBreakers(later + milliseconds(999));
  EXPECT_TRUE(bad.breakerOpen());
  upstream_->releaseDueHostBreakers(later + milliseconds(1000));
  EXPECT_FALSE(bad.breakerOpen());
}

TEST_F(PerHostBreakerTest, CancelledProbeFreesItsSlot) {
  make(perHostSpec(2));
  auto now = Clock::now();
  failHost(0, 4, now);
  auto later = now + milliseconds(1000);
  upstream_->releaseDueHostBreakers(later);
  Host& bad = *upstream_->hosts()->hosts[0];
  std::vector<Attempt> probes;
  for (int i = 0; i < 8 && probes.size() < 2; ++i) {
    auto a = start(later);
    if (a.host.get() == &bad) {
      probes.push_back(std::move(a));
    } else {
      finish(std::move(a), 200, later);
    }
  }
  ASSERT_EQ(probes.size(), 2u);
  // Both probes out: the host refuses; a cancelled one (hedge loser, client gone) gives its
  // slot back and the next pick of the host is a probe again.
  auto refused = start(later);
  EXPECT_NE(refused.host.get(), &bad);
  finish(std::move(refused), 200, later);
  upstream_->onAttemptCancelled(bad, std::chrono::milliseconds(1), std::move(probes[0].permit),
                                later);
  int reached = 0;
  for (int i = 0; i < 4 && reached == 0; ++i) {
    auto a = start(later);
    reached += a.host.get() == &bad ? 1 : 0;
    finish(std::move(a), 200, later);
  }
  EXPECT_EQ(reached, 1);
}

TEST_F(PerHostBreakerTest, PanicThresholdLetsOpenHostsServe) {
  auto spec = perHostSpec(3);
  config::OutlierDetectionSpec od;
  od.consecutive_5xx_errors = 0;
  od.consecutive_local_origin_failures = 0;
  od.panic_threshold_percent = 50;
  spec.outlier_detection = od;
  make(spec);
  auto now = Clock::now();
  failHost(0, 4, now);
  failHost(1, 4, now);
  ASSERT_EQ(stateOf(0), policies::BreakerState::Open);
  ASSERT_EQ(stateOf(1), policies::BreakerState::Open);
  // 1 of 3 available (33 % < 50 %): panic, all three share the traffic again.
  auto counts = pickCounts(30, now + milliseconds(10));
  EXPECT_EQ(counts.size(), 3u);
  EXPECT_GT(counts["127.0.0.1:9000"], 0);
}

TEST_F(PerHostBreakerTest, WithoutPanicEveryHostOpenMeansNoHost) {
  auto spec = perHostSpec(2);
  config::OutlierDetectionSpec od;
  od.consecutive_5xx_errors = 0;
  od.consecutive_local_origin_failures = 0;
  od.panic_threshold_percent = 0;
  spec.outlier_detection = od;
  make(spec);
  auto now = Clock::now();
  failHost(0, 4, now);
  failHost(1, 4, now);
  auto a = start(now);
  EXPECT_EQ(a.host, nullptr) << "panic disabled: open breakers refuse";
}

TEST_F(PerHostBreakerTest, OnlyTheLiveUpstreamExcludesAndAdoptionClearsLeftovers) {
  auto spec = perHostSpec(2);
  make(spec);
  auto now = Clock::now();
  failHost(0, 4, now);
  auto shared_hosts = upstream_->hosts();
  Host& bad = *shared_hosts->hosts[0];
  ASSERT_TRUE(bad.breakerOpen());
  // A reload prepares a new upstream object on the same hosts: nothing changes until it is
  // activated; then its (closed) breakers own the hosts and the old one's exclusion is gone.
  auto next = std::make_shared<Upstream>(spec, shared_hosts);
  EXPECT_TRUE(bad.breakerOpen());
  next->activate();
  EXPECT_FALSE(bad.breakerOpen());
  EXPECT_TRUE(bad.available());
  // The old object's breakers no longer take the host out (its late attempts still report).
  failHost(1, 4, now);
  EXPECT_EQ(stateOf(1), policies::BreakerState::Open);
  EXPECT_FALSE(shared_hosts->hosts[1]->breakerOpen());
}

TEST_F(PerHostBreakerTest, HostThatStaysKeepsItsBreakerAcrossHostSetChanges) {
  make(perHostSpec(2));
  auto now = Clock::now();
  failHost(0, 4, now);
  auto before = upstream_->lbSnapshot()->host_breakers[0];
  auto set = upstream_->hosts();
  upstream_->setHosts(buildHostSet({{set->hosts[0]->address, 1}, {"127.0.0.1:9100", 1}}, set));
  auto after = upstream_->lbSnapshot();
  ASSERT_EQ(after->host_breakers.size(), 2u);
  EXPECT_EQ(after->host_breakers[0], before);
  EXPECT_EQ(after->host_breakers[1]->breaker().state(), policies::BreakerState::Closed);
  EXPECT_TRUE(after->hosts->hosts[0]->breakerOpen());
}

}  // namespace
}  // namespace bulwark::upstream
