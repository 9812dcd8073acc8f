// Life cycle of the real bulwark binary: graceful drain on SIGTERM / SIGINT / POST
// /drain (in-flight requests finish, /ready turns 503, new connections are refused once
// drain.minDuration passed, HTTP/2 GOAWAY and HTTP/1.1 Connection: close, exit 0), the drain
// timeout, config reload by SIGHUP and POST /reload under load (no request lost, in-flight
// requests finish on their old config), invalid reloads (old config keeps serving, failures
// counted), and the exit codes of `bulwark check`.

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <mutex>
#include <thread>

#include <gtest/gtest.h>

#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/http1_client.h"
#include "tests/support/http2_client.h"
#include "tests/support/socket_util.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

/** What a lifecycle test config varies. Thread: value type. */
struct ConfigOptions {
  std::string listener_protocol = "auto";
  std::string backend_address;
  std::string backend_protocol = "http1";
  /** Extra YAML lines for the backend upstream map (indented as its entries). */
  std::string backend_extra;
  std::string min_duration = "0s";
  std::string drain_timeout = "10s";
  /** Optional second upstream "fresh" with a route "fresh" on /fresh, matched before "all". */
  std::string fresh_address;
};

std::string lifecycleConfig(const ConfigOptions& o) {
  ConfigBuilder builder;
  builder.drain(o.min_duration, o.drain_timeout)
      .listener(o.listener_protocol)
      .upstream(o.backend_protocol, {o.backend_address}, o.backend_extra);
  if (!o.fresh_address.empty()) {
    builder.upstream("http1", {o.fresh_address}, "", "fresh").route("", "/fresh", "fresh", "fresh");
  }
  return builder.route("  timeouts: {request: 30s}\n").yaml();
}

std::unique_ptr<FakeUpstream> namedUpstream(const std::string& name,
                                            Protocol protocol = Protocol::Http1) {
  return FakeUpstream::start(FakeUpstreamOptions().withProtocol(protocol).withName(name));
}

/** True when a TCP connect to the port is refused (nothing accepts there any more). */
bool connectRefused(uint16_t port) {
  Http1Client probe(port);
  return !probe.connect(deadlineIn(1s));
}

std::string upstreamNameOf(const Http1Response& r) {
  return r.header("x-upstream-name").value_or("?");
}

// ---------------------------------------------------------------------------------------------
// Drain

// 200 slow requests in flight, then SIGTERM: every one completes with 200,
// /ready answers 503 while draining, new connections are refused once the listeners close, and
// the process exits 0.
TEST(LifecycleTest, SigtermFinishesTwoHundredSlowRequestsAndExitsZero) {
  constexpr int kRequests = 200;
  auto upstream = namedUpstream("a");
  upstream->script().forPath("/slow", respond(200, {}, "slow done").withDelay(1500ms));
  ConfigOptions o;
  o.backend_address = upstream->address();
  o.min_duration = "200ms";
  auto proxy = startBulwark(lifecycleConfig(o));
  ASSERT_TRUE(proxy);
  const uint16_t port = proxy->port("public");

  // An idle keep-alive connection: drain must close it, it has nothing in flight.
  Http1Client idle(port);
  ASSERT_TRUE(idle.get("/warm")) << idle.lastError();

  std::vector<std::unique_ptr<Http1Client>> clients;
  for (int i = 0; i < kRequests; ++i) {
    clients.push_back(std::make_unique<Http1Client>(port));
    ASSERT_TRUE(clients.back()->sendRequest(http1Get("/slow?i=" + std::to_string(i))))
        << clients.back()->lastError();
  }
  ASSERT_TRUE(waitFor([&] { return upstream->activeStreams() == kRequests; }, deadlineIn(5s)))
      << "in flight at the upstream: " << upstream->activeStreams();

  ASSERT_TRUE(proxy->process().signal(SIGTERM));
  EXPECT_TRUE(waitForAdminStatus(proxy->adminPort(), "/ready", 503, deadlineIn(1s)));
  auto ready = adminGet(proxy->adminPort(), "/ready");
  EXPECT_NE(std::string::npos, ready.body.find("[-] not draining")) << ready.body;
  EXPECT_EQ(1, metricValue(proxy->adminPort(), "bulwark_server_state", {{"state", "draining"}}));
  // After drain.minDuration the listeners close: new connections are refused while the 200
  // requests are still in flight (the upstream holds them for 1.5 s).
  EXPECT_TRUE(waitFor([&] { return connectRefused(port); }, deadlineIn(1s)));
  EXPECT_GT(upstream->activeStreams(), 0u) << "the refusal check came too late to mean anything";
  EXPECT_TRUE(idle.waitForClose(deadlineIn(1s)))
      << "an idle keep-alive connection stays open during drain";

  int ok = 0;
  for (int i = 0; i < kRequests; ++i) {
    auto r = clients[i]->readResponse(deadlineIn(5s));
    ASSERT_TRUE(r) << "request " << i << ": " << clients[i]->lastError();
    EXPECT_EQ(200, r->status) << "request " << i;
    EXPECT_EQ("slow done", r->body) << "request " << i;
    EXPECT_FALSE(r->keep_alive) << "request " << i
                                << ": a draining HTTP/1.1 response carries Connection: close";
    ok += r->status == 200 ? 1 : 0;
  }
  EXPECT_EQ(kRequests, ok);

  EXPECT_EQ(0, proxy->waitForExit(5s)) << "bulwark did not exit cleanly after the drain\n"
                                       << proxy->process().output();
}

