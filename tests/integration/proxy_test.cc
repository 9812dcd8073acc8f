// End-to-end behaviour of the data path through the real bulwark binary: the protocol matrix
// (HTTP/1.1 and h2c downstream, HTTP/1.1 and HTTP/2 upstream), header handling, gRPC framing
// and the error statuses bulwark generates itself.

#include <signal.h>

#include <fstream>
#include <map>
#include <regex>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/http1_client.h"
#include "tests/support/http2_client.h"
#include "tests/support/prometheus_text.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

class ProxyTest : public ::testing::Test {
protected:
  void startProxy(const std::string& yaml) {
    proxy_ = startBulwark(yaml);
    ASSERT_TRUE(proxy_);
  }
  uint16_t port() const { return proxy_->port("public"); }
  /** HTTP/1.1 both ways with the catch-all route narrowed to /api: anything else gets a local 404.
   */
  static std::string apiOnlyConfig(const FakeUpstream& up) {
    auto yaml = simpleConfig("http1", "http1", {up.address()});
    auto pos = yaml.find("prefix: /}");
    yaml.replace(pos, std::string("prefix: /}").size(), "prefix: /api}");
    return yaml;
  }
  double metric(const std::string& name, const std::map<std::string, std::string>& labels) {
    return metricValue(proxy_->adminPort(), name, labels).value_or(-1);
  }

  std::unique_ptr<BulwarkProcess> proxy_;
};

// Proves HTTP/1.1 -> HTTP/1.1 forwarding with the request line, body and headers intact.
TEST_F(ProxyTest, Http1ToHttp1ForwardsRequestAndResponse) {
  FakeUpstream up(Protocol::Http1);
  startProxy(simpleConfig("http1", "http1", {up.address()}));
  Http1Client client(port());
  auto r = client.request(http1Request("POST", "/echo?x=1", {{"x-custom", "v"}}, "hello body"));
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);
  EXPECT_EQ("hello body", r->body);
  ASSERT_EQ(1u, up.requestCount());
  auto seen = *up.request(0);
  EXPECT_EQ("POST", seen.method);
  EXPECT_EQ("/echo?x=1", seen.path);
  EXPECT_EQ("v", seen.header("x-custom").value_or(""));
  EXPECT_EQ("hello body", seen.body);
}

// Proves keep-alive on both sides: several requests on one client connection reuse one upstream
// connection.
TEST_F(ProxyTest, KeepAliveReusesConnections) {
  FakeUpstream up(Protocol::Http1);
  startProxy(simpleConfig("http1", "http1", {up.address()}));
  Http1Client client(port());
  for (int i = 0; i < 5; ++i) {
    auto r = client.get("/k" + std::to_string(i));
    ASSERT_TRUE(r) << client.lastError();
    EXPECT_EQ(200, r->status);
  }
  ASSERT_EQ(5u, up.requestCount());
  // One downstream connection lands on one worker, whose pool keeps one upstream connection.
  EXPECT_EQ(up.request(0)->connection_id, up.request(4)->connection_id);
  EXPECT_EQ(1u, up.totalConnections());
}

// Proves pipelined requests are answered in order.
TEST_F(ProxyTest, PipelinedRequestsAnsweredInOrder) {
  FakeUpstream up(Protocol::Http1);
  up.script()
      .forPath("/slow", respond(200, {}, "slow").withDelay(50ms))
      .otherwise(respond(200, {}, "fast"));
  startProxy(simpleConfig("http1", "http1", {up.address()}));
  Http1Client client(port());
  auto responses = client.pipeline({http1Get("/slow"), http1Get("/fast"), http1Get("/fast")});
  ASSERT_EQ(3u, responses.size()) << client.lastError();
  EXPECT_EQ("slow", responses[0].body);
  EXPECT_EQ("fast", responses[1].body);
  EXPECT_EQ("fast", responses[2].body);
}

// Proves chunked bodies stream both ways with trailers preserved on the HTTP/1.1 upstream leg.
TEST_F(ProxyTest, ChunkedBodiesBothWays) {
  FakeUpstream up(Protocol::Http1);
  up.script().otherwise(respondChunked(200, {"ab", "cd", "ef"}, {{"x-trailer", "t"}}));
  startProxy(simpleConfig("http1", "http1", {up.address()}));
  Http1Client client(port());
  ASSERT_TRUE(
      client.sendRaw("POST /c HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n"
                     "3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n"));
  auto r = client.readResponse();
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);
  EXPECT_EQ("abcdef", r->body);
  EXPECT_EQ("t", r->trailer("x-trailer").value_or(""));
  ASSERT_EQ(1u, up.requestCount());
  EXPECT_EQ("abcde", up.request(0)->body);
}

