// Per-request gRPC load balancing with the real example backend: ranking-server replicas
// (examples/ranking) behind the real bulwark binary, called by a real grpc++ client
// (ranking-client, one channel = one HTTP/2 connection) or by the h2 test client speaking gRPC
// framing where a test needs a header per call. Where the calls went is read from the replicas
// themselves (ranking.v1.ReplicaStats) and from x-replica-id, not from bulwark.
//
// upstream_lb_test.cc and upstream_dns_test.cc prove the same mechanisms with fake upstreams;
// these tests add the real gRPC stack on both sides, load while hosts change, and the backend's
// own view of a cancelled stream.

#include <signal.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <map>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/bulwark_process.h"
#include "tests/integration/ranking_backend.h"
#include "tests/support/admin_client.h"
#include "tests/support/dns_server.h"
#include "tests/support/grpc_codec.h"
#include "tests/support/http2_client.h"
#include "tests/support/process.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;
using Json = nlohmann::json;

// Under ThreadSanitizer every process here (bulwark, the replicas, the client) runs several
// times slower: on the 2-core machine 300 calls/s in an open loop already saturates them
// (p50 ~1 s, the client's 512-call cap reached) and 30,000 closed-loop calls outlast the
// client's deadline. The TSan build offers a fifth of the load; the distributions and bounds
// are the same, and the release and ASan builds keep the full load.
#if defined(__SANITIZE_THREAD__)
constexpr int kLoadDivisor = 5;
#else
constexpr int kLoadDivisor = 1;
#endif
// Open-loop rate of the background load, in calls per second.
const std::string kBackgroundRate = std::to_string(300 / kLoadDivisor);

// Small catalogs start fast; --model-cost-us 0 leaves only the real ranking work (~0.1 ms), so
// the tests are bound by the proxy and the client, not by the latency model.
const std::vector<std::string> kFastReplicaArgs = {
    "--model-cost-us", "0", "--items-per-tenant", "1000", "--candidate-window", "100"};

using Replica = RankingReplica;

/** A fast ranking-server replica (kFastReplicaArgs, then `extra`) on host:port. */
Replica startReplica(const std::string& id, const std::vector<std::string>& extra = {},
                     const std::string& host = "127.0.0.1", uint16_t port = 0) {
  std::vector<std::string> args = kFastReplicaArgs;
  args.insert(args.end(), extra.begin(), extra.end());
  return startRankingReplica(id, args, host, port);
}

/** Sets the replica's fault knobs (the whole spec; "{}" = all off). */
void setFault(const Replica& r, const std::string& json) {
  auto resp = adminPost(r.control_port, "/_fault", json);
  ASSERT_TRUE(resp.ok && resp.status == 200) << resp.error << " " << resp.body;
}

/** Flips the replica's grpc.health.v1 status. */
void setServing(const Replica& r, bool serving) {
  auto resp = adminPost(r.control_port, "/_fault/health",
                        serving ? R"({"serving":true})" : R"({"serving":false})");
  ASSERT_TRUE(resp.ok && resp.status == 200) << resp.error << " " << resp.body;
}

Json runClient(std::vector<std::string> args, Deadline deadline = deadlineIn(60s)) {
  return runRankingClient(std::move(args), deadline);
}

/** Load that runs until stop(): ranking-client in the background, stopped by SIGTERM. */
class BackgroundLoad {
public:
  explicit BackgroundLoad(std::vector<std::string> args)
      : client_(spawnRankingClient(std::move(args))) {}
  ~BackgroundLoad() {
    if (client_ && client_->running()) {
      client_->kill();
    }
  }
  bool started() const { return client_ != nullptr; }
  /** Stops issuing calls, lets the ones in flight finish and returns the report. */
  Json stop() {
    if (!client_) {
      return {};
    }
    client_->signal(SIGTERM);
    return readRankingReport(*client_, deadlineIn(20s));
  }

private:
  std::unique_ptr<ChildProcess> client_;
};

/** The replica's own counters (ranking.v1.ReplicaStats/Get, called directly, not through bulwark).
 */
Json replicaStats(const Replica& r) {
  return runClient({"--target", r.address(), "--method", "stats"}, deadlineIn(10s));
}

int64_t rankCalls(const Replica& r) {
  auto stats = replicaStats(r);
  return stats.contains("rank_calls") ? stats["rank_calls"].get<int64_t>() : -1;
}