// HTTP/2: SIGTERM sends GOAWAY; the streams already open complete; the connection then closes.
TEST(LifecycleTest, SigtermSendsGoAwayAndFinishesOpenHttp2Streams) {
  constexpr int kStreams = 50;
  auto upstream = namedUpstream("a");
  upstream->script().forPath("/slow", respond(200, {}, "slow done").withDelay(1000ms));
  ConfigOptions o;
  o.backend_address = upstream->address();
  auto proxy = startBulwark(lifecycleConfig(o));
  ASSERT_TRUE(proxy);

  Http2Client client(proxy->port("public"));
  ASSERT_TRUE(client.connect()) << client.lastError();
  std::vector<int32_t> ids;
  for (int i = 0; i < kStreams; ++i) {
    ids.push_back(client.submit(http2Get("/slow")));
  }
  ASSERT_TRUE(
      client.runUntil([&] { return upstream->activeStreams() == kStreams; }, deadlineIn(5s)))
      << "in flight at the upstream: " << upstream->activeStreams();

  ASSERT_TRUE(proxy->process().signal(SIGTERM));
  ASSERT_TRUE(client.waitForGoAway(deadlineIn(2s)));
  EXPECT_EQ(0u, client.goAwayErrorCode());
  EXPECT_GE(client.goAwayLastStreamId(), ids.back())
      << "GOAWAY must not exclude streams already accepted";
  ASSERT_TRUE(client.waitForResponses(ids, deadlineIn(5s)));
  for (int32_t id : ids) {
    const auto& r = client.response(id);
    EXPECT_EQ(200, r.status) << "stream " << id;
    EXPECT_TRUE(r.complete) << "stream " << id << " error " << r.error_code;
    EXPECT_EQ("slow done", r.body) << "stream " << id;
  }
  EXPECT_TRUE(client.waitForClose(deadlineIn(2s)));
  auto code = proxy->stop(SIGTERM, 5s);  // already draining: a second SIGTERM is harmless
  ASSERT_TRUE(code);
  EXPECT_EQ(0, *code) << proxy->process().output();
}

// During drain.minDuration bulwark still accepts and serves (load balancers are still sending
// while they notice /ready). The order: /ready 503, wait minDuration, then stop accepting
// and close keep-alive connections (Connection: close / GOAWAY).
TEST(LifecycleTest, DrainMinDurationKeepsServingThenClosesAndRefuses) {
  auto upstream = namedUpstream("a");
  ConfigOptions o;
  o.backend_address = upstream->address();
  o.min_duration = "2s";
  auto proxy = startBulwark(lifecycleConfig(o));
  ASSERT_TRUE(proxy);
  const uint16_t port = proxy->port("public");

  const auto sigterm = Clock::now();
  ASSERT_TRUE(proxy->process().signal(SIGTERM));
  ASSERT_TRUE(waitForAdminStatus(proxy->adminPort(), "/ready", 503, deadlineIn(1s)));
  Http1Client late(port);
  auto r = late.get("/late", {}, deadlineIn(2s));
  ASSERT_TRUE(r) << late.lastError();
  EXPECT_EQ(200, r->status);
  ASSERT_LT(Clock::now() - sigterm, 1800ms) << "too slow to observe drain.minDuration";

  // After minDuration the idle keep-alive connection is closed and the port refuses.
  EXPECT_TRUE(late.waitForClose(deadlineIn(4s)));
  // (epoll timers have millisecond granularity and may fire a hair early.)
  EXPECT_GE(Clock::now() - sigterm, 1950ms) << "closed before drain.minDuration passed";
  // Each worker closes its own listener socket; they get there within moments of each other.
  EXPECT_TRUE(waitFor([&] { return connectRefused(port); }, deadlineIn(1s)));

  EXPECT_EQ(0, proxy->waitForExit(5s)) << proxy->process().output();
}

