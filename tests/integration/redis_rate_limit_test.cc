// Route `rateLimit` with `scope: global`: bulwark processes sharing one budget through a real
// redis-server, what each failure mode does while Redis is stopped, killed and restarted, and a
// reload that points at another Redis.

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "tests/integration/bulwark_process.h"
#include "tests/integration/redis_server.h"
#include "tests/support/admin_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/http1_client.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

/** One request of an open-loop run. Thread: value type. */
struct Sent {
  std::string path;
  std::string tenant;
  Clock::time_point sent{};
  Clock::duration latency{};
  int status = 0;  // 0: no response
  std::string reason;
  bool retry_after = false;
};

/** Requests at a fixed rate to `path` on some bulwarks, whatever their answers take. */
struct Stream {
  std::string path;
  double rate = 0;              // requests per second, over all ports
  std::vector<uint16_t> ports;  // spread round robin
  std::string tenant;           // x-tenant-id, if any
  size_t threads = 4;           // blocking clients working through the schedule
};

/**
 * Runs `streams` for `duration`, each request at its scheduled time (open loop: a slow answer
 * delays the next send of that client only, and the schedule catches up). Thread: the caller's;
 * joins its own threads.
 */
std::vector<Sent> runOpenLoop(const std::vector<Stream>& streams, Clock::duration duration) {
  std::mutex mu;
  std::vector<Sent> all;
  std::vector<std::thread> threads;
  const Clock::time_point start = Clock::now() + 50ms;
  for (const Stream& stream : streams) {
    const auto total =
        static_cast<size_t>(stream.rate * std::chrono::duration<double>(duration).count());
    const auto interval = std::chrono::duration_cast<Clock::duration>(
        std::chrono::duration<double>(1.0 / stream.rate));
    for (size_t t = 0; t < stream.threads; ++t) {
      threads.emplace_back([&, stream, t, total, interval] {
        std::map<uint16_t, std::unique_ptr<Http1Client>> clients;
        std::vector<Sent> mine;
        for (size_t i = t; i < total; i += stream.threads) {
          const Clock::time_point due = start + interval * static_cast<int64_t>(i);
          while (Clock::now() < due) {
            std::this_thread::sleep_until(due);  // pacing the load, not waiting for a condition
          }
          const uint16_t port = stream.ports[i % stream.ports.size()];
          auto& client = clients[port];
          if (client == nullptr) {
            client = std::make_unique<Http1Client>(port);
          }
          Headers headers;
          if (!stream.tenant.empty()) {
            headers.emplace_back("x-tenant-id", stream.tenant);
          }
          Sent s;
          s.path = stream.path;
          s.tenant = stream.tenant;
          s.sent = Clock::now();
          auto r = client->request(http1Get(stream.path, headers), deadlineIn(5s));
          s.latency = Clock::now() - s.sent;
          if (r) {
            s.status = r->status;
            s.reason = r->header("x-bulwark-reason").value_or("");
            s.retry_after = r->header("retry-after").has_value();
            if (!r->keep_alive) {
              client->close();
            }
          } else {
            client->close();
          }
          mine.push_back(std::move(s));
        }
        std::lock_guard<std::mutex> lock(mu);
        all.insert(all.end(), mine.begin(), mine.end());
      });
    }
  }
  for (auto& thread : threads) {
    thread.join();
  }
  return all;
}

size_t countIf(const std::vector<Sent>& sent, const std::function<bool(const Sent&)>& pred) {
  return static_cast<size_t>(std::count_if(sent.begin(), sent.end(), pred));
}

class GlobalRateLimitTest : public ::testing::Test {
protected:
  void SetUp() override {
    redis_ = RedisServer::start();
    ASSERT_TRUE(redis_);
    upstream_ = FakeUpstream::start();
    ASSERT_TRUE(upstream_);
    upstream_->script().otherwise(respond(200, {}, "ok"));
  }

  std::string config(const std::vector<std::string>& routes,
                     const std::string& redis_address = "") {
    ConfigBuilder builder;
    builder
        .topLevel(
            "redis: {address: " + (redis_address.empty() ? redis_->address() : redis_address) +
            ", timeout: 20ms}\n")
        .listener("http1")
        .upstream("http1", {"127.0.0.1:" + std::to_string(upstream_->port())});
    for (const std::string& r : routes) {
      builder.rawRoute(r);
    }
    return builder.yaml();
  }