/**
 * One h2c listener, upstream "ranking" (protocol grpc) with the given endpoints and extra
 * upstream lines, one catch-all route. Concurrency 2: one downstream connection still lands on
 * one worker, so per-request balancing is what spreads its calls.
 */
ConfigBuilder grpcConfigBuilder() { return ConfigBuilder().listener("h2c"); }
const char kGrpcRoute[] = "  timeouts: {request: 10s}\n";

std::string grpcConfig(const std::vector<std::string>& endpoints,
                       const std::string& upstream_extra) {
  return grpcConfigBuilder()
      .upstream("grpc", endpoints, upstream_extra, "ranking")
      .route(kGrpcRoute, "/", "all", "ranking")
      .yaml();
}

/** The addresses of the first `n` replicas (all by default). */
std::vector<std::string> staticEndpoints(const std::vector<Replica>& replicas,
                                         size_t n = SIZE_MAX) {
  std::vector<std::string> addresses;
  for (size_t i = 0; i < std::min(n, replicas.size()); ++i) {
    addresses.push_back(replicas[i].address());
  }
  return addresses;
}

std::string target(const BulwarkProcess& proxy) {
  return "127.0.0.1:" + std::to_string(proxy.port("public"));
}

std::vector<Replica> startReplicas(int n, const std::vector<std::string>& extra = {}) {
  std::vector<Replica> replicas;
  for (int i = 0; i < n; ++i) {
    replicas.push_back(startReplica("replica-" + std::to_string(i), extra));
    if (replicas.back().port == 0) {
      break;
    }
  }
  return replicas;
}

bool allStarted(const std::vector<Replica>& replicas, size_t n) {
  if (replicas.size() != n) {
    return false;
  }
  for (const auto& r : replicas) {
    if (r.port == 0) {
      return false;
    }
  }
  return true;
}

/** Hosts of upstream "ranking" in bulwark's /upstreams, address -> health. */
std::map<std::string, std::string> upstreamHosts(const BulwarkProcess& proxy) {
  std::map<std::string, std::string> hosts;
  auto resp = adminGet(proxy.adminPort(), "/upstreams");
  if (!resp.ok || resp.status != 200) {
    return hosts;
  }
  auto json = Json::parse(resp.body, nullptr, false);
  if (json.is_discarded()) {
    return hosts;
  }
  auto visit = [&](const Json& upstream) {
    if (upstream.value("name", "") != "ranking" || !upstream.contains("hosts")) {
      return;
    }
    for (const auto& h : upstream["hosts"]) {
      hosts[h.value("address", "")] = h.value("health", "");
    }
  };
  if (json.is_array()) {
    for (const auto& u : json) {
      visit(u);
    }
  } else if (json.contains("upstreams")) {
    for (const auto& u : json["upstreams"]) {
      visit(u);
    }
  }
  return hosts;
}

uint64_t replicaCount(const Json& report, const std::string& id) {
  return report.contains("replicas") ? report["replicas"].value(id, uint64_t{0}) : 0;
}

// --- 1. ROUND_ROBIN over one client connection -----------------------------------------------

// 30,000 unary calls (6,000 under TSan) from one grpc++ channel: one downstream HTTP/2
// connection, yet every replica gets exactly a third of the calls, counted both by x-replica-id
// at the client and by the replicas.
TEST(UpstreamGrpcLbTest, RoundRobinSpreadsOneConnectionsCallsEvenly) {
  constexpr int kCalls = 30000 / kLoadDivisor;
  auto replicas = startReplicas(3);
  ASSERT_TRUE(allStarted(replicas, 3));
  auto proxy = startBulwark(
      grpcConfig(staticEndpoints(replicas), "  loadBalancer: {simple: ROUND_ROBIN}\n"));
  ASSERT_NE(proxy, nullptr);

  auto report =
      runClient({"--target", target(*proxy), "--method", "rank", "--tenant", "mixed", "--limit",
                 "5", "--concurrency", "16", "--count", std::to_string(kCalls)});
  ASSERT_EQ(report.value("calls", 0), kCalls) << report.dump();
  EXPECT_EQ(report.value("ok", 0), kCalls) << report.dump();
  std::cout << "ROUND_ROBIN " << kCalls << " calls in " << report.value("elapsed_s", 0.0) << " s ("
            << report.value("rps", 0.0) << " rps), by replica " << report["replicas"].dump()
            << "\n";

  // One grpc++ channel with a local subchannel pool is one HTTP/2 connection.
  EXPECT_EQ(metricValue(proxy->adminPort(), "bulwark_downstream_connections_total",
                        {{"listener", "public"}}),
            1.0);
  // The connection is served by one worker, whose round robin is exact: 10,000 each, as the
  // client counted them (x-replica-id) and as the replicas counted them.
  for (const auto& r : replicas) {
    EXPECT_EQ(replicaCount(report, r.id), uint64_t{kCalls / 3})
        << r.id << " " << report["replicas"].dump();
    EXPECT_EQ(rankCalls(r), int64_t{kCalls / 3}) << r.id;
  }
}

