// The decision record: every access-log line carries `decisions` (route, attempts, what acted,
// why retrying stopped), and a client the config trusts (observability.explain.allowFrom) that
// sends `x-bulwark-explain: 1` gets the same record in the `x-bulwark-explain` response header.
// 127.0.0.2 stands for a source that is not trusted.

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/http1_client.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

std::string rawRoute(const std::string& name, const std::string& prefix,
                     const std::string& upstream, const std::string& blocks) {
  return "- name: " + name + "\n  match: {path: {prefix: " + prefix +
         "}}\n  upstream: " + upstream + "\n" + blocks;
}

class DecisionRecordTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    ok_ = FakeUpstream::start().release();
    failing_ = FakeUpstream::start().release();
    flaky_ = FakeUpstream::start().release();
    ok_->script().forPath("/slow", respond(200, {}, "slow").withDelay(400ms));
    ok_->script().forPath("/bh/slow", respond(200, {}, "slow").withDelay(400ms));
    ok_->script().forPath("/shed/slow", respond(200, {}, "slow").withDelay(400ms));
    ok_->script().forPath("/deadline", respond(200, {}, "late").withDelay(2s));
    ok_->script().otherwise(respond(200, {}, "ok"));
    failing_->script().otherwise(respond(503, {}, "down"));
    flaky_->script()
        .nthRequest(1, respond(503, {}, "first"))
        .nthRequest(2, respond(503, {}, "second"))
        .otherwise(respond(200, {}, "third"));
    auto address = [](FakeUpstream* u) { return "127.0.0.1:" + std::to_string(u->port()); };
    ConfigBuilder builder;
    builder
        .topLevel(
            "observability:\n  accessLog: {path: /dev/stdout}\n"
            "  explain: {allowFrom: [127.0.0.1/32]}\n")
        .listener("http1")
        .upstream("http1", {address(ok_)}, "", "ok")
        .upstream("http1", {address(failing_)},
                  "  circuitBreaker: {failureRateThreshold: 50, minimumRequests: 2, window: 10s, "
                  "openDuration: 30s}\n",
                  "failing")
        .upstream("http1", {address(failing_)}, "", "failing-nobreaker")
        .upstream("http1", {address(flaky_)}, "", "flaky")
        .rawRoute(rawRoute("rl", "/rl", "ok",
                           "  rateLimit: {requestsPerSecond: 1, burst: 1, key: {header: "
                           "x-tenant}}\n"))
        .rawRoute(rawRoute("bh", "/bh", "ok",
                           "  bulkhead: {maxConcurrentRequests: 1, maxQueuedRequests: 0}\n"))
        .rawRoute(
            rawRoute("shed", "/shed", "ok",
                     "  loadShedding:\n    adaptiveConcurrency: {minLimit: 1, maxLimit: 1}\n"))
        .rawRoute(rawRoute("breaker", "/breaker", "failing", ""))
        .rawRoute(rawRoute("budget", "/budget", "failing-nobreaker",
                           "  retries: {attempts: 3, retryOn: [5xx], budget: {percent: 0, "
                           "minRetryConcurrency: 0}}\n"))
        .rawRoute(rawRoute("deadline", "/deadline", "ok", "  timeouts: {request: 100ms}\n"))
        .rawRoute(rawRoute("fallback", "/fallback", "failing-nobreaker",
                           "  fallback:\n    on: [upstream5xx]\n    response: {status: 200, body: "
                           "degraded}\n"))
        .rawRoute(rawRoute("retry", "/retry", "flaky",
                           "  retries: {attempts: 3, retryOn: [5xx], backoff: {baseInterval: "
                           "1ms, maxInterval: 2ms}}\n"));
    proxy_ = startBulwark(builder.yaml()).release();
  }

  static void TearDownTestSuite() {
    delete proxy_;
    delete ok_;
    delete failing_;
    delete flaky_;
  }

  void SetUp() override { ASSERT_TRUE(proxy_ != nullptr); }

  static Http1Request explained(const std::string& path, Headers extra = {}) {
    extra.emplace_back("x-bulwark-explain", "1");
    return http1Request("GET", path, extra);
  }

  /** The `decisions` of the access-log line with this x-request-id. */
  static nlohmann::json logged(const std::string& request_id) {
    nlohmann::json found;
    waitFor(
        [&] {
          for (const auto& line : proxy_->process().lines()) {
            auto entry = nlohmann::json::parse(line.text, nullptr, false);
            if (entry.is_object() && entry.value("request_id", "") == request_id) {
              found = entry["decisions"];
              return true;
            }
          }
          return false;
        },
        5s);
    return found;
  }

  /**
   * Sends `request` (with an x-request-id) from 127.0.0.1 and from 127.0.0.2; returns the
   * trusted answer's explain header and checks that the untrusted one has none.
   */
  static std::string explainedOnlyToTrusted(Http1Client& trusted, Http1Request request,
                                            const std::string& id) {
    request.headers.emplace_back("x-request-id", id);
    auto r = trusted.request(request);
    EXPECT_TRUE(r) << trusted.lastError();
    Http1Client other(proxy_->port("public"));
    other.setSourceAddress("127.0.0.2");
    Http1Request copy = request;
    for (auto& [name, value] : copy.headers) {
      if (name == "x-request-id") {
        value = id + "-untrusted";
      }
    }
    auto u = other.request(copy);
    EXPECT_TRUE(u) << other.lastError();
    if (u) {
      EXPECT_FALSE(u->header("x-bulwark-explain")) << *u->header("x-bulwark-explain");
    }
    return r ? r->header("x-bulwark-explain").value_or("") : "";
  }

  static FakeUpstream* ok_;
  static FakeUpstream* failing_;
  static FakeUpstream* flaky_;
  static BulwarkProcess* proxy_;
};