// Proves Expect: 100-continue gets an interim 100 and the body still flows.
TEST_F(ProxyTest, ExpectContinue) {
  FakeUpstream up(Protocol::Http1);
  startProxy(simpleConfig("http1", "http1", {up.address()}));
  Http1Client client(port());
  ASSERT_TRUE(client.sendRaw(
      "POST /e HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nExpect: 100-continue\r\n\r\n"));
  ASSERT_TRUE(client.sendRaw("12345"));
  auto r = client.readResponse();
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);
  EXPECT_EQ("12345", r->body);
  ASSERT_EQ(1u, up.requestCount());
  EXPECT_FALSE(up.request(0)->header("expect").has_value());
}

// Proves HEAD, 204 and 304 responses carry no body and the connection stays usable.
TEST_F(ProxyTest, BodilessResponses) {
  FakeUpstream up(Protocol::Http1);
  up.script()
      .forPath("/204", respond(204))
      .forPath("/304", respond(304, {{"etag", "\"x\""}}))
      .otherwise(respond(200, {{"content-type", "text/plain"}}, "0123456789"));
  startProxy(simpleConfig("http1", "http1", {up.address()}));
  Http1Client client(port());
  auto head = client.request(http1Request("HEAD", "/h"));
  ASSERT_TRUE(head) << client.lastError();
  EXPECT_EQ(200, head->status);
  EXPECT_EQ("10", head->header("content-length").value_or(""));
  EXPECT_TRUE(head->body.empty());
  auto r204 = client.get("/204");
  ASSERT_TRUE(r204) << client.lastError();
  EXPECT_EQ(204, r204->status);
  auto r304 = client.get("/304");
  ASSERT_TRUE(r304) << client.lastError();
  EXPECT_EQ(304, r304->status);
  auto after = client.get("/after");
  ASSERT_TRUE(after) << client.lastError();
  EXPECT_EQ("0123456789", after->body);
}

// Proves hop-by-hop headers are stripped and forwarding headers added.
TEST_F(ProxyTest, HopByHopAndForwardingHeaders) {
  FakeUpstream up(Protocol::Http1);
  startProxy(simpleConfig("http1", "http1", {up.address()}));
  Http1Client client(port());
  auto r = client.request(http1Request("GET", "/h",
                                       {{"Connection", "keep-alive, x-secret"},
                                        {"x-secret", "drop-me"},
                                        {"Keep-Alive", "timeout=5"},
                                        {"Proxy-Connection", "keep-alive"},
                                        {"X-Forwarded-For", "10.1.2.3"}}));
  ASSERT_TRUE(r) << client.lastError();
  ASSERT_EQ(1u, up.requestCount());
  auto seen = *up.request(0);
  EXPECT_FALSE(seen.header("x-secret").has_value());
  EXPECT_FALSE(seen.header("keep-alive").has_value());
  EXPECT_FALSE(seen.header("proxy-connection").has_value());
  EXPECT_EQ("10.1.2.3, 127.0.0.1", seen.header("x-forwarded-for").value_or(""));
  EXPECT_EQ("http", seen.header("x-forwarded-proto").value_or(""));
  auto id = seen.header("x-request-id");
  ASSERT_TRUE(id.has_value());
  EXPECT_EQ(36u, id->size());
  // UUIDv4: version nibble 4, variant bits 10.
  EXPECT_TRUE(std::regex_match(
      *id, std::regex("[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}")))
      << *id;
}

// Proves an incoming x-request-id is kept by default (preserveExternal) and one is generated
// otherwise.
TEST_F(ProxyTest, RequestIdPreserved) {
  FakeUpstream up(Protocol::Http1);
  startProxy(simpleConfig("http1", "http1", {up.address()}));
  Http1Client client(port());
  ASSERT_TRUE(client.request(http1Request("GET", "/", {{"x-request-id", "abc-123"}})));
  ASSERT_TRUE(client.get("/"));
  ASSERT_EQ(2u, up.requestCount());
  EXPECT_EQ("abc-123", up.request(0)->header("x-request-id").value_or(""));
  EXPECT_NE("abc-123", up.request(1)->header("x-request-id").value_or("abc-123"));
}