// --- 2. LEAST_REQUEST / PEAK_EWMA avoid a 10x slower replica ------------------------------------

void expectSlowReplicaAvoided(const std::string& policy) {
  constexpr int kCalls = 1500;
  const std::vector<std::string> load = {"--method", "rank", "--tenant",      "tenantA",
                                         "--limit",  "5",    "--concurrency", "24"};
  // Every replica waits 5 ms per call (fault knob latency) before its real work.
  auto replicas = startReplicas(3, {"--fault-latency-ms", "5"});
  ASSERT_TRUE(allStarted(replicas, 3));
  auto proxy = startBulwark(
      grpcConfig(staticEndpoints(replicas), "  loadBalancer: {simple: " + policy + "}\n"));
  ASSERT_NE(proxy, nullptr);
  auto args = [&](int calls) {
    std::vector<std::string> a = {"--target", target(*proxy), "--count", std::to_string(calls)};
    a.insert(a.end(), load.begin(), load.end());
    return a;
  };

  // What a call costs end to end under this load on this machine (knob + ranking + gRPC + proxy)...
  auto calibration = runClient(args(300));
  ASSERT_EQ(calibration.value("ok", 0), 300) << calibration.dump();
  const double normal_ms = calibration["latency_ms"].value("p50", 0.0);
  ASSERT_GT(normal_ms, 5.0);
  // ...and replica-0 is made 10x slower than that.
  const int slow_ms = static_cast<int>(std::ceil(10 * normal_ms));
  setFault(replicas[0], "{\"latency_fixed_ms\":" + std::to_string(slow_ms) + "}");
  const int64_t slow_before = rankCalls(replicas[0]);

  auto report = runClient(args(kCalls));
  ASSERT_EQ(report.value("calls", 0), kCalls) << report.dump();
  EXPECT_EQ(report.value("ok", 0), kCalls) << report.dump();
  uint64_t slow = replicaCount(report, "replica-0");
  std::cout << policy << ": p50 " << normal_ms << " ms, replica-0 made " << slow_ms
            << " ms; it got " << slow << " of " << kCalls << " calls ("
            << 100.0 * static_cast<double>(slow) / kCalls << " %), by replica "
            << report["replicas"].dump() << "\n";
  EXPECT_LE(static_cast<double>(slow) / kCalls, 0.10) << report.dump();
  EXPECT_EQ(static_cast<int64_t>(slow), rankCalls(replicas[0]) - slow_before);
}

TEST(UpstreamGrpcLbTest, LeastRequestSendsAtMostTenPercentToATenTimesSlowerReplica) {
  expectSlowReplicaAvoided("LEAST_REQUEST");
}

TEST(UpstreamGrpcLbTest, PeakEwmaSendsAtMostTenPercentToATenTimesSlowerReplica) {
  expectSlowReplicaAvoided("PEAK_EWMA");
}

// --- 2b. RING_HASH on a header: key affinity and bounded movement when a replica is added --------

/** A RankRequest{tenant_id, user_id} in protobuf wire form (fields 1 and 2, length-delimited). */
std::string rankRequest(const std::string& tenant, const std::string& user) {
  auto field = [](char tag, const std::string& value) {
    return std::string(1, tag) + static_cast<char>(value.size()) + value;
  };
  return field('\x0a', tenant) + field('\x12', user);
}

/**
 * Calls Rank once per key with `x-user: key` over one new connection, 100 calls in flight at a
 * time; returns key -> x-replica-id of the answer.
 */
