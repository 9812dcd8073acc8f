// Route `idempotency` with `dedupe.store: redis`: three bulwark processes in front of the example
// task backend (examples/task) share one Idempotency-Key store in a real redis-server. The
// backend dedupes keys itself too, so the assertions look at what only bulwark produces
// (x-bulwark-idempotent-replay, x-bulwark-reason) and at each instance's upstream attempts.

#include <unistd.h>

#include <csignal>
#include <optional>
#include <regex>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/bulwark_process.h"
#include "tests/integration/redis_server.h"
#include "tests/support/admin_client.h"
#include "tests/support/http1_client.h"
#include "tests/support/process.h"
#include "tests/support/wait.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

constexpr char kListener[] = "public";

Http1Request createTask(const std::string& name, const std::string& key) {
  nlohmann::json body = {{"name", name},
                         {"actions", nlohmann::json::array({{{"type", "transform"}}})}};
  return http1Request(
      "POST", "/v1/tasks",
      {{"Content-Type", "application/json"}, {"Idempotency-Key", "\"" + key + "\""}}, body.dump());
}

class RedisIdempotencyTest : public ::testing::Test {
protected:
  void SetUp() override {
    redis_ = RedisServer::start();
    ASSERT_TRUE(redis_);
    std::string error;
    ProcessOptions options;
    options.path = TASK_SERVER_PATH;
    options.args = {"--port",          "0",
                    "--replica-id",    "task-0",
                    "--control-port",  "0",
                    "--latency-scale", "0",
                    "--data-file",     writeTempFile("tasks.log", "")};
    backend_ = ChildProcess::spawn(options, &error);
    ASSERT_TRUE(backend_) << error;
    auto port = backend_->waitForListeningPort(deadlineIn(15s));
    auto control = backend_->waitForLine(std::regex(R"(control port: (\d+))"), deadlineIn(15s));
    ASSERT_TRUE(port && control) << backend_->output();
    backend_port_ = *port;
    control_port_ = static_cast<uint16_t>(std::stoi((*control)[1]));
    const std::string yaml =
        ConfigBuilder()
            // The operation timeout is generous: on a loaded machine a script call can take
            // tens of milliseconds, and a timed-out call is refused (failureMode deny), which is
            // not what these tests are about (Redis gone is: it fails at once, timeout or not).
            .topLevel("redis: {address: " + redis_->address() + ", timeout: 500ms}\n")
            .listener("http1")
            .upstream("http1", {"127.0.0.1:" + std::to_string(backend_port_)})
            .route(
                "  timeouts: {request: 10s}\n"
                "  idempotency:\n"
                "    dedupe: {enabled: true, ttl: 1m, maxBodyBytes: 4Ki, store: redis, "
                "lease: 2s}\n")
            .yaml();
    for (int i = 0; i < 3; ++i) {
      proxies_.push_back(startBulwark(yaml));
      ASSERT_TRUE(proxies_.back());
      ASSERT_TRUE(waitForMetric(
          proxies_.back()->adminPort(), "bulwark_redis_connected", {},
          [](double v) { return v == 2; }, deadlineIn(10s)));
    }
  }

  uint16_t port(size_t i) const { return proxies_[i]->port(kListener); }
  uint16_t admin(size_t i) const { return proxies_[i]->adminPort(); }

  double attempts(size_t i) {
    return metricValue(admin(i), "bulwark_upstream_attempts_total",
                       {{"route", "all"}, {"kind", "initial"}})
        .value_or(0);
  }
  double result(size_t i, const std::string& label) {
    return metricValue(admin(i), "bulwark_idempotency_results_total",
                       {{"route", "all"}, {"result", label}})
        .value_or(0);
  }

  int tasksNamed(const std::string& name) {
    Http1Client direct(backend_port_);
    auto list = direct.get("/v1/tasks?limit=1000");
    if (!list || list->status != 200) {
      return -1;
    }
    int n = 0;
    for (const auto& task : nlohmann::json::parse(list->body, nullptr, false)
                                .value("tasks", nlohmann::json::array())) {
      n += task.value("name", "") == name ? 1 : 0;
    }
    return n;
  }

  bool setBackendFault(const std::string& json) {
    Http1Client control(control_port_);
    auto r = control.request(
        http1Request("POST", "/_fault", {{"Content-Type", "application/json"}}, json));
    return r && r->status == 200;
  }

  std::unique_ptr<RedisServer> redis_;
  std::unique_ptr<ChildProcess> backend_;
  uint16_t backend_port_ = 0;
  uint16_t control_port_ = 0;
  std::vector<std::unique_ptr<BulwarkProcess>> proxies_;
};

