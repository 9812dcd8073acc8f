// bulwark-loadgen against real loopback peers (tests/support FakeUpstream): the measurements
// the scenarios rely on. Each run is at most ~1.5 s of schedule.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "bench/loadgen/generator.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/grpc_codec.h"

namespace bulwark::bench {
namespace {

using namespace std::chrono_literals;
using testing::FakeUpstream;
using testing::GrpcStatus;
using testing::Protocol;
using testing::ReceivedRequest;
using testing::respond;
using testing::respondGrpc;
using testing::Response;

LoadgenOptions optionsFor(const std::string& address, const char* phase) {
  LoadgenOptions o;
  o.targets = {*parseTarget(address)};
  o.phases = {*parsePhase(phase)};
  o.quiet = true;
  return o;
}

RequestTemplate requestFor(const char* name, const char* path) {
  RequestTemplate t;
  t.name = name;
  t.path = path;
  return t;
}

Report run(const LoadgenOptions& options) {
  auto report = LoadGenerator(options).run();
  EXPECT_TRUE(report.isOk()) << report.error();
  return report.isOk() ? std::move(*report) : Report{};
}

double ms(double us) { return us / 1000.0; }

const Stats& byRequest(const Report& r, const std::string& name) {
  for (const auto& [n, s] : r.by_request) {
    if (n == name) {
      return s;
    }
  }
  static const Stats kEmpty;
  ADD_FAILURE() << "no by_request entry " << name;
  return kEmpty;
}

// A bound socket that does not listen: connecting to its port is refused, and holding it keeps
// another test from taking the port.
class RefusingPort {
public:
  RefusingPort() {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    EXPECT_EQ(0, ::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof(a)));
    socklen_t len = sizeof(a);
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port_ = ntohs(a.sin_port);
  }
  ~RefusingPort() { ::close(fd_); }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

// 200 req/s for 1.5 s against a backend answering after 50 ms: exactly 300 requests leave, all
// ok, and the median is the backend's latency. Latency counts from each request's intended send
// time, so a generator starved of CPU (a loaded CI machine) rightly reports more: the median may
// not be lower than the backend's 50 ms, and a wrong clock or unit would put it far above.
TEST(LoadgenLoopbackTest, FixedRateMeasuresKnownLatency) {
  FakeUpstream up(Protocol::Http1);
  ASSERT_TRUE(up.ok()) << up.error();
  up.script().otherwise(respond(200, {}, "ok").withDelay(50ms));
  const Report r = run(optionsFor(up.address(), "steady:200:1500ms"));
  EXPECT_NEAR(300, static_cast<double>(r.total.sent()), 1);
  EXPECT_EQ(r.total.sent(), r.total.completed());
  EXPECT_EQ(r.total.sent(), r.total.ok()) << r.toJson()["total"].dump();
  EXPECT_EQ(r.total.sent(), up.requestCount());
  const double p50 = ms(r.total.latency().percentileUs(50));
  EXPECT_GE(p50, 45.0) << r.toJson()["total"].dump();
  EXPECT_LT(p50, 1000.0) << r.toJson()["total"].dump();
  // The fake upstream's own timer may fire a little early on a loaded machine: only a sanity bound.
  EXPECT_GE(ms(static_cast<double>(r.total.latency().minUs())), 25.0);
  ASSERT_EQ(2u, r.timeline.size());
  EXPECT_EQ(200u, r.timeline[0].sent());
  EXPECT_EQ(100u, r.timeline[1].sent());
  ASSERT_EQ(1u, r.phases.size());
  EXPECT_EQ(r.total.sent(), r.phases[0].stats.sent());
  EXPECT_LE(r.connections_opened, 8u);
}

// The backend stops answering for 500 ms once. The requests that keep arriving on schedule
// queue behind it, and their latency counts from their intended send time: p99 and max show the
// stall, and so does a large share of the requests (a closed loop would report only the ~8 in
// flight).
TEST(LoadgenLoopbackTest, OpenLoopDoesNotHideAStall) {
  FakeUpstream up(Protocol::Http1);
  ASSERT_TRUE(up.ok()) << up.error();
  // The handler runs on the upstream's thread only.
  size_t seen = 0;
  testing::Clock::time_point stall_end{};
  up.setHandler([&](const ReceivedRequest& req) {
    if (++seen == 100) {
      stall_end = req.arrival_time + 500ms;
    }
    const auto now = testing::Clock::now();
    if (seen >= 100 && now < stall_end) {
      return respond(200).withDelay(std::chrono::ceil<std::chrono::milliseconds>(stall_end - now));
    }
    return respond(200);
  });
  const Report r = run(optionsFor(up.address(), "steady:200:1500ms"));
  EXPECT_EQ(r.total.sent(), r.total.ok()) << r.toJson()["total"].dump();
  const auto& h = r.total.latency();
  EXPECT_GE(ms(h.percentileUs(99)), 400.0) << r.toJson()["total"].dump();
  EXPECT_GE(ms(static_cast<double>(h.maxUs())), 450.0);
  // One stall, not more: a starved generator (a loaded machine) adds its own lateness, hence the
  // room above 500 ms.
  EXPECT_LT(ms(static_cast<double>(h.maxUs())), 1500.0);
  // ~50 of 300 requests were due in the first half of the stall: > 250 ms each.
  EXPECT_GE(ms(h.percentileUs(85)), 200.0) << r.toJson()["total"].dump();
  // The first third was answered before the stall and owes it nothing.
  EXPECT_LT(ms(h.percentileUs(25)), 250.0);
  // The stall starts at ~0.5 s: the first second of the timeline carries it.
  ASSERT_FALSE(r.timeline.empty());
  EXPECT_GE(ms(static_cast<double>(r.timeline[0].latency().maxUs())), 400.0);
}

// h2c: statuses per request kind, the degraded marker, multiplexing on few connections.
TEST(LoadgenLoopbackTest, H2cCountsOutcomes) {
  FakeUpstream up(Protocol::Http2);
  ASSERT_TRUE(up.ok()) << up.error();
  up.script()
      .forPath("/ok", respond(200, {}, "fine"))
      .forPath("/fail", respond(503))
      .forPath("/deg", respond(200, {{"x-bulwark-degraded", "true"}}, "fallback"))
      .forPath("/limited", respond(429));
  LoadgenOptions o = optionsFor(up.address(), "steady:400:1s");
  o.protocol = LoadProtocol::H2c;
  o.connections = 2;
  o.requests = {requestFor("ok", "/ok"), requestFor("fail", "/fail"), requestFor("deg", "/deg"),
                requestFor("limited", "/limited")};
  const Report r = run(o);
  EXPECT_EQ(400u, r.total.sent());
  EXPECT_EQ(400u, r.total.completed());
  const Stats& ok = byRequest(r, "ok");
  const Stats& fail = byRequest(r, "fail");
  const Stats& deg = byRequest(r, "deg");
  const Stats& limited = byRequest(r, "limited");
  EXPECT_GT(ok.sent(), 0u);
  EXPECT_GT(fail.sent(), 0u);
  EXPECT_GT(deg.sent(), 0u);
  EXPECT_EQ(ok.sent(), ok.ok());
  EXPECT_EQ(deg.sent(), deg.ok());
  EXPECT_EQ(deg.sent(), deg.degraded());
  EXPECT_EQ(fail.sent(), fail.errors("http_503"));
  EXPECT_EQ(limited.sent(), limited.errors("http_429"));
  EXPECT_EQ(ok.sent() + deg.sent(), r.total.ok());
  EXPECT_EQ(deg.sent(), r.total.degraded());
  EXPECT_EQ(fail.sent(), r.total.errors("http_503"));
  EXPECT_EQ(400u, r.total.answered());
  EXPECT_LE(up.totalConnections(), 2u);
  ASSERT_TRUE(up.waitForRequests(400, testing::deadlineIn(1s)));
  const auto first = up.request(0);
  ASSERT_TRUE(first);
  EXPECT_EQ(Protocol::Http2, first->protocol);
  EXPECT_EQ(up.address(), first->authority);
}

// gRPC unary: framed body, gRPC headers, grpc-status from trailers and from Trailers-Only, and a
// proxy's plain 503 counted as http_503.
TEST(LoadgenLoopbackTest, GrpcCountsStatuses) {
  FakeUpstream up(Protocol::Http2);
  ASSERT_TRUE(up.ok()) << up.error();
  up.script()
      .forPath("/pkg.Svc/Ok", respondGrpc(GrpcStatus::Ok, "reply"))
      .forPath("/pkg.Svc/Down", respondGrpc(GrpcStatus::Unavailable))  // Trailers-Only
      .forPath("/pkg.Svc/Late", respondGrpc(GrpcStatus::DeadlineExceeded, "partial"))  // trailers
      .forPath("/pkg.Svc/Proxy", respond(503, {}, "no upstream"));
  LoadgenOptions o = optionsFor(up.address(), "steady:300:1s");
  o.protocol = LoadProtocol::Grpc;
  o.connections = 1;
  std::vector<RequestTemplate> templates;
  for (const char* m : {"Ok", "Down", "Late", "Proxy"}) {
    RequestTemplate t;
    t.name = m;
    t.method = "POST";
    t.grpc_method = std::string("/pkg.Svc/") + m;
    t.body = "payload";
    templates.push_back(t);
  }
  o.requests = templates;
  const Report r = run(o);
  EXPECT_EQ(300u, r.total.completed());
  EXPECT_EQ(byRequest(r, "Ok").sent(), r.total.ok());
  EXPECT_EQ(byRequest(r, "Down").sent(), r.total.errors("grpc_UNAVAILABLE"));
  EXPECT_EQ(byRequest(r, "Late").sent(), r.total.errors("grpc_DEADLINE_EXCEEDED"));
  EXPECT_EQ(byRequest(r, "Proxy").sent(), r.total.errors("http_503"));
  EXPECT_EQ(4u, r.total.errorKinds().size() + 1) << r.toJson()["total"].dump();
  EXPECT_GT(byRequest(r, "Down").sent(), 0u);
  ASSERT_TRUE(up.waitForRequests(1, testing::deadlineIn(1s)));
  const auto req = up.request(0);
  ASSERT_TRUE(req);
  EXPECT_EQ("POST", req->method);
  EXPECT_EQ("application/grpc", req->header("content-type").value_or(""));
  EXPECT_EQ("trailers", req->header("te").value_or(""));
  EXPECT_EQ(testing::encodeGrpcMessage("payload"), req->body);
}

// Nothing listens: every request is a "connect" error without latency, and the CLI exits 1.
TEST(LoadgenLoopbackTest, ConnectRefused) {
  RefusingPort port;
  const Report r = run(optionsFor(port.address(), "steady:50:400ms"));
  EXPECT_EQ(20u, r.total.sent());
  EXPECT_EQ(20u, r.total.errors("connect")) << r.toJson()["total"].dump();
  EXPECT_EQ(0u, r.total.answered());
  EXPECT_EQ(0u, r.connections_opened);

  const auto out = std::filesystem::temp_directory_path() /
                   ("loadgen-refused-" + std::to_string(::getpid()) + ".json");
  const std::string target = port.address();
  const std::string json_out = out.string();
  const char* argv[] = {
      "bulwark-loadgen", "--target", target.c_str(), "--rate",     "20",
      "--duration",      "200ms",    "--quiet",      "--json-out", json_out.c_str()};
  EXPECT_EQ(1, runCommandLine(static_cast<int>(std::size(argv)), argv));
  std::ifstream in(out);
  const auto doc = nlohmann::json::parse(in, nullptr, false);
  std::filesystem::remove(out);
  ASSERT_FALSE(doc.is_discarded());
  EXPECT_EQ("bulwark-loadgen", doc["tool"]);
  EXPECT_EQ(4, doc["total"]["errors"]["connect"].get<int>());
}

// HTTP statuses map to their kinds (h1).
TEST(LoadgenLoopbackTest, HttpErrorKinds) {
  FakeUpstream up(Protocol::Http1);
  ASSERT_TRUE(up.ok()) << up.error();
  up.script()
      .forPath("/503", respond(503))
      .forPath("/500", respond(500))
      .forPath("/404", respond(404))
      .forPath("/429", respond(429))
      .forPath("/reset", testing::resetBeforeHeaders())
      .forPath("/garbage", testing::respondRaw("NOT HTTP AT ALL\r\n\r\n"));
  LoadgenOptions o = optionsFor(up.address(), "steady:300:500ms");
  o.requests = {requestFor("503", "/503"),     requestFor("500", "/500"),
                requestFor("404", "/404"),     requestFor("429", "/429"),
                requestFor("reset", "/reset"), requestFor("garbage", "/garbage")};
  const Report r = run(o);
  EXPECT_EQ(150u, r.total.completed());
  EXPECT_EQ(byRequest(r, "503").sent(), r.total.errors("http_503"));
  EXPECT_EQ(byRequest(r, "500").sent(), r.total.errors("http_5xx"));
  EXPECT_EQ(byRequest(r, "404").sent(), r.total.errors("http_4xx"));
  EXPECT_EQ(byRequest(r, "429").sent(), r.total.errors("http_429"));
  EXPECT_EQ(byRequest(r, "reset").sent(), r.total.errors("reset"));
  EXPECT_EQ(byRequest(r, "garbage").sent(), r.total.errors("protocol"))
      << r.toJson()["total"].dump();
  EXPECT_EQ(0u, r.total.ok());
  // Statuses are answers (latency recorded); resets and garbage are not.
  EXPECT_EQ(r.total.completed() - byRequest(r, "reset").sent() - byRequest(r, "garbage").sent(),
            r.total.answered());
}

// A backend that never answers: each request times out at intended time + timeout, for h1
// (connection closed) and h2c (stream reset), and the run ends shortly after the last one.
TEST(LoadgenLoopbackTest, TimeoutsBothProtocols) {
  for (auto protocol : {LoadProtocol::Http1, LoadProtocol::H2c}) {
    FakeUpstream up(protocol == LoadProtocol::Http1 ? Protocol::Http1 : Protocol::Http2);
    ASSERT_TRUE(up.ok()) << up.error();
    up.script().otherwise(testing::hang());
    LoadgenOptions o = optionsFor(up.address(), "steady:50:400ms");
    o.protocol = protocol;
    o.timeout = 200ms;
    const auto start = std::chrono::steady_clock::now();
    const Report r = run(o);
    const auto took = std::chrono::steady_clock::now() - start;
    EXPECT_EQ(20u, r.total.errors("timeout"))
        << protocolName(protocol) << r.toJson()["total"].dump();
    EXPECT_EQ(0u, r.total.answered());
    // Ended by the timeouts, not by the hanging upstream.
    EXPECT_LT(took, 3s);
    EXPECT_GE(r.elapsed_s, 0.55);  // last request due at 380 ms + 200 ms
  }
}

// One connection, a queue of 2, a hung backend: the excess is "overflow", never lost.
TEST(LoadgenLoopbackTest, QueueOverflow) {
  FakeUpstream up(Protocol::Http1);
  ASSERT_TRUE(up.ok()) << up.error();
  up.script().otherwise(testing::hang());
  LoadgenOptions o = optionsFor(up.address(), "steady:100:200ms");
  o.connections = 1;
  o.max_queue = 2;
  o.timeout = 300ms;
  const Report r = run(o);
  EXPECT_EQ(20u, r.total.completed());
  EXPECT_EQ(3u, r.total.errors("timeout")) << r.toJson()["total"].dump();
  EXPECT_EQ(17u, r.total.errors("overflow"));
}

// Several targets: straight round-robin per request, each with its own connections.
TEST(LoadgenLoopbackTest, RoundRobinOverTargets) {
  FakeUpstream a(Protocol::Http1);
  FakeUpstream b(Protocol::Http1);
  FakeUpstream c(Protocol::Http1);
  LoadgenOptions o = optionsFor(a.address(), "steady:300:300ms");
  o.targets.push_back(*parseTarget(b.address()));
  o.targets.push_back(*parseTarget(c.address()));
  o.connections = 2;
  const Report r = run(o);
  EXPECT_EQ(90u, r.total.ok());
  EXPECT_EQ(30u, a.requestCount());
  EXPECT_EQ(30u, b.requestCount());
  EXPECT_EQ(30u, c.requestCount());
  EXPECT_EQ(b.address(), b.request(0)->authority);
}

}  // namespace
}  // namespace bulwark::bench

