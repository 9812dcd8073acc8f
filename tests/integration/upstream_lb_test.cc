// Per-request load balancing through the real binary: ROUND_ROBIN over one downstream h2c
// connection, LEAST_REQUEST / PEAK_EWMA avoiding a 10x slower host, RING_HASH key affinity.

#include <algorithm>
#include <map>
#include <set>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/http2_client.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

std::string lbConfig(const std::vector<std::string>& endpoints, const std::string& upstream_extra,
                     const std::string& upstream_protocol = "http2") {
  std::ostringstream y;
  y << "apiVersion: bulwark.dev/v1alpha1\nkind: ProxyConfig\nmetadata: {name: lb}\n"
    << "admin: {address: 127.0.0.1:0}\n"
    << "runtime: {concurrency: 2, drain: {minDuration: 0s, timeout: 5s}}\n"
    << "listeners:\n- {name: public, address: 127.0.0.1:0, protocol: h2c}\n"
    << "upstreams:\n- name: backend\n  protocol: " << upstream_protocol
    << "\n  endpoints:\n    static:\n";
  for (const auto& ep : endpoints) {
    y << "    - address: \"" << ep << "\"\n";
  }
  y << upstream_extra
    << "routes:\n- name: all\n  match: {path: {prefix: /}}\n  upstream: backend\n";
  return y.str();
}

std::unique_ptr<BulwarkProcess> startBulwark(const std::string& yaml) {
  std::string error;
  auto p = BulwarkProcess::start(yaml, {"public"}, &error);
  EXPECT_NE(p, nullptr) << error;
  return p;
}

/** Sends n requests over one connection, `window` streams at a time; returns statuses seen. */
std::map<int, int> sendMany(Http2Client& c, int n, int window, const Headers& headers = {}) {
  std::map<int, int> statuses;
  for (int sent = 0; sent < n;) {
    std::vector<int32_t> ids;
    for (int i = 0; i < window && sent < n; ++i, ++sent) {
      ids.push_back(c.submit(http2Get("/x", headers)));
    }
    EXPECT_TRUE(c.waitForResponses(ids, deadlineIn(10s))) << c.lastError();
    for (int32_t id : ids) {
      ++statuses[c.response(id).status];
    }
  }
  return statuses;
}

/**
 * Keeps `window` requests in flight until n were sent (closed loop: a new request as soon as any
 * one finishes, like a client pool); returns statuses seen.
 */
std::map<int, int> sendClosedLoop(Http2Client& c, int n, size_t window) {
  std::map<int, int> statuses;
  std::vector<int32_t> in_flight;
  int sent = 0;
  auto done = [&](int32_t id) { return c.response(id).complete || c.response(id).closed; };
  while (sent < n || !in_flight.empty()) {
    while (sent < n && in_flight.size() < window) {
      in_flight.push_back(c.submit(http2Get("/x")));
      ++sent;
    }
    bool progressed = c.runUntil(
        [&] { return std::any_of(in_flight.begin(), in_flight.end(), done); }, deadlineIn(10s));
    EXPECT_TRUE(progressed) << c.lastError();
    if (!progressed) {
      break;
    }
    for (auto it = in_flight.begin(); it != in_flight.end();) {
      if (done(*it)) {
        ++statuses[c.response(*it).status];
        it = in_flight.erase(it);
      } else {
        ++it;
      }
    }
  }
  return statuses;
}

TEST(UpstreamLbTest, RoundRobinBalancesEachRequestOverOneH2cConnection) {
  auto hosts = FakeUpstreamGroup::start(3, Protocol::Http2);
  auto proxy = startBulwark(lbConfig(hosts.addresses(), "  loadBalancer: {simple: ROUND_ROBIN}\n"));
  ASSERT_NE(proxy, nullptr);
  Http2Client c(proxy->port("public"));
  ASSERT_TRUE(c.connect()) << c.lastError();
  auto statuses = sendMany(c, 600, 20);
  EXPECT_EQ(statuses[200], 600);
  auto counts = hosts.requestCountsPerUpstream();
  ASSERT_EQ(counts.size(), 3u);
  for (size_t n : counts) {
    double share = static_cast<double>(n) / 600.0;
    EXPECT_NEAR(share, 1.0 / 3.0, 0.02) << n;
  }
}

/** One host answers 10x slower; the latency/load-aware balancers send it at most 10 %. */
void expectSlowHostAvoided(const std::string& policy) {
  auto hosts = FakeUpstreamGroup::start(3, Protocol::Http2);
  for (size_t i = 0; i < 3; ++i) {
    auto delay = i == 0 ? 50ms : 5ms;
    hosts[i].setHandler(
        [delay](const ReceivedRequest&) { return respond(200, {}, "ok").withDelay(delay); });
  }
  auto proxy =
      startBulwark(lbConfig(hosts.addresses(), "  loadBalancer: {simple: " + policy + "}\n"));
  ASSERT_NE(proxy, nullptr);
  Http2Client c(proxy->port("public"));
  ASSERT_TRUE(c.connect()) << c.lastError();
  auto statuses = sendClosedLoop(c, 600, 24);
  EXPECT_EQ(statuses[200], 600);
  size_t slow = hosts[0].requestCount();
  std::cout << policy << ": slow host got " << slow << " of 600\n";
  EXPECT_LE(static_cast<double>(slow) / 600.0, 0.10)
      << policy << adminGet(proxy->adminPort(), "/upstreams").body;
}

TEST(UpstreamLbTest, LeastRequestAvoidsATenTimesSlowerHost) {
  expectSlowHostAvoided("LEAST_REQUEST");
}

TEST(UpstreamLbTest, PeakEwmaAvoidsATenTimesSlowerHost) { expectSlowHostAvoided("PEAK_EWMA"); }

// Proves the router hashes the configured header so each key sticks to one host.
TEST(UpstreamLbTest, RingHashSendsEachKeyToOneHost) {
  auto hosts = FakeUpstreamGroup::start(3, Protocol::Http2);
  auto proxy = startBulwark(
      lbConfig(hosts.addresses(),
               "  loadBalancer: {simple: RING_HASH, consistentHash: {httpHeaderName: x-user}}\n"));
  ASSERT_NE(proxy, nullptr);
  Http2Client c(proxy->port("public"));
  ASSERT_TRUE(c.connect()) << c.lastError();
  for (int round = 0; round < 5; ++round) {
    for (int key = 0; key < 30; ++key) {
      auto r = c.request(http2Get("/x", {{"x-user", "user-" + std::to_string(key)}}));
      ASSERT_TRUE(r) << c.lastError();
      ASSERT_EQ(r->status, 200);
    }
  }
  std::map<std::string, std::set<std::string>> hosts_per_key;
  for (const auto& r : hosts.requests()) {
    hosts_per_key[*r.header("x-user")].insert(r.upstream);
  }
  ASSERT_EQ(hosts_per_key.size(), 30u);
  std::set<std::string> used;
  for (const auto& [key, set] : hosts_per_key) {
    EXPECT_EQ(set.size(), 1u) << key;
    used.insert(set.begin(), set.end());
  }
  EXPECT_GE(used.size(), 2u);  // keys spread over hosts
}

}  // namespace
}  // namespace bulwark::testing