// Connections the kernel accepted while bulwark could not (stopped here with SIGSTOP; a busy
// worker or a handover in practice) sit in the listen queue with their requests sent when the
// drain starts. Closing the listener would reset them: each is taken and answered instead.
TEST(LifecycleTest, DrainAnswersConnectionsQueuedInTheListenBacklog) {
  auto upstream = namedUpstream("a");
  ConfigOptions o;
  o.backend_address = upstream->address();
  auto proxy = startBulwark(lifecycleConfig(o));
  ASSERT_TRUE(proxy);
  const uint16_t port = proxy->port("public");

  ASSERT_TRUE(proxy->process().signal(SIGSTOP));
  constexpr int kQueued = 20;
  std::vector<int> fds;
  for (int i = 0; i < kQueued; ++i) {
    std::string error;
    const int fd = connectTcp("127.0.0.1", port, deadlineIn(2s), &error);
    ASSERT_GE(fd, 0) << error;
    fds.push_back(fd);
    const std::string request =
        "GET /queued/" + std::to_string(i) + " HTTP/1.1\r\nHost: svc\r\n\r\n";
    ASSERT_TRUE(sendAll(fd, request, deadlineIn(2s), &error)) << error;
  }
  ASSERT_TRUE(proxy->process().signal(SIGTERM));
  ASSERT_TRUE(proxy->process().signal(SIGCONT));

  int answered = 0;
  for (int fd : fds) {
    std::string got;
    char buf[4096];
    for (;;) {
      const RecvResult r = recvSome(fd, buf, sizeof(buf), deadlineIn(5s));
      if (r.n <= 0) {
        break;
      }
      got.append(buf, static_cast<size_t>(r.n));
    }
    ::close(fd);
    if (got.rfind("HTTP/1.1 200 ", 0) == 0) {
      ++answered;
    } else {
      ADD_FAILURE() << "a queued request got: " << (got.empty() ? "(nothing)" : got);
    }
  }
  EXPECT_EQ(kQueued, answered);
  EXPECT_EQ(0, proxy->waitForExit(10s)) << proxy->process().output();
}

// drain.timeout bounds the drain: a request that never finishes does not keep the process
// alive, and the forced exit is still clean (no crash tearing down live streams).
TEST(LifecycleTest, DrainTimeoutExitsWithARequestStillInFlight) {
  auto upstream = namedUpstream("a");
  upstream->script().forPath("/hang", hang());
  ConfigOptions o;
  o.backend_address = upstream->address();
  o.drain_timeout = "300ms";
  auto proxy = startBulwark(lifecycleConfig(o));
  ASSERT_TRUE(proxy);

  Http1Client h1(proxy->port("public"));
  ASSERT_TRUE(h1.sendRequest(http1Get("/hang")));
  Http2Client h2(proxy->port("public"));
  ASSERT_TRUE(h2.connect()) << h2.lastError();
  int32_t id = h2.submit(http2Get("/hang"));
  ASSERT_TRUE(h2.runUntil([&] { return upstream->activeStreams() == 2; }, deadlineIn(5s)));

  const auto start = Clock::now();
  ASSERT_TRUE(proxy->process().signal(SIGTERM));
  EXPECT_EQ(0, proxy->waitForExit(5s)) << "drain.timeout did not end the process cleanly\n"
                                       << proxy->process().output();
  EXPECT_LT(Clock::now() - start, 3s);
  EXPECT_TRUE(h1.waitForClose(deadlineIn(1s)));
  EXPECT_TRUE(h2.waitForResponse(id, deadlineIn(1s)));
  EXPECT_FALSE(h2.response(id).complete);
}

TEST(LifecycleTest, SigintDrainsLikeSigterm) {
  auto upstream = namedUpstream("a");
  upstream->script().forPath("/slow", respond(200, {}, "slow done").withDelay(300ms));
  ConfigOptions o;
  o.backend_address = upstream->address();
  auto proxy = startBulwark(lifecycleConfig(o));
  ASSERT_TRUE(proxy);
  Http1Client client(proxy->port("public"));
  ASSERT_TRUE(client.sendRequest(http1Get("/slow")));
  ASSERT_TRUE(upstream->waitForConnections(1));
  ASSERT_TRUE(waitFor([&] { return upstream->activeStreams() == 1; }));
  ASSERT_TRUE(proxy->process().signal(SIGINT));
  auto r = client.readResponse(deadlineIn(3s));
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);
  EXPECT_EQ("slow done", r->body);
  EXPECT_EQ(0, proxy->waitForExit(5s)) << proxy->process().output();
}