namespace bulwark::bench {
namespace {

// Streams the server provably did not process (GOAWAY above them, REFUSED_STREAM) are resent,
// as real h2 clients do, at most twice; a server that always refuses still shows as "reset".
TEST(LoadgenLoopbackTest, H2UnprocessedStreamsAreResent) {
  FakeUpstream up(Protocol::Http2);
  ASSERT_TRUE(up.ok()) << up.error();
  up.script()
      .nthRequest(30, testing::goAway())
      .forPath("/refuse", testing::refuse())
      .otherwise(respond(200));
  LoadgenOptions o = optionsFor(up.address(), "steady:200:300ms");
  o.protocol = LoadProtocol::H2c;
  o.connections = 1;
  Report r = run(o);
  EXPECT_EQ(60u, r.total.ok()) << r.toJson()["total"].dump();
  EXPECT_GE(r.unprocessed_retries, 1u);
  EXPECT_GE(r.connections_opened, 2u);  // the GOAWAY retired the first connection

  o.requests = {requestFor("refused", "/refuse")};
  o.phases = {*parsePhase("steady:100:100ms")};
  r = run(o);
  EXPECT_EQ(10u, r.total.errors("reset")) << r.toJson()["total"].dump();
  EXPECT_EQ(20u, r.unprocessed_retries);
}

// HTTP/1.1: a reused keep-alive connection closed before any answer byte is the keep-alive
// race; an idempotent request is resent, a POST is not.
TEST(LoadgenLoopbackTest, Http1KeepAliveRaceResendsIdempotentOnly) {
  FakeUpstream up(Protocol::Http1);
  ASSERT_TRUE(up.ok()) << up.error();
  up.script().nthRequest(3, testing::closeBeforeHeaders()).otherwise(respond(200));
  LoadgenOptions o = optionsFor(up.address(), "steady:100:100ms");
  o.connections = 1;
  Report r = run(o);
  EXPECT_EQ(10u, r.total.ok()) << r.toJson()["total"].dump();
  EXPECT_EQ(1u, r.unprocessed_retries);

  up.script().reset();
  up.script().nthRequest(3, testing::closeBeforeHeaders()).otherwise(respond(200));
  o.requests[0].method = "POST";
  r = run(o);
  EXPECT_EQ(9u, r.total.ok()) << r.toJson()["total"].dump();
  EXPECT_EQ(1u, r.total.errors("reset"));
  EXPECT_EQ(0u, r.unprocessed_retries);
}

}  // namespace
}  // namespace bulwark::bench

