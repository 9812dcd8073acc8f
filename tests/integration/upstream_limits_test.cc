// The upstream limits of connectionPool through the real binary: maxConnections (exact, all
// workers together), maxPendingRequests, maxRequests and maxRetries, each with the fast 503 it
// gives on overflow and the overflow counter.

#include <algorithm>
#include <memory>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/admin_json.h"
#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/http1_client.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

std::string limitsConfig(const std::vector<std::string>& endpoints, const std::string& pool,
                         const std::string& route_extra = "", int workers = 2) {
  return ConfigBuilder()
      .concurrency(workers)
      .listener("http1")
      .upstream("http1", endpoints, "  connectionPool: " + pool + "\n")
      .route(route_extra)
      .yaml();
}

double overflow(uint16_t admin, const std::string& limit) {
  return metricValue(admin, "bulwark_connection_pool_overflow_total",
                     {{"upstream", "backend"}, {"limit", limit}})
      .value_or(0);
}

/** Sends one GET per fresh connection without waiting; the clients hold the answers. */
std::vector<std::unique_ptr<Http1Client>> sendEach(uint16_t port, int n) {
  std::vector<std::unique_ptr<Http1Client>> clients;
  for (int i = 0; i < n; ++i) {
    clients.push_back(std::make_unique<Http1Client>(port));
    EXPECT_TRUE(clients.back()->sendRequest(http1Get("/r" + std::to_string(i))))
        << clients.back()->lastError();
  }
  return clients;
}

// Proves maxConnections is exact across workers: ten concurrent requests over two workers to a
// slow HTTP/1.1 upstream open exactly three connections; requests beyond them wait for one (or
// get 503 upstream_overflow on a worker that holds none), none opens a fourth.
TEST(UpstreamLimitsTest, MaxConnectionsIsExactAcrossWorkers) {
  constexpr int kRequests = 10;
  auto up = FakeUpstream::start(Protocol::Http1);
  up->setHandler([](const ReceivedRequest&) { return respond(200, {}, "ok").withDelay(400ms); });
  auto proxy = startBulwark(
      limitsConfig({up->address()}, "{tcp: {maxConnections: 3}}", "  timeouts: {request: 20s}\n"));
  ASSERT_NE(proxy, nullptr);
  auto clients = sendEach(proxy->port("public"), kRequests);
  ASSERT_TRUE(waitFor([&] { return up->activeStreams() == 3; }, deadlineIn(3s)))
      << "active at the upstream: " << up->activeStreams();
  EXPECT_EQ(up->connectionCount(), 3u);
  int ok = 0;
  int overflowed = 0;
  for (auto& client : clients) {
    auto r = client->readResponse(deadlineIn(15s));
    ASSERT_TRUE(r) << client->lastError();
    if (r->status == 200) {
      ++ok;
    } else {
      EXPECT_EQ(r->status, 503);
      EXPECT_EQ(r->header("x-bulwark-reason").value_or(""), "upstream_overflow");
      ++overflowed;
    }
  }
  EXPECT_EQ(ok + overflowed, kRequests);
  EXPECT_GE(ok, 3);
  EXPECT_EQ(up->requestCount(), static_cast<size_t>(ok));
  EXPECT_EQ(up->totalConnections(), 3u) << "more connections than maxConnections were opened";
  EXPECT_GE(overflow(proxy->adminPort(), "connections"), 1);
}

// Proves maxPendingRequests: with the only connection busy, two requests wait for it and the
// third is answered 503 at once; the waiting two are served on that same connection.
TEST(UpstreamLimitsTest, MaxPendingRequestsOverflowIsAFast503) {
  auto up = FakeUpstream::start(Protocol::Http1);
  up->setHandler([](const ReceivedRequest&) { return respond(200, {}, "ok").withDelay(500ms); });
  auto proxy = startBulwark(limitsConfig(
      {up->address()}, "{tcp: {maxConnections: 1}, http: {maxPendingRequests: 2}}", "", 1));
  ASSERT_NE(proxy, nullptr);
  const uint16_t admin = proxy->adminPort();
  auto busy = sendEach(proxy->port("public"), 1);
  ASSERT_TRUE(up->waitForRequests(1, deadlineIn(3s)));
  auto waiting = sendEach(proxy->port("public"), 2);
  ASSERT_TRUE(
      waitFor([&] { return upstreamJson(admin).value("pendingRequests", 0) == 2; }, deadlineIn(3s)))
      << upstreamJson(admin).dump();
  Http1Client third(proxy->port("public"));
  auto r = third.get("/over", {}, deadlineIn(3s));
  ASSERT_TRUE(r) << third.lastError();
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->header("x-bulwark-reason").value_or(""), "upstream_overflow");
  // Answered while the first request still holds the connection: it did not wait for a slot.
  EXPECT_EQ(up->requestCount(), 1u);
  EXPECT_EQ(overflow(admin, "pending"), 1);
  for (auto* group : {&busy, &waiting}) {
    for (auto& client : *group) {
      auto answer = client->readResponse(deadlineIn(5s));
      ASSERT_TRUE(answer) << client->lastError();
      EXPECT_EQ(answer->status, 200);
    }
  }
  EXPECT_EQ(up->requestCount(), 3u);
  EXPECT_EQ(up->totalConnections(), 1u);
}

