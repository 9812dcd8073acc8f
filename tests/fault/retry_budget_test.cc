// Labelled fault run (ctest -L fault): an upstream failing 100% with 503 under a steady
// 1,000 req/s for 20 s must see at most 1.2x the client rate + 10/s, because the
// retry budget refuses retries beyond 20% of requests plus a 10/s reserve. Prints what it saw.

#include <atomic>
#include <thread>

#include <gtest/gtest.h>

#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/http1_client.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

TEST(RetryBudgetFaultTest, FailingUpstreamSeesBoundedRetryStorm) {
  constexpr int kRate = 1000;  // client requests per second
  constexpr int kSeconds = 20;
  constexpr int kThreads = 20;  // each paces kRate / kThreads requests per second
  FakeUpstream up(FakeUpstreamOptions().withProtocol(Protocol::Http1).withStoreBodies(false));
  up.script().otherwise(respond(503, {}, "down"));
  std::string error;
  auto proxy = BulwarkProcess::start(
      simpleConfig("http1", "http1", {up.address()},
                   "  retries: {attempts: 5, retryOn: [5xx], budget: {percent: 20, "
                   "minRetryConcurrency: 3},\n"
                   "            backoff: {baseInterval: 1ms, maxInterval: 5ms}}\n"),
      {"public"}, &error);
  ASSERT_TRUE(proxy) << error;

  std::atomic<uint64_t> sent{0};
  std::atomic<uint64_t> answered{0};
  auto start = Clock::now();
  auto end = start + std::chrono::seconds(kSeconds);
  std::vector<std::thread> threads;
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      Http1Client client(proxy->port("public"));
      auto interval = std::chrono::microseconds(1000000 * kThreads / kRate);
      // Open loop: request i is due at start + offset + i*interval, whatever the last one took.
      auto next = start + std::chrono::microseconds(t * 1000000 / kRate);
      while (next < end) {
        while (Clock::now() < next) {
          std::this_thread::yield();
        }
        sent.fetch_add(1);
        auto r = client.get("/", {}, deadlineIn(2s));
        if (r) {
          answered.fetch_add(1);
        } else {
          client.close();
        }
        next += interval;
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  double elapsed = std::chrono::duration<double>(Clock::now() - start).count();
  uint64_t upstream_seen = up.requestCount();
  double client_rate = static_cast<double>(sent.load()) / elapsed;
  double upstream_rate = static_cast<double>(upstream_seen) / elapsed;
  double bound = 1.2 * client_rate + 10.0;
  std::printf(
      "retry storm: client %.0f req/s (%lu sent, %lu answered), upstream saw %.0f req/s; "
      "bound 1.2x + 10/s = %.0f req/s; ratio %.3f\n",
      client_rate, static_cast<unsigned long>(sent.load()),
      static_cast<unsigned long>(answered.load()), upstream_rate, bound,
      upstream_rate / client_rate);
  auto attempts = [&](const char* kind) {
    return metricValue(proxy->adminPort(), "bulwark_upstream_attempts_total",
                       {{"route", "all"}, {"kind", kind}})
        .value_or(0);
  };
  std::printf("bulwark attempts: initial %.0f, retry %.0f\n", attempts("initial"),
              attempts("retry"));
  EXPECT_GT(client_rate, 0.8 * kRate);  // the generator kept up (the run measured what it claims)
  EXPECT_LE(upstream_rate, bound);
  EXPECT_GT(
      metricValue(proxy->adminPort(), "bulwark_retry_budget_exhausted_total", {{"route", "all"}})
          .value_or(0),
      0);
}

}  // namespace
}  // namespace bulwark::testing