// Proves h2c downstream to an HTTP/1.1 upstream, with the authority turned into Host.
TEST_F(ProxyTest, H2cToHttp1) {
  FakeUpstream up(Protocol::Http1);
  startProxy(simpleConfig("h2c", "http1", {up.address()}));
  Http2Client client(port());
  ASSERT_TRUE(client.connect()) << client.lastError();
  auto r = client.request(http2Request("POST", "/h2", {{"x-a", "b"}}, "payload"));
  ASSERT_TRUE(r && r->complete) << client.lastError();
  EXPECT_EQ(200, r->status);
  EXPECT_EQ("payload", r->body);
  ASSERT_EQ(1u, up.requestCount());
  EXPECT_EQ("1.1", up.request(0)->http_version);
  EXPECT_FALSE(up.request(0)->authority.empty());
}

// Proves h2c -> HTTP/2 with many concurrent streams multiplexed over few upstream connections.
TEST_F(ProxyTest, H2cToHttp2Multiplexes) {
  FakeUpstream up(Protocol::Http2);
  up.script().otherwise(respond(200, {}, "ok").withDelay(20ms));
  startProxy(simpleConfig("h2c", "http2", {up.address()}));
  Http2Client client(port());
  ASSERT_TRUE(client.connect()) << client.lastError();
  std::vector<int32_t> ids;
  for (int i = 0; i < 50; ++i) {
    ids.push_back(client.submit(http2Get("/m" + std::to_string(i))));
  }
  ASSERT_TRUE(client.waitForResponses(ids, deadlineIn(5s))) << client.lastError();
  for (auto id : ids) {
    EXPECT_EQ(200, client.response(id).status);
  }
  ASSERT_EQ(50u, up.requestCount());
  // One client connection is on one worker; its pool multiplexes onto one upstream connection.
  EXPECT_EQ(1u, up.totalConnections());
}

// Proves `protocol: auto` serves both HTTP/1.1 and h2c on one port.
TEST_F(ProxyTest, AutoSniffsBothProtocols) {
  FakeUpstream up(Protocol::Http1);
  startProxy(simpleConfig("auto", "http1", {up.address()}));
  Http1Client h1(port());
  auto r1 = h1.get("/one");
  ASSERT_TRUE(r1) << h1.lastError();
  EXPECT_EQ(200, r1->status);
  Http2Client h2(port());
  ASSERT_TRUE(h2.connect()) << h2.lastError();
  auto r2 = h2.get("/two");
  ASSERT_TRUE(r2 && r2->complete) << h2.lastError();
  EXPECT_EQ(200, r2->status);
}

// Proves gRPC unary framing, grpc-status trailers and te: trailers through h2c -> HTTP/2.
TEST_F(ProxyTest, GrpcUnaryTrailersPassThrough) {
  FakeUpstream up(Protocol::Http2);
  up.script().otherwise(respondGrpc(GrpcStatus::Ok, "ranked"));
  startProxy(simpleConfig("h2c", "grpc", {up.address()}));
  Http2Client client(port());
  ASSERT_TRUE(client.connect()) << client.lastError();
  auto rpc = client.grpcUnary("/ranking.v1.RankingService/Rank", "req", deadlineIn(2s));
  EXPECT_EQ(GrpcStatus::Ok, rpc.grpcStatus());
  EXPECT_EQ("ranked", rpc.message());
  ASSERT_EQ(1u, up.requestCount());
  EXPECT_EQ("trailers", up.request(0)->header("te").value_or(""));
}

// Proves a server-streaming response (several messages, then trailers) streams through.
TEST_F(ProxyTest, GrpcServerStreaming) {
  FakeUpstream up(Protocol::Http2);
  up.script().otherwise(respondGrpcMessages({"page1", "page2", "page3"}, GrpcStatus::Ok));
  startProxy(simpleConfig("h2c", "grpc", {up.address()}));
  Http2Client client(port());
  ASSERT_TRUE(client.connect()) << client.lastError();
  auto rpc = client.grpcUnary("/ranking.v1.RankingService/RankStream", "req", deadlineIn(2s));
  EXPECT_EQ(GrpcStatus::Ok, rpc.grpcStatus());
  EXPECT_EQ(3u, rpc.messages.size());
}

