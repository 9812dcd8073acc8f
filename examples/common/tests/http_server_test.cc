// The evhttp scaffold with every fault knob, driven in process through the test HTTP client.
#include "examples/common/http_server.h"

#include <atomic>
#include <chrono>
#include <functional>
#include <future>
#include <thread>

#include <event2/event.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "examples/common/fault_control_server.h"
#include "examples/common/testing/http_client.h"

namespace bulwark::examples {
namespace {

using std::chrono::milliseconds;
using testing::HttpOutcome;
using testing::httpRequest;
using Clock = std::chrono::steady_clock;

constexpr size_t kBodySize = 2000;

// An echo backend on a loop thread: GET /echo answers 200 with a kBodySize JSON body.
class ServerFixture : public ::testing::Test {
protected:
  void SetUp() override {
    enableLibeventThreads();
    base_ = event_base_new();
    HttpServerOptions options;
    options.replica_id = "echo-1";
    options.seed = 42;
    options.drain_timeout = milliseconds(1000);
    auto server = HttpServer::create(
        base_, injector_, options, [this](const std::shared_ptr<HttpExchange>& ex) {
          ++handled_;
          HttpResponse r;
          r.body = "{\"pad\":\"" + std::string(kBodySize - 11, 'x') + "\"}";
          r.body.push_back('\n');
          ex->reply(std::move(r));
        });
    ASSERT_TRUE(server) << server.error();
    server_ = std::move(*server);
    thread_ = std::thread([this] { event_base_loop(base_, EVLOOP_NO_EXIT_ON_EMPTY); });
  }

  void TearDown() override {
    if (thread_.joinable()) {
      event_base_loopbreak(base_);
      thread_.join();
    }
    server_.reset();
    event_base_free(base_);
  }

  void setFaults(const std::string& json) {
    auto spec = FaultSpec::fromJsonText(json);
    ASSERT_TRUE(spec) << spec.error();
    injector_.set(*spec);
  }

  // Runs `fn` on the loop thread and waits for it.
  void onLoop(std::function<void()> fn) {
    struct Call {
      std::function<void()> fn;
      std::promise<void> done;
    };
    auto* call = new Call{std::move(fn), {}};
    auto done = call->done.get_future();
    event_base_once(
        base_, -1, EV_TIMEOUT,
        [](int, short, void* arg) {
          std::unique_ptr<Call> c(static_cast<Call*>(arg));
          c->fn();
          c->done.set_value();
        },
        call, nullptr);
    done.wait();
  }

  testing::HttpCallResult get(milliseconds timeout = milliseconds(2000)) {
    return httpRequest(server_->port(), "GET", "/echo", {}, "", timeout);
  }

  void expectHealthy() {
    auto r = get();
    ASSERT_EQ(r.outcome, HttpOutcome::Ok) << r.detail;
    EXPECT_EQ(r.response.status, 200);
    EXPECT_EQ(r.response.body.size(), kBodySize);
  }