std::map<std::string, std::string> replicaPerKey(uint16_t port,
                                                 const std::vector<std::string>& keys) {
  std::map<std::string, std::string> owner;
  Http2Client c(port);
  EXPECT_TRUE(c.connect()) << c.lastError();
  constexpr size_t kWindow = 100;
  for (size_t begin = 0; begin < keys.size(); begin += kWindow) {
    std::vector<std::pair<std::string, int32_t>> batch;
    for (size_t i = begin; i < std::min(keys.size(), begin + kWindow); ++i) {
      auto request = http2Request(
          "POST", "/ranking.v1.RankingService/Rank",
          {{"content-type", "application/grpc"}, {"te", "trailers"}, {"x-user", keys[i]}},
          encodeGrpcMessage(rankRequest("tenantA", keys[i])));
      batch.emplace_back(keys[i], c.submit(request));
    }
    for (const auto& [key, id] : batch) {
      EXPECT_TRUE(c.waitForResponse(id, deadlineIn(10s))) << c.lastError();
      const auto& r = c.response(id);
      EXPECT_TRUE(r.complete && r.trailer("grpc-status") == "0") << key << " " << r.status;
      owner[key] = r.header("x-replica-id").value_or("none");
    }
  }
  return owner;
}

TEST(UpstreamGrpcLbTest, RingHashKeepsKeysOnOneReplicaAndMovesFewWhenOneIsAdded) {
  constexpr int kKeys = 3000;
  auto replicas = startReplicas(4);
  ASSERT_TRUE(allStarted(replicas, 4));
  const std::string lb =
      "  loadBalancer: {simple: RING_HASH, consistentHash: {httpHeaderName: x-user}}\n";
  auto proxy = startBulwark(grpcConfig(staticEndpoints(replicas, 3), lb));
  ASSERT_NE(proxy, nullptr);

  std::vector<std::string> keys;
  for (int i = 0; i < kKeys; ++i) {
    keys.push_back("user-" + std::to_string(i));
  }
  auto before = replicaPerKey(proxy->port("public"), keys);
  // Each key sticks to one replica (asked twice, on another connection), and keys spread.
  EXPECT_EQ(replicaPerKey(proxy->port("public"), keys), before);
  std::map<std::string, int> per_replica;
  for (const auto& [key, owner] : before) {
    ++per_replica[owner];
  }
  EXPECT_EQ(per_replica.size(), 3u);
  for (const auto& [owner, n] : per_replica) {
    EXPECT_GE(n, kKeys / 10) << owner;
  }

  // replica-3 joins by a config reload (POST /reload after rewriting the file).
  proxy->rewriteConfig(grpcConfig(staticEndpoints(replicas), lb));
  auto reload = adminPost(proxy->adminPort(), "/reload");
  ASSERT_TRUE(reload.ok && reload.status == 200)
      << reload.error << " " << reload.body << "\nbulwark running " << proxy->process().running()
      << ":\n"
      << proxy->process().output();
  ASSERT_TRUE(waitFor([&] { return upstreamHosts(*proxy).size() == 4; }, deadlineIn(5s)));
  auto after = replicaPerKey(proxy->port("public"), keys);

  int moved = 0;
  for (const auto& key : keys) {
    if (after[key] == before[key]) {
      continue;
    }
    ++moved;
    // Consistent hashing: a key only moves to the new replica, never between old ones.
    EXPECT_EQ(after[key], "replica-3") << key << " moved from " << before[key];
  }
  std::cout << "RING_HASH: " << moved << " of " << kKeys << " keys moved to the 4th replica ("
            << 100.0 * moved / kKeys << " %, bound " << 100.0 * (1.0 / 4 + 0.05) << " %)\n";
  EXPECT_GT(moved, 0);
  EXPECT_LE(static_cast<double>(moved) / kKeys, 1.0 / 4 + 0.05);
}

// --- 3. gRPC health checks: NOT_SERVING replica leaves and comes back, no client errors
// -------------