// Proves an upstream that refuses connections gives 503 with a reason, counted in metrics.
TEST_F(ProxyTest, ConnectFailureIs503) {
  RefusingPort dead;
  startProxy(simpleConfig("http1", "http1", {dead.address()}));
  Http1Client client(port());
  auto r = client.get("/");
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(503, r->status);
  EXPECT_EQ("upstream_connect_failure", r->header("x-bulwark-reason").value_or(""));
  EXPECT_EQ(1, metric("bulwark_local_replies_total",
                      {{"route", "all"}, {"reason", "upstream_connect_failure"}}));
}

// Proves an upstream reset before the response gives 502.
TEST_F(ProxyTest, UpstreamResetIs502) {
  FakeUpstream up(Protocol::Http1);
  up.script().otherwise(closeBeforeHeaders());
  startProxy(simpleConfig("http1", "http1", {up.address()}));
  Http1Client client(port());
  auto r = client.get("/");
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(502, r->status);
  EXPECT_EQ("upstream_reset", r->header("x-bulwark-reason").value_or(""));
}

// Proves a malformed upstream response gives 502.
TEST_F(ProxyTest, BadUpstreamResponseIs502) {
  FakeUpstream up(Protocol::Http1);
  up.script().otherwise(respondRaw("HTTP/1.1 abc garbage\r\n\r\n", true));
  startProxy(simpleConfig("http1", "http1", {up.address()}));
  Http1Client client(port());
  auto r = client.get("/");
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(502, r->status);
}

// Proves the route's request timeout answers 504 promptly and cancels the upstream attempt.
TEST_F(ProxyTest, RequestTimeoutIs504) {
  FakeUpstream up(Protocol::Http1);
  up.script().otherwise(hang());
  startProxy(simpleConfig("http1", "http1", {up.address()}, "  timeouts: {request: 200ms}\n"));
  Http1Client client(port());
  auto start = Clock::now();
  auto r = client.get("/");
  auto elapsed = Clock::now() - start;
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(504, r->status);
  EXPECT_EQ("request_timeout", r->header("x-bulwark-reason").value_or(""));
  EXPECT_GE(elapsed, 190ms);
  EXPECT_LT(elapsed, 3s);
  EXPECT_TRUE(waitFor(
      [&] {
        auto req = up.request(0);
        return req && req->cancelled_by_peer;
      },
      deadlineIn(2s)));
}

// Proves a midstream upstream reset after headers resets the downstream instead of faking success.
TEST_F(ProxyTest, ResetAfterHeadersTruncatesDownstream) {
  FakeUpstream up(Protocol::Http1);
  up.script().otherwise(respondGenerated(200, 1 << 20).withResetAfterBodyBytes(1000));
  startProxy(simpleConfig("http1", "http1", {up.address()}));
  Http1Client client(port());
  auto r = client.get("/");
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);
  EXPECT_FALSE(r->complete);
}

// Proves gRPC errors generated by bulwark are trailers-only responses with the mapped grpc-status.
TEST_F(ProxyTest, GrpcLocalRepliesAreTrailersOnly) {
  FakeUpstream up(Protocol::Http2);
  up.script().otherwise(hang());
  startProxy(simpleConfig("h2c", "grpc", {up.address()}, "  timeouts: {request: 200ms}\n"));
  Http2Client client(port());
  ASSERT_TRUE(client.connect()) << client.lastError();
  auto rpc = client.grpcUnary("/ranking.v1.RankingService/Rank", "req", deadlineIn(3s));
  EXPECT_EQ(200, rpc.http.status);
  EXPECT_TRUE(rpc.trailers_only);
  EXPECT_EQ(GrpcStatus::DeadlineExceeded, rpc.grpcStatus());
}