  event_base* base_ = nullptr;
  FaultInjector injector_;
  std::unique_ptr<HttpServer> server_;
  std::thread thread_;
  std::atomic<int> handled_{0};
};

TEST_F(ServerFixture, ServesWithReplicaIdAndKeepAlive) {
  auto conn = testing::HttpConnection::connect(server_->port());
  ASSERT_TRUE(conn) << conn.error();
  for (int i = 0; i < 3; ++i) {
    auto r = (*conn)->request("GET", "/echo");
    ASSERT_EQ(r.outcome, HttpOutcome::Ok) << r.detail;
    EXPECT_EQ(r.response.status, 200);
    EXPECT_EQ(r.response.header("x-replica-id"), "echo-1");
    EXPECT_EQ(r.response.header("content-type"), "application/json");
  }
  EXPECT_FALSE((*conn)->closed());
  EXPECT_EQ(handled_.load(), 3);
}

TEST_F(ServerFixture, ErrorRateOneAnswersTheStatusWithRetryAfterAndTurnsOff) {
  setFaults(R"({"error_rate": 1, "error_http_status": 429, "retry_after": "2"})");
  for (int i = 0; i < 5; ++i) {
    auto r = get();
    ASSERT_EQ(r.outcome, HttpOutcome::Ok) << r.detail;
    EXPECT_EQ(r.response.status, 429);
    EXPECT_EQ(r.response.header("retry-after"), "2");
    EXPECT_EQ(r.response.header("x-replica-id"), "echo-1");
  }
  EXPECT_EQ(handled_.load(), 0);  // injected errors never reach the handler
  setFaults("{}");
  expectHealthy();
}

TEST_F(ServerFixture, FixedLatencyDelaysTheAnswer) {
  setFaults(R"({"latency_fixed_ms": 150})");
  auto start = Clock::now();
  expectHealthy();
  EXPECT_GE(Clock::now() - start, milliseconds(150));
  setFaults("{}");
  start = Clock::now();
  expectHealthy();
  EXPECT_LT(Clock::now() - start, milliseconds(150));
}

TEST_F(ServerFixture, HangNeverAnswersUntilTurnedOff) {
  setFaults(R"({"hang_rate": 1})");
  auto r = get(milliseconds(200));
  EXPECT_EQ(r.outcome, HttpOutcome::Timeout) << toString(r.outcome);
  EXPECT_EQ(r.response.status, 0);
  // The client gave up and closed: the server notices and forgets the hung request.
  size_t live = 1;
  auto deadline = Clock::now() + milliseconds(1000);
  while (live != 0 && Clock::now() < deadline) {
    onLoop([&] { live = server_->liveRequests(); });
  }
  EXPECT_EQ(live, 0u);
  setFaults("{}");
  expectHealthy();
}

TEST_F(ServerFixture, ResetCutsTheResponseShort) {
  setFaults(R"({"reset_rate": 1})");
  auto r = get();
  EXPECT_TRUE(r.outcome == HttpOutcome::ConnectionReset ||
              r.outcome == HttpOutcome::ConnectionClosed)
      << toString(r.outcome);
  EXPECT_EQ(r.response.status, 200);             // headers arrived ...
  EXPECT_LT(r.response.body.size(), kBodySize);  // ... the body did not
  EXPECT_EQ(handled_.load(), 1);  // the work was done: this is what makes retries dangerous
  setFaults("{}");
  expectHealthy();
}

TEST_F(ServerFixture, SlowBodyTricklesAtTheRate) {
  // 2000 bytes at 10000 B/s: about 200 ms, in 500-byte slices every 50 ms.
  setFaults(R"({"slow_body_bytes_per_sec": 10000})");
  auto start = Clock::now();
  expectHealthy();
  EXPECT_GE(Clock::now() - start, milliseconds(140));
  setFaults("{}");
  start = Clock::now();
  expectHealthy();
  EXPECT_LT(Clock::now() - start, milliseconds(140));
}

TEST_F(ServerFixture, ClientGoingAwayDuringLatencyIsHarmless) {
  setFaults(R"({"latency_fixed_ms": 100})");
  auto r = get(milliseconds(20));
  EXPECT_EQ(r.outcome, HttpOutcome::Timeout);
  setFaults("{}");
  expectHealthy();
}

TEST_F(ServerFixture, DrainFinishesInFlightAndStopsAccepting) {
  setFaults(R"({"latency_fixed_ms": 200})");
  std::atomic<bool> drained{false};
  testing::HttpCallResult slow;
  std::thread client([&] { slow = get(); });
  // Drain only once the slow request is in flight.
  auto deadline = Clock::now() + milliseconds(1000);
  size_t inflight = 0;
  while (inflight == 0 && Clock::now() < deadline) {
    onLoop([&] { inflight = server_->inflight(); });
  }
  ASSERT_EQ(inflight, 1u);
  onLoop([&] { server_->drain([&drained] { drained = true; }); });
  EXPECT_FALSE(drained.load());
  client.join();
  ASSERT_EQ(slow.outcome, HttpOutcome::Ok) << slow.detail;
  EXPECT_EQ(slow.response.status, 200);
  EXPECT_EQ(slow.response.header("connection"), "close");
  deadline = Clock::now() + milliseconds(1000);
  while (!drained.load() && Clock::now() < deadline) {
    std::this_thread::yield();
  }
  EXPECT_TRUE(drained.load());
  EXPECT_EQ(get().outcome, HttpOutcome::ConnectFailed);
}

TEST_F(ServerFixture, DrainDropsHungRequestsAtOnce) {
  setFaults(R"({"hang_rate": 1})");
  testing::HttpCallResult hung;
  std::thread client([&] { hung = get(milliseconds(1500)); });
  auto deadline = Clock::now() + milliseconds(1000);
  size_t live = 0;
  while (live == 0 && Clock::now() < deadline) {
    onLoop([&] { live = server_->liveRequests(); });
  }
  ASSERT_EQ(live, 1u);
  std::atomic<bool> drained{false};
  auto start = Clock::now();
  onLoop([&] { server_->drain([&drained] { drained = true; }); });
  client.join();
  EXPECT_TRUE(drained.load());
  EXPECT_NE(hung.outcome, HttpOutcome::Ok);
  EXPECT_NE(hung.outcome, HttpOutcome::Timeout);  // closed by the drain, not left hanging
  EXPECT_LT(Clock::now() - start, milliseconds(900));
}

TEST(FaultControlServerTest, PostReplacesGetReadsAndBadInputIsRejected) {
  FaultInjector injector;
  std::atomic<int> health_calls{0};
  std::atomic<bool> serving{true};
  auto control = FaultControlServer::start(injector, 0, [&](bool s) {
    serving = s;
    ++health_calls;
  });
  ASSERT_TRUE(control) << control.error();
  int port = (*control)->port();

  auto r = httpRequest(port, "POST", "/_fault", {}, R"({"error_rate": 0.5, "retry_after": "1"})");
  ASSERT_EQ(r.outcome, HttpOutcome::Ok) << r.detail;
  EXPECT_EQ(r.response.status, 200);
  EXPECT_DOUBLE_EQ(injector.current().error_rate, 0.5);
  EXPECT_EQ(injector.current().retry_after, "1");

  r = httpRequest(port, "GET", "/_fault");
  ASSERT_EQ(r.response.status, 200);
  auto json = nlohmann::json::parse(r.response.body);
  EXPECT_DOUBLE_EQ(json["error_rate"].get<double>(), 0.5);

  r = httpRequest(port, "POST", "/_fault", {}, R"({"eror_rate": 1})");
  EXPECT_EQ(r.response.status, 400);
  EXPECT_NE(r.response.body.find("eror_rate"), std::string::npos);
  EXPECT_DOUBLE_EQ(injector.current().error_rate, 0.5);  // unchanged

  r = httpRequest(port, "POST", "/_fault", {}, "{}");
  EXPECT_EQ(r.response.status, 200);
  EXPECT_TRUE(injector.current().inactive());

  r = httpRequest(port, "POST", "/_fault/health", {}, R"({"serving": false})");
  EXPECT_EQ(r.response.status, 200);
  EXPECT_FALSE(serving.load());
  EXPECT_EQ(health_calls.load(), 1);
  r = httpRequest(port, "POST", "/_fault/health", {}, R"({"serving": "no"})");
  EXPECT_EQ(r.response.status, 400);

  EXPECT_EQ(httpRequest(port, "GET", "/other").response.status, 404);
  (*control)->stop();
  EXPECT_EQ(httpRequest(port, "GET", "/_fault").outcome, HttpOutcome::ConnectFailed);
}

TEST(FaultControlServerTest, HealthWithoutCallbackIs404) {
  FaultInjector injector;
  auto control = FaultControlServer::start(injector, 0);
  ASSERT_TRUE(control) << control.error();
  auto r = httpRequest((*control)->port(), "POST", "/_fault/health", {}, R"({"serving": false})");
  EXPECT_EQ(r.response.status, 404);
}

}  // namespace
}  // namespace bulwark::examples