// POST /drain from loopback starts the same drain; with nothing in flight the process exits 0.
// (The refusal for non-loopback peers: AdminLoopbackTest in admin_test.cc.)
TEST(LifecycleTest, PostDrainFromLoopbackDrainsAndExits) {
  auto upstream = namedUpstream("a");
  upstream->script().forPath("/slow", respond(200, {}, "slow done").withDelay(300ms));
  ConfigOptions o;
  o.backend_address = upstream->address();
  auto proxy = startBulwark(lifecycleConfig(o));
  ASSERT_TRUE(proxy);
  Http1Client client(proxy->port("public"));
  ASSERT_TRUE(client.sendRequest(http1Get("/slow")));
  ASSERT_TRUE(waitFor([&] { return upstream->activeStreams() == 1; }));

  auto drain = adminPost(proxy->adminPort(), "/drain");
  ASSERT_TRUE(drain.ok) << drain.error;
  EXPECT_EQ(200, drain.status) << drain.body;
  EXPECT_EQ(503, adminGet(proxy->adminPort(), "/ready").status);
  auto r = client.readResponse(deadlineIn(3s));
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);
  EXPECT_FALSE(r->keep_alive);
  EXPECT_EQ(0, proxy->waitForExit(5s)) << proxy->process().output();
}

// A response bulwark has wholly received but not yet written to a slow client when the drain
// starts must still reach the client: with exitOnZeroActive bulwark exits once its connections
// are closed (closing flushes them), not as soon as no stream is active. The body is sized to
// outgrow the kernel's loopback socket buffers, so part of it waits in bulwark's output buffer,
// yet stay under the connection's high watermark, so the stream can end.
TEST(LifecycleTest, DrainDeliversResponseBytesStillBufferedForASlowReader) {
  constexpr uint64_t kBody = 5 << 19;  // 2.5 MiB
  auto upstream = namedUpstream("a");
  upstream->script().forPath("/big", respondGenerated(200, kBody));
  ConfigOptions o;
  o.backend_address = upstream->address();
  auto proxy = startBulwark(lifecycleConfig(o));
  ASSERT_TRUE(proxy);

  Http1Client slow(proxy->port("public"));
  slow.setReceiveBufferSize(4096);
  ASSERT_TRUE(slow.sendRequest(http1Get("/big")));
  ASSERT_TRUE(waitFor([&] { return upstream->bodyBytesSent() == kBody; }, deadlineIn(5s)));
  // The stream must end with bytes still buffered for the reader; if it cannot (kernel buffers
  // far from what this test was sized for), the case proves nothing and the test says so.
  ASSERT_TRUE(waitForMetric(
      proxy->adminPort(), "bulwark_requests_active", {}, [](double v) { return v == 0; },
      deadlineIn(5s)))
      << "the response's stream did not end: 2.5 MiB does not fit bulwark's buffers and the "
         "kernel's here, so nothing is left buffered when the drain starts";
  ASSERT_TRUE(proxy->process().signal(SIGTERM));
  // What is proven is an absence (no exit while bytes are buffered), which no event announces:
  // this gives a premature exit (at the first 20 ms drain poll) ample time to happen and cut the
  // buffered bytes. It cannot fail by itself; the read below does.
  (void)waitFor([&] { return !proxy->process().running(); }, deadlineIn(300ms));
  Http1ReadOptions discard;
  discard.discard_body = true;
  auto r = slow.readResponse(deadlineIn(5s), discard);
  ASSERT_TRUE(r) << slow.lastError();
  EXPECT_TRUE(r->complete) << r->error;
  EXPECT_EQ(kBody, r->body_bytes);
  EXPECT_TRUE(r->body_matches_pattern);
  EXPECT_EQ(0, proxy->waitForExit(5s)) << proxy->process().output();
}

// ---------------------------------------------------------------------------------------------
// Reload

/**
 * Requests in a loop on several client threads (HTTP/1.1 keep-alive, HTTP/1.1 with a new
 * connection each time, h2c multiplexed) until stopped; records every failure and which
 * upstream answered last. Thread: the test thread owns it; the loops run on their threads.
 */