TEST(UpstreamGrpcLbTest, NotServingReplicaStopsGettingCallsWithinTheThresholdAndReturns) {
  constexpr int kIntervalMs = 100;
  constexpr int kUnhealthyThreshold = 2;
  auto replicas = startReplicas(3);
  ASSERT_TRUE(allStarted(replicas, 3));
  auto proxy = startBulwark(
      grpcConfig(staticEndpoints(replicas),
                 "  loadBalancer: {simple: ROUND_ROBIN}\n"
                 "  healthCheck: {grpc: {service: ranking.v1.RankingService}, interval: " +
                     std::to_string(kIntervalMs) + "ms, timeout: 500ms, unhealthyThreshold: " +
                     std::to_string(kUnhealthyThreshold) + ", healthyThreshold: 1}\n"));
  ASSERT_NE(proxy, nullptr);
  auto all_healthy = [&] {
    auto hosts = upstreamHosts(*proxy);
    return hosts.size() == 3 && std::all_of(hosts.begin(), hosts.end(),
                                            [](const auto& h) { return h.second == "healthy"; });
  };
  ASSERT_TRUE(waitFor(all_healthy, deadlineIn(5s)))
      << adminGet(proxy->adminPort(), "/upstreams").body;

  // Calls flow the whole time: an open loop of 300 calls/s (kBackgroundRate) over one
  // connection. The client may have 512 calls in flight, so on a loaded machine its own cap
  // (CLIENT_OVERLOADED) is never what fails a call.
  BackgroundLoad load({"--target", target(*proxy), "--method", "rank", "--tenant", "tenantA",
                       "--limit", "5", "--rate", kBackgroundRate, "--concurrency", "512",
                       "--duration-s", "60"});
  ASSERT_TRUE(load.started());
  const Replica& sick = replicas[1];
  ASSERT_TRUE(waitFor([&] { return rankCalls(sick) > 20; }, deadlineIn(10s)));

  const auto flipped = Clock::now();
  setServing(sick, false);
  ASSERT_TRUE(waitFor([&] { return upstreamHosts(*proxy)[sick.address()] == "unhealthy"; },
                      deadlineIn(5s)));
  const auto detected =
      std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - flipped);
  // The first probe after the flip comes within one (±10 % jittered) interval; each further one
  // an interval later: interval x unhealthyThreshold, plus the jitter, plus slack for the flip's
  // own round trip and the /upstreams polls on a loaded 2-core machine.
  const auto bound = std::chrono::milliseconds(kIntervalMs * kUnhealthyThreshold * 11 / 10 + 300);
  std::cout << "NOT_SERVING detected after " << detected.count()
            << " ms (interval x threshold = " << kIntervalMs * kUnhealthyThreshold << " ms, bound "
            << bound.count() << " ms)\n";
  EXPECT_LE(detected, bound);

  // From now on the sick replica gets nothing while the others keep serving.
  const int64_t frozen = rankCalls(sick);
  const int64_t others = rankCalls(replicas[0]) + rankCalls(replicas[2]);
  ASSERT_TRUE(
      waitFor([&] { return rankCalls(replicas[0]) + rankCalls(replicas[2]) >= others + 150; },
              deadlineIn(10s)));
  EXPECT_EQ(rankCalls(sick), frozen);

  // It recovers, and it is used again.
  const auto recovered_at = Clock::now();
  setServing(sick, true);
  ASSERT_TRUE(waitFor([&] { return rankCalls(sick) > frozen + 20; }, deadlineIn(10s)));
  std::cout
      << "SERVING again: calls back after "
      << std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - recovered_at).count()
      << " ms\n";

  auto report = load.stop();
  std::cout << "health-check run: " << report.value("calls", 0) << " calls, by status "
            << report["status"].dump() << "\n";
  EXPECT_GT(report.value("calls", 0), 300);
  EXPECT_EQ(report.value("errors", -1), 0) << report.dump();
  EXPECT_EQ(metricValue(proxy->adminPort(), "bulwark_downstream_connections_total",
                        {{"listener", "public"}}),
            1.0);
}

// --- 4. DNS: records added and removed under load, no restart, no client errors
// ---------------------