// Proves maxRequests: with one request in flight and maxRequests 1, the next is a fast 503.
TEST(UpstreamLimitsTest, MaxRequestsOverflowIsAFast503) {
  auto up = FakeUpstream::start(Protocol::Http1);
  up->setHandler([](const ReceivedRequest&) { return hang(); });
  auto proxy = startBulwark(limitsConfig({up->address()}, "{http: {maxRequests: 1}}"));
  ASSERT_NE(proxy, nullptr);
  Http1Client hung(proxy->port("public"));
  ASSERT_TRUE(hung.sendRaw("GET /a HTTP/1.1\r\nHost: x\r\n\r\n"));
  ASSERT_TRUE(up->waitForRequests(1));
  Http1Client c(proxy->port("public"));
  auto r = c.get("/b");
  ASSERT_TRUE(r) << c.lastError();
  EXPECT_EQ(r->status, 503);
  EXPECT_EQ(r->header("x-bulwark-reason").value_or(""), "upstream_overflow");
  EXPECT_EQ(up->requestCount(), 1u);
  EXPECT_TRUE(waitForMetric(proxy->adminPort(), "bulwark_connection_pool_overflow_total",
                            {{"upstream", "backend"}, {"limit", "requests"}},
                            [](double v) { return v == 1; }));
}

// Proves maxRetries bounds the retries in flight to the upstream: five requests whose first
// attempt fails want five retries, the retries take a while, and only two may be out at once;
// the other three requests get the upstream's 503 without a retry.
TEST(UpstreamLimitsTest, MaxRetriesBoundsRetriesInFlight) {
  constexpr int kRequests = 5;
  auto hosts = FakeUpstreamGroup::start(2, Protocol::Http1);
  hosts.setHandler([](const ReceivedRequest& r) {
    return r.header("x-bulwark-attempt").value_or("1") == "1"
               ? respond(503, {}, "")
               : respond(200, {}, "retried").withDelay(1s);
  });
  auto proxy = startBulwark(limitsConfig(
      hosts.addresses(), "{http: {maxRetries: 2}}",
      "  timeouts: {request: 10s}\n"
      "  retries: {attempts: 2, retryOn: [5xx], backoff: {baseInterval: 1ms, maxInterval: 2ms},\n"
      "            budget: {percent: 100, minRetryConcurrency: 10}}\n"));
  ASSERT_NE(proxy, nullptr);
  const uint16_t admin = proxy->adminPort();
  auto clients = sendEach(proxy->port("public"), kRequests);
  int retried = 0;
  int refused = 0;
  for (auto& client : clients) {
    auto r = client->readResponse(deadlineIn(8s));
    ASSERT_TRUE(r) << client->lastError();
    if (r->status == 200) {
      EXPECT_EQ(r->body, "retried");
      ++retried;
    } else {
      EXPECT_EQ(r->status, 503);
      ++refused;
    }
  }
  EXPECT_EQ(retried, 2);
  EXPECT_EQ(refused, kRequests - 2);
  EXPECT_EQ(hosts.requestCount(), static_cast<size_t>(kRequests + 2));
  EXPECT_EQ(overflow(admin, "retries"), kRequests - 2);
  // The retry's permit goes when its attempt is torn down on the worker, which may be just after
  // the client read the answer: wait for the count to settle rather than read it once.
  EXPECT_TRUE(
      waitFor([&] { return upstreamJson(admin).value("retriesActive", -1) == 0; }, deadlineIn(2s)))
      << upstreamJson(admin).dump();
}

}  // namespace
}  // namespace bulwark::testing