class LoadLoop {
public:
  explicit LoadLoop(uint16_t port) : port_(port) {
    threads_.emplace_back([this] { http1Loop(/*reuse=*/true); });
    threads_.emplace_back([this] { http1Loop(/*reuse=*/false); });
    threads_.emplace_back([this] { http2Loop(); });
  }
  ~LoadLoop() { stop(); }

  void stop() {
    stop_ = true;
    for (auto& t : threads_) {
      if (t.joinable()) {
        t.join();
      }
    }
  }
  uint64_t succeeded() const { return succeeded_.load(); }
  std::vector<std::string> failures() {
    std::lock_guard lock(mu_);
    return failures_;
  }

private:
  void fail(const std::string& what) {
    std::lock_guard lock(mu_);
    if (failures_.size() < 20) {
      failures_.push_back(what);
    }
  }
  void http1Loop(bool reuse) {
    auto client = std::make_unique<Http1Client>(port_);
    for (uint64_t i = 0; !stop_; ++i) {
      if (!reuse) {
        client = std::make_unique<Http1Client>(port_);
      }
      auto r = client->get("/load", {}, deadlineIn(5s));
      if (!r) {
        fail("h1 request " + std::to_string(i) + ": " + client->lastError());
        client = std::make_unique<Http1Client>(port_);
      } else if (r->status != 200) {
        fail("h1 request " + std::to_string(i) + ": status " + std::to_string(r->status) + " " +
             r->body);
      } else {
        ++succeeded_;
      }
    }
  }
  void http2Loop() {
    Http2Client client(port_);
    if (!client.connect()) {
      fail("h2 connect: " + client.lastError());
      return;
    }
    for (uint64_t i = 0; !stop_; ++i) {
      std::vector<int32_t> ids;
      for (int s = 0; s < 8; ++s) {
        ids.push_back(client.submit(http2Get("/load")));
      }
      if (!client.waitForResponses(ids, deadlineIn(5s))) {
        fail("h2 batch " + std::to_string(i) + ": timeout " + client.lastError());
        return;
      }
      for (int32_t id : ids) {
        const auto& r = client.response(id);
        if (r.status != 200 || !r.complete) {
          fail("h2 stream " + std::to_string(id) + ": status " + std::to_string(r.status) +
               " error " + std::to_string(r.error_code));
        } else {
          ++succeeded_;
        }
      }
    }
  }

  uint16_t port_;
  std::atomic<bool> stop_{false};
  std::atomic<uint64_t> succeeded_{0};
  std::mutex mu_;
  std::vector<std::string> failures_;  // guarded by mu_
  std::vector<std::thread> threads_;
};

/** Waits until a fresh request to `path` is answered by the upstream named `name`. */
bool waitForUpstream(uint16_t port, const std::string& path, const std::string& name,
                     Deadline deadline) {
  return waitFor(
      [&] {
        Http1Client c(port);
        auto r = c.get(path, {}, deadlineIn(1s));
        return r && r->status == 200 && upstreamNameOf(*r) == name;
      },
      deadline);
}

// A reload under load loses no request. Ten reloads, alternating SIGHUP and
// POST /reload, each moving the backend between two upstreams (a new Upstream object each time:
// the old pools drain while the loops keep sending), the last one adding a route.
TEST(LifecycleTest, ReloadUnderLoadLosesNoRequestAndAppliesTheNewConfig) {
  auto a = namedUpstream("a");
  auto b = namedUpstream("b");
  auto fresh = namedUpstream("fresh");
  ConfigOptions o;
  o.backend_address = a->address();
  auto proxy = startBulwark(lifecycleConfig(o));
  ASSERT_TRUE(proxy);
  const uint16_t port = proxy->port("public");

  LoadLoop load(port);
  ASSERT_TRUE(waitFor([&] { return load.succeeded() > 50; }, deadlineIn(5s)));
  constexpr int kReloads = 10;
  for (int i = 0; i < kReloads; ++i) {
    const bool to_b = i % 2 == 0;
    o.backend_address = to_b ? b->address() : a->address();
    if (i == kReloads - 1) {
      o.fresh_address = fresh->address();
    }
    proxy->rewriteConfig(lifecycleConfig(o));
    if (i % 2 == 0) {
      ASSERT_TRUE(proxy->process().signal(SIGHUP));
    } else {
      auto r = adminPost(proxy->adminPort(), "/reload");
      ASSERT_TRUE(r.ok) << r.error;
      ASSERT_EQ(200, r.status) << r.body;
    }
    ASSERT_TRUE(waitForUpstream(port, "/probe", to_b ? "b" : "a", deadlineIn(3s)))
        << "reload " << i << " running " << proxy->process().running() << "\n"
        << proxy->process().output();
    const uint64_t before = load.succeeded();
    ASSERT_TRUE(waitFor([&] { return load.succeeded() > before + 200; }, deadlineIn(5s)))
        << "reload " << i << " running " << proxy->process().running() << "\n"
        << proxy->process().output();
  }
  load.stop();

  EXPECT_TRUE(load.failures().empty()) << ::testing::PrintToString(load.failures());
  EXPECT_GT(load.succeeded(), 2000u);
  EXPECT_GT(b->requestCount(), 0u);
  // The route added by the last reload is live, the others still go to the backend.
  EXPECT_TRUE(waitForUpstream(port, "/fresh/x", "fresh", deadlineIn(2s)));
  EXPECT_TRUE(waitForUpstream(port, "/other", "a", deadlineIn(2s)));
  EXPECT_EQ(kReloads, metricValue(proxy->adminPort(), "bulwark_config_reloads_total",
                                  {{"result", "success"}}));
  EXPECT_EQ(0, metricValue(proxy->adminPort(), "bulwark_config_reload_failures_total"));
  auto code = proxy->stop(SIGTERM);
  ASSERT_TRUE(code);
  EXPECT_EQ(0, *code);
}