// Proves grpc-timeout tightens the deadline and is rewritten for the upstream.
TEST_F(ProxyTest, GrpcTimeoutHonored) {
  FakeUpstream up(Protocol::Http2);
  up.script().otherwise(hang());
  startProxy(simpleConfig("h2c", "grpc", {up.address()}, "  timeouts: {request: 5s}\n"));
  Http2Client client(port());
  ASSERT_TRUE(client.connect()) << client.lastError();
  auto start = Clock::now();
  auto rpc = client.grpcUnary("/ranking.v1.RankingService/Rank", "req", deadlineIn(3s), {}, 150ms);
  auto elapsed = Clock::now() - start;
  EXPECT_EQ(GrpcStatus::DeadlineExceeded, rpc.grpcStatus());
  // The call's 150 ms ended it, not the route's 5 s.
  EXPECT_LT(elapsed, 3s);
  ASSERT_TRUE(up.waitForRequests(1, deadlineIn(1s)));
  auto timeout = up.request(0)->header("grpc-timeout");
  ASSERT_TRUE(timeout.has_value());
}

// Proves connect failure on a gRPC route is UNAVAILABLE in a trailers-only response.
TEST_F(ProxyTest, GrpcConnectFailureIsUnavailable) {
  RefusingPort dead;
  startProxy(simpleConfig("h2c", "grpc", {dead.address()}));
  Http2Client client(port());
  ASSERT_TRUE(client.connect()) << client.lastError();
  auto rpc = client.grpcUnary("/ranking.v1.RankingService/Rank", "req", deadlineIn(3s));
  EXPECT_EQ(GrpcStatus::Unavailable, rpc.grpcStatus());
}

// Proves unmatched requests get 404 and the metrics count requests by code class.
TEST_F(ProxyTest, NoRouteIs404AndMetricsCount) {
  FakeUpstream up(Protocol::Http1);
  startProxy(apiOnlyConfig(up));
  Http1Client client(port());
  auto miss = client.get("/other");
  ASSERT_TRUE(miss) << client.lastError();
  EXPECT_EQ(404, miss->status);
  auto hit = client.get("/api/x");
  ASSERT_TRUE(hit) << client.lastError();
  EXPECT_EQ(200, hit->status);
  EXPECT_EQ(1, metric("bulwark_requests_total", {{"route", "all"}, {"code_class", "2xx"}}));
  EXPECT_EQ(1,
            metric("bulwark_local_replies_total", {{"route", ""}, {"reason", "route_not_found"}}));
}

}  // namespace
}  // namespace bulwark::testing