FakeUpstream* DecisionRecordTest::ok_ = nullptr;
FakeUpstream* DecisionRecordTest::failing_ = nullptr;
FakeUpstream* DecisionRecordTest::flaky_ = nullptr;
BulwarkProcess* DecisionRecordTest::proxy_ = nullptr;

TEST_F(DecisionRecordTest, RateLimitedNamesTheKey) {
  Http1Client client(proxy_->port("public"));
  ASSERT_TRUE(client.request(explained("/rl", {{"x-tenant", "acme"}})));
  const std::string header =
      explainedOnlyToTrusted(client, explained("/rl", {{"x-tenant", "acme"}}), "rl-1");
  EXPECT_NE(header.find("rate_limited(key=acme,limit=1/s"), std::string::npos) << header;
  auto d = logged("rl-1");
  EXPECT_EQ("rl", d.value("route", ""));
  EXPECT_EQ("acme", d["rate_limited"].value("key", "")) << d.dump();
}

TEST_F(DecisionRecordTest, BulkheadFullAndShedNameTheirNumbers) {
  for (const std::string route : {"bh", "shed"}) {
    Http1Client holder(proxy_->port("public"));
    ASSERT_TRUE(holder.sendRequest(http1Get("/" + route + "/slow")));
    const std::string slow_path = "/" + route + "/slow";
    ASSERT_TRUE(waitFor(
        [&] {
          for (const auto& req : ok_->requests()) {
            if (req.path == slow_path) {
              return true;
            }
          }
          return false;
        },
        5s));
    Http1Client client(proxy_->port("public"));
    const std::string header = explainedOnlyToTrusted(client, explained("/" + route), route + "-1");
    auto d = logged(route + "-1");
    if (route == "bh") {
      EXPECT_NE(header.find("bulkhead_full(max=1,active=1"), std::string::npos) << header;
      EXPECT_EQ("1", d["bulkhead_full"].value("active", "")) << d.dump();
    } else {
      EXPECT_NE(header.find("shed(limit=1,in_flight=1"), std::string::npos) << header;
      EXPECT_EQ("1", d["shed"].value("in_flight", "")) << d.dump();
    }
    ASSERT_TRUE(holder.readResponse(deadlineIn(5s)));
  }
}