// In-flight requests finish on the snapshot they started with: a reload that replaces the
// backend's endpoints must not cut requests still waiting on the old upstream.
class ReloadInFlightTest : public ::testing::TestWithParam<Protocol> {};

TEST_P(ReloadInFlightTest, RequestsFinishOnTheOldConfigAcrossReload) {
  constexpr int kRequests = 20;
  auto a = namedUpstream("a", GetParam());
  auto b = namedUpstream("b", GetParam());
  a->script().forPath("/slow", respond(200, {}, "old").withDelay(700ms));
  ConfigOptions o;
  o.backend_address = a->address();
  o.backend_protocol = GetParam() == Protocol::Http2 ? "http2" : "http1";
  auto proxy = startBulwark(lifecycleConfig(o));
  ASSERT_TRUE(proxy);
  const uint16_t port = proxy->port("public");

  std::vector<std::unique_ptr<Http1Client>> clients;
  for (int i = 0; i < kRequests; ++i) {
    clients.push_back(std::make_unique<Http1Client>(port));
    ASSERT_TRUE(clients.back()->sendRequest(http1Get("/slow")));
  }
  Http2Client h2(port);
  ASSERT_TRUE(h2.connect()) << h2.lastError();
  std::vector<int32_t> ids;
  for (int i = 0; i < kRequests; ++i) {
    ids.push_back(h2.submit(http2Get("/slow")));
  }
  ASSERT_TRUE(h2.runUntil([&] { return a->activeStreams() == 2 * kRequests; }, deadlineIn(5s)));

  o.backend_address = b->address();
  proxy->rewriteConfig(lifecycleConfig(o));
  auto reload = adminPost(proxy->adminPort(), "/reload");
  ASSERT_TRUE(reload.ok) << reload.error;
  ASSERT_EQ(200, reload.status) << reload.body;
  ASSERT_TRUE(waitForUpstream(port, "/probe", "b", deadlineIn(2s)));

  ASSERT_TRUE(h2.waitForResponses(ids, deadlineIn(5s)));
  for (int32_t id : ids) {
    EXPECT_EQ(200, h2.response(id).status)
        << "stream " << id << " error " << h2.response(id).error_code;
    EXPECT_EQ("old", h2.response(id).body);
  }
  for (int i = 0; i < kRequests; ++i) {
    auto r = clients[i]->readResponse(deadlineIn(5s));
    ASSERT_TRUE(r) << "request " << i << ": " << clients[i]->lastError();
    EXPECT_EQ(200, r->status) << "request " << i << ": " << r->body;
    EXPECT_EQ("old", r->body);
  }
  EXPECT_EQ(2u * kRequests, a->requestCount());
  // Once they are done the retired upstream's pools go, closing their idle connections.
  EXPECT_TRUE(waitFor([&] { return a->connectionCount() == 0; }, deadlineIn(2s)))
      << a->connectionCount() << " connections to the replaced upstream stay open";
}

INSTANTIATE_TEST_SUITE_P(UpstreamProtocols, ReloadInFlightTest,
                         ::testing::Values(Protocol::Http1, Protocol::Http2),
                         [](const ::testing::TestParamInfo<Protocol>& info) {
                           return info.param == Protocol::Http2 ? "Http2" : "Http1";
                         });