TEST(UpstreamGrpcLbTest, DnsRecordsAddAndRemoveReplicasUnderLoadWithoutClientErrors) {
  DnsServer dns;
  ASSERT_TRUE(dns.ok());
  // DNS gives addresses, not ports: the replicas share one port on 127.0.0.1, .2 and .3.
  std::vector<Replica> replicas;
  replicas.push_back(startReplica("replica-1"));
  ASSERT_NE(replicas[0].port, 0);
  replicas.push_back(startReplica("replica-2", {}, "127.0.0.2", replicas[0].port));
  replicas.push_back(startReplica("replica-3", {}, "127.0.0.3", replicas[0].port));
  ASSERT_TRUE(allStarted(replicas, 3));

  const std::string name = "ranking.bulwark.test";
  dns.setRecords(name, {"127.0.0.1", "127.0.0.2"});
  BulwarkStartOptions options;
  options.env = {{"BULWARK_DNS_SERVER", dns.address()}};
  auto proxy = startBulwark(grpcConfigBuilder()
                                .dnsUpstream("grpc", name, replicas[0].port, "100ms",
                                             "  loadBalancer: {simple: ROUND_ROBIN}\n", "ranking")
                                .route(kGrpcRoute, "/", "all", "ranking")
                                .yaml(),
                            options);
  ASSERT_NE(proxy, nullptr);
  ASSERT_TRUE(waitFor([&] { return upstreamHosts(*proxy).size() == 2; }, deadlineIn(5s)));

  BackgroundLoad load({"--target", target(*proxy), "--method", "rank", "--tenant", "tenantA",
                       "--limit", "5", "--rate", kBackgroundRate, "--concurrency", "512",
                       "--duration-s", "60"});
  ASSERT_TRUE(load.started());
  ASSERT_TRUE(waitFor([&] { return rankCalls(replicas[0]) > 20 && rankCalls(replicas[1]) > 20; },
                      deadlineIn(10s)));
  EXPECT_EQ(rankCalls(replicas[2]), 0);

  // A record appears: the new replica gets calls, without a restart.
  dns.setRecords(name, {"127.0.0.1", "127.0.0.2", "127.0.0.3"});
  ASSERT_TRUE(waitFor([&] { return rankCalls(replicas[2]) > 20; }, deadlineIn(10s)))
      << adminGet(proxy->adminPort(), "/upstreams").body;

  // A record goes: that replica stops getting calls once bulwark dropped the host.
  dns.setRecords(name, {"127.0.0.1", "127.0.0.3"});
  ASSERT_TRUE(waitFor([&] { return upstreamHosts(*proxy).count(replicas[1].address()) == 0; },
                      deadlineIn(5s)))
      << adminGet(proxy->adminPort(), "/upstreams").body;
  const int64_t removed = rankCalls(replicas[1]);
  const int64_t others = rankCalls(replicas[0]) + rankCalls(replicas[2]);
  ASSERT_TRUE(
      waitFor([&] { return rankCalls(replicas[0]) + rankCalls(replicas[2]) >= others + 150; },
              deadlineIn(10s)));
  EXPECT_EQ(rankCalls(replicas[1]), removed);

  auto report = load.stop();
  std::cout << "DNS run: " << report.value("calls", 0) << " calls, by replica "
            << report["replicas"].dump() << ", by status " << report["status"].dump() << "\n";
  EXPECT_EQ(report.value("errors", -1), 0) << report.dump();
  EXPECT_EQ(proxy->process().running(), true);
}

// --- 5. Cancelling a streaming call at the client cancels it at the backend
// -----------------------

TEST(UpstreamGrpcLbTest, ClientCancellingAStreamCancelsItAtTheBackend) {
  auto replicas = startReplicas(1);
  ASSERT_TRUE(allStarted(replicas, 1));
  const Replica& backend = replicas[0];
  // Each one-item page (~50 bytes) is held back ~100 ms: 20 pages would take ~2 s.
  setFault(backend, R"({"slow_body_bytes_per_sec":500})");
  auto proxy = startBulwark(grpcConfig(staticEndpoints(replicas), ""));
  ASSERT_NE(proxy, nullptr);

  auto report =
      runClient({"--target", target(*proxy), "--method", "stream", "--tenant", "tenantA", "--limit",
                 "20", "--page-size", "1", "--cancel-after-pages", "2", "--count", "1"});
  EXPECT_EQ(report["status"].value("CANCELLED", 0), 1) << report.dump();

  // The backend's handler saw its call cancelled (it polls IsCancelled() while holding a page),
  // long before the stream could have ended by itself.
  Json stats;
  ASSERT_TRUE(waitFor(
      [&] {
        stats = replicaStats(backend);
        return stats.value("cancelled_calls", 0) == 1;
      },
      deadlineIn(1500ms)))
      << stats.dump();
  EXPECT_EQ(stats.value("rank_stream_calls", 0), 1);
  EXPECT_LT(stats.value("pages_sent", 0), 6) << stats.dump();
  std::cout << "stream cancelled at the client after 2 pages; backend: " << stats.dump() << "\n";
}

}  // namespace
}  // namespace bulwark::testing