TEST_F(DecisionRecordTest, BreakerOpenNamesItsState) {
  Http1Client client(proxy_->port("public"));
  for (int i = 0; i < 4; ++i) {
    ASSERT_TRUE(client.request(http1Get("/breaker")));
  }
  const std::string header = explainedOnlyToTrusted(client, explained("/breaker"), "breaker-1");
  EXPECT_NE(header.find("breaker_open(upstream=failing,state=open"), std::string::npos) << header;
  EXPECT_EQ("open", logged("breaker-1")["breaker_open"].value("state", ""));
}

TEST_F(DecisionRecordTest, RetryBudgetExhaustedStopsRetrying) {
  Http1Client client(proxy_->port("public"));
  const std::string header = explainedOnlyToTrusted(client, explained("/budget"), "budget-1");
  EXPECT_NE(header.find("retry_stop=budget_exhausted"), std::string::npos) << header;
  auto d = logged("budget-1");
  EXPECT_EQ("budget_exhausted", d.value("retry_stop", "")) << d.dump();
  ASSERT_EQ(1u, d["attempts"].size());
  EXPECT_EQ(503, d["attempts"][0].value("status", 0));
}

TEST_F(DecisionRecordTest, DeadlineExceededNamesTheTimeout) {
  Http1Client client(proxy_->port("public"));
  const std::string header = explainedOnlyToTrusted(client, explained("/deadline"), "deadline-1");
  EXPECT_NE(header.find("deadline_exceeded(timeout_ms=100)"), std::string::npos) << header;
  EXPECT_EQ("100", logged("deadline-1")["deadline_exceeded"].value("timeout_ms", ""));
}

TEST_F(DecisionRecordTest, FallbackNamesItsTrigger) {
  Http1Client client(proxy_->port("public"));
  const std::string header = explainedOnlyToTrusted(client, explained("/fallback"), "fallback-1");
  EXPECT_NE(header.find("fallback(trigger=upstream5xx"), std::string::npos) << header;
  EXPECT_EQ("upstream5xx", logged("fallback-1")["fallback"].value("trigger", ""));
}

// Three attempts, two failures then a success: each with its host, outcome, status and why
// it started.
TEST_F(DecisionRecordTest, AttemptsAreListedWithTheirReasons) {
  Http1Client client(proxy_->port("public"));
  auto r = client.request(
      http1Request("GET", "/retry", {{"x-request-id", "retry-1"}, {"x-bulwark-explain", "1"}}));
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);
  const std::string header = r->header("x-bulwark-explain").value_or("");
  EXPECT_NE(header.find("attempt=3,retry:gateway-error"), std::string::npos) << header;
  auto d = logged("retry-1");
  ASSERT_EQ(3u, d["attempts"].size()) << d.dump();
  EXPECT_EQ("initial", d["attempts"][0].value("kind", ""));
  EXPECT_EQ("gateway-error", d["attempts"][0].value("outcome", ""));
  EXPECT_EQ("retry", d["attempts"][1].value("kind", ""));
  EXPECT_EQ("gateway-error", d["attempts"][1].value("reason", ""));
  EXPECT_EQ("success", d["attempts"][2].value("outcome", ""));
  EXPECT_EQ(200, d["attempts"][2].value("status", 0));
  EXPECT_EQ("127.0.0.1:" + std::to_string(flaky_->port()), d["attempts"][2].value("host", ""));
  // The header never reaches the upstream.
  for (const auto& req : flaky_->requests()) {
    EXPECT_FALSE(req.header("x-bulwark-explain"));
  }
}

}  // namespace
}  // namespace bulwark::testing