  /** Starts `n` bulwarks with `yaml`, each once both its workers reached Redis. */
  static void startInstances(const std::string& yaml, int n,
                             std::vector<std::unique_ptr<BulwarkProcess>>& proxies,
                             std::vector<uint16_t>& ports) {
    for (int i = 0; i < n; ++i) {
      proxies.push_back(startBulwark(yaml));
      ASSERT_TRUE(proxies.back());
      ports.push_back(proxies.back()->port("public"));
      ASSERT_TRUE(waitForMetric(
          proxies.back()->adminPort(), "bulwark_redis_connected", {},
          [](double v) { return v == 2; }, deadlineIn(10s)));
    }
  }

  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<FakeUpstream> upstream_;
};

std::string route(const std::string& name, const std::string& prefix,
                  const std::string& rate_limit) {
  return "- name: " + name + "\n  match: {path: {prefix: " + prefix +
         "}}\n  upstream: backend\n  rateLimit: " + rate_limit + "\n";
}

// Three instances, one limit of 100/s with a burst of 100: 300 requests/s spread over the three
// for 10 s admit 100 x 10 + 100 (within 5 %), and every 429 says when to retry.
TEST_F(GlobalRateLimitTest, ThreeInstancesShareOneLimit) {
  const std::string yaml =
      config({route("api", "/", "{requestsPerSecond: 100, burst: 100, scope: global}")});
  std::vector<std::unique_ptr<BulwarkProcess>> proxies;
  std::vector<uint16_t> ports;
  ASSERT_NO_FATAL_FAILURE(startInstances(yaml, 3, proxies, ports));
  const auto sent = runOpenLoop({{"/api", 300, ports, "", 6}}, 10s);
  ASSERT_EQ(3000u, sent.size());
  const size_t admitted = countIf(sent, [](const Sent& s) { return s.status == 200; });
  const size_t limited = countIf(sent, [](const Sent& s) { return s.status == 429; });
  RecordProperty("admitted", std::to_string(admitted));
  EXPECT_GE(admitted, 950u);
  EXPECT_LE(admitted, 1150u);
  EXPECT_EQ(sent.size(), admitted + limited);
  EXPECT_EQ(limited, countIf(sent, [](const Sent& s) { return s.status == 429 && s.retry_after; }));
  // Every request of every instance was decided in the global scope, and the instances' 429s
  // add up to what the clients saw. Not "each instance limited some": the schedule is periodic,
  // so one instance's requests can land right after every refill and take all the tokens.
  double limited_by_instances = 0;
  for (const auto& proxy : proxies) {
    const auto decisions = fetchMetrics(proxy->adminPort());
    ASSERT_TRUE(decisions);
    const auto count = [&](const char* decision) {
      return decisions
          ->value("bulwark_rate_limit_decisions_total",
                  {{"route", "api"}, {"scope", "global"}, {"decision", decision}})
          .value_or(0);
    };
    EXPECT_EQ(1000, count("allowed") + count("limited") + count("failure_allowed"));
    limited_by_instances += count("limited");
  }
  EXPECT_EQ(static_cast<double>(limited), limited_by_instances);
}

// Per-tenant keys: a loud tenant at 3x its limit is cut to its own limit, a quiet tenant at half
// of its limit gets every request through.
TEST_F(GlobalRateLimitTest, QuietTenantIsUntouchedByALoudOne) {
  const std::string yaml = config({route("api", "/",
                                         "{requestsPerSecond: 100, burst: 100, scope: global, "
                                         "key: {header: x-tenant-id}}")});
  std::vector<std::unique_ptr<BulwarkProcess>> proxies;
  std::vector<uint16_t> ports;
  ASSERT_NO_FATAL_FAILURE(startInstances(yaml, 3, proxies, ports));
  const auto sent =
      runOpenLoop({{"/api", 300, ports, "loud", 6}, {"/api", 50, ports, "quiet", 2}}, 5s);
  const auto of = [&](const std::string& tenant, int status) {
    return countIf(sent, [&](const Sent& s) { return s.tenant == tenant && s.status == status; });
  };
  EXPECT_EQ(250u, of("quiet", 200));
  EXPECT_GE(of("loud", 200), 95u * 5 + 95);
  EXPECT_LE(of("loud", 200), 105u * 5 + 105);
  EXPECT_GT(of("loud", 429), 800u);
}