// Many reloads that replace the backend do not pile up pools, connections or descriptors.
TEST(LifecycleTest, RepeatedReloadsReleaseReplacedUpstreams) {
  auto a = namedUpstream("a");
  auto b = namedUpstream("b");
  ConfigOptions o;
  o.backend_address = a->address();
  auto proxy = startBulwark(lifecycleConfig(o));
  ASSERT_TRUE(proxy);
  const uint16_t port = proxy->port("public");
  Http1Client client(port);
  ASSERT_TRUE(client.get("/warm"));
  auto switchTo = [&](FakeUpstream& to) {
    o.backend_address = to.address();
    proxy->rewriteConfig(lifecycleConfig(o));
    auto r = adminPost(proxy->adminPort(), "/reload");
    ASSERT_EQ(200, r.status) << r.body;
    ASSERT_TRUE(waitFor(
        [&] {
          auto resp = client.get("/x", {}, deadlineIn(1s));
          return resp && resp->status == 200 && upstreamNameOf(*resp) == to.options().name;
        },
        deadlineIn(2s)));
  };
  ASSERT_NO_FATAL_FAILURE(switchTo(*b));
  ASSERT_NO_FATAL_FAILURE(switchTo(*a));
  const auto fds_before = countOpenFds(proxy->process().pid());
  ASSERT_TRUE(fds_before);
  for (int i = 0; i < 10; ++i) {
    ASSERT_NO_FATAL_FAILURE(switchTo(i % 2 == 0 ? *b : *a));
  }
  // Last switch went to a: nothing may stay connected to b.
  EXPECT_TRUE(waitFor([&] { return b->connectionCount() == 0; }, deadlineIn(2s)))
      << b->connectionCount() << " connections to the replaced upstream stay open";
  EXPECT_TRUE(
      waitFor([&] { return countOpenFds(proxy->process().pid()).value_or(0) <= *fds_before + 2; },
              deadlineIn(2s)))
      << "fds before " << *fds_before << ", now "
      << countOpenFds(proxy->process().pid()).value_or(0);
  auto code = proxy->stop(SIGTERM);
  ASSERT_TRUE(code);
  EXPECT_EQ(0, *code);
}

// An invalid reload keeps serving. POST /reload answers an error naming the
// problem, SIGHUP is rejected the same way, both are counted, and traffic keeps flowing to the
// old upstream. A later valid reload applies.
TEST(LifecycleTest, InvalidReloadKeepsTheOldConfigServing) {
  auto a = namedUpstream("a");
  auto b = namedUpstream("b");
  ConfigOptions o;
  o.backend_address = a->address();
  auto proxy = startBulwark(lifecycleConfig(o));
  ASSERT_TRUE(proxy);
  const uint16_t port = proxy->port("public");
  Http1Client client(port);
  ASSERT_TRUE(client.get("/before"));

  // Broken YAML pointing at b: nothing of it may apply.
  proxy->rewriteConfig(
      "apiVersion: bulwark.dev/v1alpha1\nkind: ProxyConfig\nlisteners: [\n  upstream: \"" +
      b->address() + "\"\n");
  auto r = adminPost(proxy->adminPort(), "/reload");
  ASSERT_TRUE(r.ok) << r.error;
  EXPECT_EQ(400, r.status);
  EXPECT_NE(std::string::npos, r.body.find("keeping the running config")) << r.body;
  EXPECT_NE(std::string::npos, r.body.find("bulwark.yaml"))
      << "the error names the file: " << r.body;
  EXPECT_EQ(1, metricValue(proxy->adminPort(), "bulwark_config_reload_failures_total"));
  EXPECT_EQ(0, metricValue(proxy->adminPort(), "bulwark_config_last_reload_successful"));

  // A schema error (valid YAML): unknown field.
  o.backend_address = b->address();
  proxy->rewriteConfig(lifecycleConfig(o) + "bogusField: 1\n");
  ASSERT_TRUE(proxy->process().signal(SIGHUP));
  EXPECT_TRUE(waitForMetric(
      proxy->adminPort(), "bulwark_config_reload_failures_total", {},
      [](double v) { return v == 2; }, deadlineIn(2s)));
  EXPECT_TRUE(proxy->process().waitForLine("reload rejected", deadlineIn(2s)))
      << proxy->process().output();

  for (int i = 0; i < 5; ++i) {
    auto resp = client.get("/after-" + std::to_string(i));
    ASSERT_TRUE(resp) << client.lastError();
    EXPECT_EQ(200, resp->status);
    EXPECT_EQ("a", upstreamNameOf(*resp));
  }
  Http1Client fresh_connection(port);
  auto resp = fresh_connection.get("/after-new-connection");
  ASSERT_TRUE(resp) << fresh_connection.lastError();
  EXPECT_EQ("a", upstreamNameOf(*resp));
  auto config = adminGet(proxy->adminPort(), "/config");
  EXPECT_NE(std::string::npos, config.body.find(a->address()));
  EXPECT_EQ(std::string::npos, config.body.find(b->address()));
  EXPECT_EQ(0u, b->requestCount());
  EXPECT_EQ(200, adminGet(proxy->adminPort(), "/ready").status);

  // Changing a listener's address needs a restart: rejected, counted, old config kept.
  std::string moved = lifecycleConfig(o);
  moved.replace(moved.find("address: 127.0.0.1:0\n  protocol"),
                std::string("address: 127.0.0.1:0").size(), "address: 127.0.0.1:1");
  proxy->rewriteConfig(moved);
  auto moved_reload = adminPost(proxy->adminPort(), "/reload");
  EXPECT_EQ(400, moved_reload.status) << moved_reload.body;
  EXPECT_EQ(3, metricValue(proxy->adminPort(), "bulwark_config_reload_failures_total"));

  // Then a valid file applies.
  proxy->rewriteConfig(lifecycleConfig(o));
  auto good = adminPost(proxy->adminPort(), "/reload");
  EXPECT_EQ(200, good.status) << good.body;
  EXPECT_TRUE(waitForUpstream(port, "/next", "b", deadlineIn(2s)));
  EXPECT_EQ(1, metricValue(proxy->adminPort(), "bulwark_config_last_reload_successful"));
  EXPECT_EQ(3, metricValue(proxy->adminPort(), "bulwark_config_reload_failures_total"));
}