namespace bulwark::testing {
namespace {

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  return std::string((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
}

// Proves the access log writes one entry per request with Istio's keys, as JSON or as text.
TEST(AccessLogTest, JsonAndTextEntries) {
  FakeUpstream up(Protocol::Http1);
  for (const std::string format : {"json", "text"}) {
    std::string log_path = writeTempFile("access-" + format + ".log", "");
    std::string top =
        "observability:\n  accessLog: {path: \"" + log_path + "\", format: " + format + "}\n";
    auto proxy = startBulwark(simpleConfig("http1", "http1", {up.address()}, "", "", top));
    ASSERT_TRUE(proxy);
    Http1Client client(proxy->port("public"));
    auto r = client.request(http1Request("GET", "/logged", {{"x-request-id", "log-id-1"}}));
    ASSERT_TRUE(r) << client.lastError();
    client.close();
    ASSERT_EQ(0, proxy->stop(SIGTERM).value_or(-1));  // the log is flushed on exit
    std::string text = readFile(log_path);
    if (format == "json") {
      auto entry = nlohmann::json::parse(text.substr(0, text.find('\n')));
      EXPECT_EQ("/logged", entry["path"]);
      EXPECT_EQ(200, entry["response_code"]);
      EXPECT_EQ("log-id-1", entry["request_id"]);
      EXPECT_EQ("all", entry["route_name"]);
      EXPECT_EQ(up.address(), entry["upstream_host"]);
    } else {
      EXPECT_NE(std::string::npos, text.find("path=/logged")) << text;
      EXPECT_NE(std::string::npos, text.find("response_code=200")) << text;
      EXPECT_NE(std::string::npos, text.find("request_id=log-id-1")) << text;
    }
  }
}

// Proves the README's promise for local replies: each carries x-bulwark-reason, is counted in
// bulwark_local_replies_total{reason} and is logged with that reason as response_code_details
// (a proxied answer is logged as via_upstream). Covers 404 (no route), 503 (connect refused) and
// 504 (request timeout).
TEST(AccessLogTest, LocalRepliesLogTheirReasonAsResponseCodeDetails) {
  FakeUpstream up(Protocol::Http1);
  up.script().forPath("/slow/x", hang());
  RefusingPort dead;
  auto proxy = startBulwark(ConfigBuilder()
                                .topLevel("observability:\n  accessLog: {path: /dev/stdout}\n")
                                .listener("http1")
                                .upstream("http1", {up.address()})
                                .upstream("http1", {dead.address()}, "", "dead")
                                .route("", "/dead", "dead", "dead")
                                .route("  timeouts: {request: 100ms}\n", "/slow", "slow")
                                .route("", "/api", "api")
                                .yaml());
  ASSERT_TRUE(proxy);
  const std::vector<std::pair<std::string, int>> cases = {
      {"/api/ok", 200}, {"/nowhere", 404}, {"/dead/x", 503}, {"/slow/x", 504}};
  std::map<std::string, std::string> reason_of;  // request id -> x-bulwark-reason or via_upstream
  for (const auto& [path, status] : cases) {
    Http1Client client(proxy->port("public"));
    const std::string id = "details" + path;
    auto r = client.get(path, {{"x-request-id", id}}, deadlineIn(5s));
    ASSERT_TRUE(r) << path << ": " << client.lastError();
    EXPECT_EQ(status, r->status) << path;
    auto reason = r->header("x-bulwark-reason");
    EXPECT_EQ(status != 200, reason.has_value()) << path;
    reason_of[id] = reason.value_or("via_upstream");
  }
  for (const auto& [id, reason] : reason_of) {
    if (reason != "via_upstream") {
      EXPECT_TRUE(waitForMetric(
          proxy->adminPort(), "bulwark_local_replies_total", {{"reason", reason}},
          [](double v) { return v == 1; }, deadlineIn(2s)))
          << reason;
    }
  }
  std::map<std::string, std::string> logged;
  ASSERT_TRUE(waitFor(
      [&] {
        for (const auto& line : proxy->process().lines()) {
          auto entry = nlohmann::json::parse(line.text, nullptr, false);
          if (entry.is_object() && reason_of.count(entry.value("request_id", "")) > 0) {
            logged[entry["request_id"]] = entry.value("response_code_details", "");
          }
        }
        return logged.size() == reason_of.size();
      },
      deadlineIn(3s)))
      << proxy->process().output();
  EXPECT_EQ(reason_of, logged);
}

// A local reply sent before the request body was read closes the connection afterwards (the rest
// of the body would parse as a new request), so it must say so: a keep-alive client would send
// its next request into a connection about to close, and that request would be lost.
TEST_F(ProxyTest, LocalReplyBeforeTheBodyAnnouncesClose) {
  FakeUpstream up(Protocol::Http1);
  startProxy(apiOnlyConfig(up));
  Http1Client client(port());
  ASSERT_TRUE(client.sendRaw("POST /other HTTP/1.1\r\nHost: a\r\nContent-Length: 100000\r\n\r\n" +
                             std::string(1000, 'x')));
  auto r = client.readResponse();
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(404, r->status);
  EXPECT_EQ("close", r->header("connection").value_or(""));
  EXPECT_EQ(0u, up.requestCount());
}

// A local reply before a short body was read keeps the connection: bulwark reads and drops the
// rest of the body, and the next request on the connection is served.
TEST_F(ProxyTest, LocalReplyBeforeAShortBodyKeepsTheConnection) {
  FakeUpstream up(Protocol::Http1);
  startProxy(apiOnlyConfig(up));
  Http1Client client(port());
  ASSERT_TRUE(client.sendRaw("POST /other HTTP/1.1\r\nHost: a\r\nContent-Length: 2000\r\n\r\n" +
                             std::string(1000, 'x')));
  auto miss = client.readResponse();
  ASSERT_TRUE(miss) << client.lastError();
  EXPECT_EQ(404, miss->status);
  EXPECT_NE("close", miss->header("connection").value_or(""));
  ASSERT_TRUE(client.sendRaw(std::string(1000, 'y')));
  auto hit = client.get("/api/next");
  ASSERT_TRUE(hit) << client.lastError();
  EXPECT_EQ(200, hit->status);
  ASSERT_EQ(1u, up.requestCount());
  EXPECT_EQ("/api/next", up.request(0)->path);
}

}  // namespace
}  // namespace bulwark::testing