// Redis stopped for 5 s, then killed, then restarted, under load on three routes that differ
// only in failureMode: allow never fails nor waits beyond the timeout, deny answers 503
// rate_limit_unavailable, local falls back to this instance's share; after the restart the global
// limit is exact again within 2 s.
TEST_F(GlobalRateLimitTest, FailureModesWhileRedisIsStoppedKilledAndRestarted) {
  const std::string yaml = config(
      {route("allow", "/allow", "{requestsPerSecond: 10000, scope: global, failureMode: allow}"),
       route("deny", "/deny", "{requestsPerSecond: 10000, scope: global, failureMode: deny}"),
       route("local", "/local",
             "{requestsPerSecond: 100, burst: 100, scope: global, failureMode: local, "
             "expectedInstances: 2}")});
  auto proxy = startBulwark(yaml);
  ASSERT_TRUE(proxy);
  const uint16_t admin = proxy->adminPort();
  ASSERT_TRUE(waitForMetric(
      admin, "bulwark_redis_connected", {}, [](double v) { return v == 2; }, deadlineIn(10s)));
  const std::vector<uint16_t> ports = {proxy->port("public")};

  // Timeline (from the load's start): 1 s healthy, 5 s stopped, 1 s killed, then restarted.
  std::atomic<int64_t> paused_at{0};
  std::atomic<int64_t> killed_at{0};
  std::atomic<int64_t> restarted_at{0};
  auto stamp = [] { return Clock::now().time_since_epoch().count(); };
  std::thread chaos([&] {
    std::this_thread::sleep_for(1s);  // the schedule of the fault, not a wait for a condition
    ASSERT_TRUE(redis_->pause());
    paused_at = stamp();
    std::this_thread::sleep_for(5s);
    redis_->kill();
    killed_at = stamp();
    std::this_thread::sleep_for(1s);
    ASSERT_TRUE(redis_->restart());
    restarted_at = stamp();
  });
  const auto sent = runOpenLoop(
      {{"/allow", 100, ports, "", 4}, {"/deny", 100, ports, "", 4}, {"/local", 200, ports, "", 4}},
      10s);
  chaos.join();
  ASSERT_NE(0, restarted_at.load());
  const auto at = [](int64_t stamp_value) {
    return Clock::time_point(Clock::duration(stamp_value));
  };
  const Clock::time_point paused = at(paused_at), killed = at(killed_at),
                          restarted = at(restarted_at);

  // allow: every request answered 200, none held for the stopped Redis (5 s) beyond the 20 ms
  // timeout. The p99 bound leaves room for a loaded machine (TSan: 30 ms measured); without the
  // timeout it would be seconds.
  std::vector<Clock::duration> allow_latency;
  for (const Sent& s : sent) {
    if (s.path == "/allow") {
      EXPECT_EQ(200, s.status) << s.reason;
      allow_latency.push_back(s.latency);
    }
  }
  ASSERT_FALSE(allow_latency.empty());
  std::sort(allow_latency.begin(), allow_latency.end());
  const auto p99 = allow_latency[allow_latency.size() * 99 / 100];
  const auto allowed_p99 = 100ms;
  EXPECT_LE(p99, allowed_p99) << std::chrono::duration<double, std::milli>(p99).count() << " ms";

  // deny: while Redis is down (after the first timeouts opened the breaker) every answer is the
  // 503; before and after, every answer is 200.
  // Down: after the first timeouts opened the breaker, and before the restarted server could
  // have been probed (it starts a second after the kill; `restarted` is stamped once it is up).
  const auto down = [&](const Sent& s) {
    return s.sent > paused + 100ms && s.sent < restarted - 200ms;
  };
  // A request sent just before the SIGSTOP may find Redis already stopped: a margin before it.
  const auto up = [&](const Sent& s) { return s.sent < paused - 50ms || s.sent > restarted + 2s; };
  size_t denied = 0;
  for (const Sent& s : sent) {
    if (s.path != "/deny") {
      continue;
    }
    if (down(s)) {
      EXPECT_EQ(503, s.status);
      EXPECT_EQ("rate_limit_unavailable", s.reason);
      denied += s.status == 503 ? 1 : 0;
    } else if (up(s)) {
      EXPECT_EQ(200, s.status) << s.reason;
    }
  }
  EXPECT_GT(denied, 500u);

  // local: while down, this instance's share (50/s, burst 50) applies: about 50 + 50 x 5.9 s
  // of the 200/s offered.
  const size_t local_admitted_down = countIf(
      sent, [&](const Sent& s) { return s.path == "/local" && down(s) && s.status == 200; });
  const double down_seconds = std::chrono::duration<double>(restarted - paused - 300ms).count();
  EXPECT_GE(local_admitted_down, static_cast<size_t>(0.9 * 50 * down_seconds));
  EXPECT_LE(local_admitted_down, static_cast<size_t>(50 + 1.1 * 50 * down_seconds));
  EXPECT_GT(metricValue(admin, "bulwark_rate_limit_decisions_total",
                        {{"route", "local"}, {"scope", "global"}, {"decision", "fallback_limited"}})
                .value_or(0),
            0);

  // After the restart: Redis decides again within 2 s, and from then on /local admits exactly
  // the global 100/s (the restarted Redis starts with a full bucket of 100).
  const Clock::time_point load_end =
      std::max_element(sent.begin(), sent.end(), [](const Sent& a, const Sent& b) {
        return a.sent < b.sent;
      })->sent;
  ASSERT_GT(load_end, restarted + 2s + 500ms);
  const size_t after = countIf(sent, [&](const Sent& s) {
    return s.path == "/local" && s.sent > restarted + 2s && s.status == 200;
  });
  const double after_seconds = std::chrono::duration<double>(load_end - restarted - 2s).count();
  // The bucket refilled to its burst of 100 during the two seconds after the restart.
  EXPECT_GE(after, static_cast<size_t>(0.95 * (100 + 100 * after_seconds) - 100));
  EXPECT_LE(after, static_cast<size_t>(1.05 * (100 + 100 * after_seconds)));
  EXPECT_NE(redis_->cli("--scan --pattern 'bulwark:rl:local:*'"), "");
  (void)killed;
}