// ---------------------------------------------------------------------------------------------
// Upstream connection life cycle

// Proves connections retired by maxRequestsPerConnection close cleanly (ConnPool used to erase
// from its client list while walking it: SIGSEGV on the first request).
TEST(LifecycleTest, MaxRequestsPerConnectionRetiresConnectionsWithoutCrashing) {
  auto upstream = namedUpstream("a");
  ConfigOptions o;
  o.backend_address = upstream->address();
  o.backend_extra = "  connectionPool: {http: {maxRequestsPerConnection: 1}}\n";
  auto proxy = startBulwark(lifecycleConfig(o));
  ASSERT_TRUE(proxy);
  Http1Client client(proxy->port("public"));
  for (int i = 0; i < 5; ++i) {
    auto r = client.get("/x/" + std::to_string(i));
    ASSERT_TRUE(r) << "request " << i << ": " << client.lastError();
    EXPECT_EQ(200, r->status);
  }
  EXPECT_EQ(5u, upstream->totalConnections()) << "one upstream connection per request";
  auto code = proxy->stop(SIGTERM);
  ASSERT_TRUE(code) << "bulwark did not exit";
  EXPECT_EQ(0, *code) << "negative: killed by that signal";
}

// ---------------------------------------------------------------------------------------------
// bulwark check

std::optional<int> runCheck(const std::vector<std::string>& args) {
  return runBulwarkCli(args).code;
}

TEST(LifecycleTest, CheckExitCodesAreZeroValidOneInvalidTwoUnreadable) {
  ConfigOptions o;
  o.backend_address = "127.0.0.1:9";
  const std::string valid = writeTempFile("valid.yaml", lifecycleConfig(o));
  const std::string invalid = writeTempFile("invalid.yaml", lifecycleConfig(o) + "bogusField: 1\n");
  const std::string broken = writeTempFile("broken.yaml", "listeners: [\n");
  EXPECT_EQ(0, runCheck({"check", "-c", valid}));
  EXPECT_EQ(1, runCheck({"check", "-c", invalid}));
  EXPECT_EQ(1, runCheck({"check", "-c", broken}));
  EXPECT_EQ(2, runCheck({"check", "-c", valid + ".does-not-exist"}));
  EXPECT_EQ(0, runCheck({"check", "-c", valid, "--output", "json"}));
  EXPECT_EQ(1, runCheck({"check", "-c", invalid, "--output", "json"}));
  // `run` refuses an invalid file before binding anything, with the same codes.
  EXPECT_EQ(1, runCheck({"run", "-c", invalid}));
  EXPECT_EQ(2, runCheck({"run", "-c", valid + ".does-not-exist"}));
}

}  // namespace
}  // namespace bulwark::testing