namespace bulwark::bench {
namespace {

// --threads 2: each loop takes every other arrival and half the connections; the merged report
// counts every request once, and the round-robin over targets is the same as with one thread.
TEST(LoadgenLoopbackTest, ThreadsSplitArrivalsAndMergeReports) {
  FakeUpstream a(Protocol::Http1);
  FakeUpstream b(Protocol::Http1);
  a.script().otherwise(respond(200).withDelay(5ms));
  b.script().otherwise(respond(503));
  LoadgenOptions o = optionsFor(a.address(), "steady:400:500ms");
  o.targets.push_back(*parseTarget(b.address()));
  o.threads = 2;
  o.connections = 4;
  const Report r = run(o);
  EXPECT_EQ(200u, r.total.sent());
  EXPECT_EQ(100u, r.total.ok()) << r.toJson()["total"].dump();
  EXPECT_EQ(100u, r.total.errors("http_503"));
  EXPECT_EQ(100u, a.requestCount());
  EXPECT_EQ(100u, b.requestCount());
  EXPECT_EQ(200u, r.phases.at(0).stats.completed());
  ASSERT_EQ(1u, r.timeline.size());
  EXPECT_EQ(200u, r.timeline[0].sent());
  EXPECT_EQ(200u, r.total.latency().count());
  EXPECT_GE(ms(r.total.latency().percentileUs(90)), 4.5);
  EXPECT_LE(r.connections_opened, 8u);
  EXPECT_LE(a.totalConnections(), 4u);
}

}  // namespace
}  // namespace bulwark::bench