// Created through A, retried through B and C: B and C replay A's stored answer without
// forwarding anything, and the backend holds one task.
TEST_F(RedisIdempotencyTest, RetryOnAnotherInstanceIsReplayed) {
  const std::string key = "retry-" + std::to_string(::getpid());
  const std::string name = "report-" + key;
  Http1Client a(port(0));
  auto first = a.request(createTask(name, key));
  ASSERT_TRUE(first) << a.lastError();
  ASSERT_EQ(201, first->status) << first->body;
  const std::string id = nlohmann::json::parse(first->body, nullptr, false).value("id", "");
  ASSERT_FALSE(id.empty());
  for (size_t i : {1u, 2u}) {
    const double attempts_before = attempts(i);
    Http1Client other(port(i));
    // A's answer reaches the client a moment before its completion is stored in Redis; until
    // then another instance answers 409 (in flight), and a client tries again.
    std::optional<Http1Response> retry;
    ASSERT_TRUE(waitFor(
        [&] {
          retry = other.request(createTask(name, key));
          return !retry || retry->status != 409;
        },
        deadlineIn(5s)));
    ASSERT_TRUE(retry) << other.lastError();
    EXPECT_EQ(201, retry->status) << retry->body;
    EXPECT_EQ("true", retry->header("x-bulwark-idempotent-replay").value_or("")) << i;
    EXPECT_EQ(id, nlohmann::json::parse(retry->body, nullptr, false).value("id", ""));
    EXPECT_EQ(first->header("Location"), retry->header("Location"));
    EXPECT_EQ(attempts_before, attempts(i)) << "instance " << i << " forwarded the retry";
  }
  EXPECT_EQ(1, tasksNamed(name));
  // A different body under the key is refused by any instance.
  Http1Client c(port(2));
  auto other_body = c.request(createTask("other-" + key, key));
  ASSERT_TRUE(other_body) << c.lastError();
  EXPECT_EQ(422, other_body->status);
  EXPECT_EQ("idempotency_key_mismatch", other_body->header("x-bulwark-reason").value_or(""));
}

// Sent to A and B at once: one create and one 409 from bulwark, never two creates.
TEST_F(RedisIdempotencyTest, ConcurrentSendsToTwoInstancesGiveOneCreateAndOne409) {
  const std::string key = "concurrent-" + std::to_string(::getpid());
  const std::string name = "report-" + key;
  ASSERT_TRUE(setBackendFault(R"({"latency_fixed_ms": 500})"));
  Http1Client a(port(0));
  ASSERT_TRUE(a.sendRequest(createTask(name, key)));
  ASSERT_TRUE(waitForMetric(
      admin(0), "bulwark_idempotency_results_total", {{"route", "all"}, {"result", "proceed"}},
      [](double v) { return v >= 1; }, deadlineIn(2s)));
  const double b_attempts = attempts(1);
  Http1Client b(port(1));
  auto conflict = b.request(createTask(name, key));
  ASSERT_TRUE(conflict) << b.lastError();
  EXPECT_EQ(409, conflict->status) << conflict->body;
  EXPECT_EQ("idempotency_key_in_flight", conflict->header("x-bulwark-reason").value_or(""));
  EXPECT_EQ("1", conflict->header("Retry-After").value_or(""));
  EXPECT_EQ(b_attempts, attempts(1));
  auto created = a.readResponse(deadlineIn(5s));
  ASSERT_TRUE(setBackendFault("{}"));
  ASSERT_TRUE(created) << a.lastError();
  EXPECT_EQ(201, created->status) << created->body;
  EXPECT_EQ(1, tasksNamed(name));
}

// The instance holding a key in flight dies: the others answer 409 until the lease (2 s) runs
// out, then the key is free again and the next retry proceeds.
TEST_F(RedisIdempotencyTest, LeaseOfACrashedInstanceExpires) {
  const std::string key = "crash-" + std::to_string(::getpid());
  const std::string name = "report-" + key;
  ASSERT_TRUE(setBackendFault(R"({"latency_fixed_ms": 5000})"));
  Http1Client a(port(0));
  ASSERT_TRUE(a.sendRequest(createTask(name, key)));
  ASSERT_TRUE(waitForMetric(
      admin(0), "bulwark_idempotency_results_total", {{"route", "all"}, {"result", "proceed"}},
      [](double v) { return v >= 1; }, deadlineIn(2s)));
  const Clock::time_point claimed = Clock::now();
  proxies_[0]->process().kill();
  ASSERT_TRUE(proxies_[0]->waitForExit(5s));
  ASSERT_TRUE(setBackendFault("{}"));
  Http1Client b(port(1));
  auto conflict = b.request(createTask(name, key));
  ASSERT_TRUE(conflict) << b.lastError();
  EXPECT_EQ(409, conflict->status) << conflict->body;
  // Retried as a client would until it goes through: never before the lease ran out.
  std::optional<Http1Response> through;
  ASSERT_TRUE(waitFor(
      [&] {
        through = b.request(createTask(name, key));
        return through && through->status != 409;
      },
      deadlineIn(10s)));
  EXPECT_GE(Clock::now() - claimed, 1900ms);
  EXPECT_EQ("", through->header("x-bulwark-reason").value_or(""));
  EXPECT_GE(result(1, "proceed"), 1);
}

// Redis gone: keyed requests are refused with 503 (failureMode deny, the default) rather than
// risk running twice; unkeyed ones are untouched.
TEST_F(RedisIdempotencyTest, RedisDownRefusesKeyedRequests) {
  redis_->kill();
  Http1Client a(port(0));
  std::optional<Http1Response> r;
  ASSERT_TRUE(waitFor(
      [&] {
        r = a.request(createTask("down", "down-" + std::to_string(::getpid())));
        return r && r->status == 503;
      },
      deadlineIn(5s)));
  EXPECT_EQ("idempotency_store_unavailable", r->header("x-bulwark-reason").value_or(""));
  auto unkeyed = a.request(http1Request("POST", "/v1/tasks", {{"Content-Type", "application/json"}},
                                        R"({"name":"unkeyed","actions":[{"type":"transform"}]})"));
  ASSERT_TRUE(unkeyed) << a.lastError();
  EXPECT_EQ(201, unkeyed->status) << unkeyed->body;
}

}  // namespace
}  // namespace bulwark::testing