// A reload that changes redis.address reconnects to the new server; a downstream connection
// opened before the reload keeps working, and the limit now lives in the new Redis.
TEST_F(GlobalRateLimitTest, ReloadToAnotherRedisReconnects) {
  auto other = RedisServer::start();
  ASSERT_TRUE(other);
  const std::vector<std::string> routes = {
      route("api", "/", "{requestsPerSecond: 1, burst: 10, scope: global}")};
  auto proxy = startBulwark(config(routes));
  ASSERT_TRUE(proxy);
  ASSERT_TRUE(waitForMetric(
      proxy->adminPort(), "bulwark_redis_connected", {}, [](double v) { return v == 2; },
      deadlineIn(10s)));
  Http1Client kept(proxy->port("public"));
  auto before = kept.get("/before");
  ASSERT_TRUE(before) << kept.lastError();
  EXPECT_EQ(200, before->status);
  EXPECT_NE(redis_->cli("--scan --pattern 'bulwark:rl:api:*'"), "");

  proxy->rewriteConfig(config(routes, other->address()));
  auto reload = adminPost(proxy->adminPort(), "/reload");
  ASSERT_EQ(200, reload.status) << reload.body;
  ASSERT_TRUE(waitFor(
      [&] {
        auto ready = adminGet(proxy->adminPort(), "/ready");
        return ready.body.find("[+] redis " + other->address() + " connected on 2 of 2") !=
               std::string::npos;
      },
      deadlineIn(10s)))
      << adminGet(proxy->adminPort(), "/ready").body;
  // /ready counts the process's connected clients: a worker that has not applied the reload yet
  // still holds one to the old server. Every worker has moved once the old server sees no
  // client but redis-cli itself.
  ASSERT_TRUE(waitFor(
      [&] {
        const std::string info = redis_->cli("INFO clients");
        const size_t at = info.find("connected_clients:");
        return at != std::string::npos &&
               std::atoi(info.c_str() + at + std::strlen("connected_clients:")) == 1;
      },
      deadlineIn(10s)))
      << redis_->cli("CLIENT LIST");
  redis_->kill();  // the old server is no longer needed
  auto after = kept.get("/after");
  ASSERT_TRUE(after) << kept.lastError();
  EXPECT_EQ(200, after->status);
  EXPECT_NE(other->cli("--scan --pattern 'bulwark:rl:api:*'"), "");
  EXPECT_EQ(0, metricValue(proxy->adminPort(), "bulwark_rate_limit_decisions_total",
                           {{"route", "api"}, {"scope", "global"}, {"decision", "failure_allowed"}})
                   .value_or(-1));
}

}  // namespace
}  // namespace bulwark::testing
