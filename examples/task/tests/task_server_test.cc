// task-server as a process on loopback: the API, idempotency, capacity, persistence, drain and
// every fault knob (on, observable, off again at run time).
#include <signal.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <set>
#include <thread>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "examples/common/fault_injector.h"
#include "examples/common/testing/http_client.h"
#include "examples/common/testing/process.h"

namespace bulwark::examples::task {
namespace {

using std::chrono::milliseconds;
using testing::HttpCallResult;
using testing::HttpOutcome;
using testing::httpRequest;
using Clock = std::chrono::steady_clock;

const std::string kBody = R"({"name":"report","actions":[{"type":"fetch"}]})";

class TaskServerTest : public ::testing::Test {
protected:
  void start(std::vector<std::string> extra = {}) {
    std::vector<std::string> args = {"--port",       "0",         "--control-port", "0",
                                     "--replica-id", "task-test", "--seed",         "7"};
    args.insert(args.end(), extra.begin(), extra.end());
    auto server = testing::spawnServer(TASK_SERVER_PATH, args);
    ASSERT_TRUE(server) << server.error();
    server_ = std::move(*server);
    ASSERT_GT(server_.control_port, 0);
  }

  HttpCallResult post(const std::string& body, const std::string& key = "",
                      milliseconds timeout = milliseconds(2000)) {
    testing::HttpHeaders headers = {{"Content-Type", "application/json"}};
    if (!key.empty()) {
      headers.emplace_back("Idempotency-Key", "\"" + key + "\"");
    }
    return httpRequest(server_.port, "POST", "/v1/tasks", headers, body, timeout);
  }

  HttpCallResult get(const std::string& path, milliseconds timeout = milliseconds(2000)) {
    return httpRequest(server_.port, "GET", path, {}, "", timeout);
  }

  void faults(const std::string& json) {
    auto r = testing::setFaults(server_.control_port, json);
    ASSERT_EQ(r.outcome, HttpOutcome::Ok) << r.detail;
    ASSERT_EQ(r.response.status, 200) << r.response.body;
  }

  size_t taskCount() {
    auto r = get("/v1/tasks?limit=1000");
    EXPECT_EQ(r.response.status, 200);
    return nlohmann::json::parse(r.response.body)["count"].get<size_t>();
  }

  testing::SpawnedServer server_;
};

std::string tempPath(const std::string& name) {
  return (std::filesystem::temp_directory_path() / (name + "_" + std::to_string(getpid())))
      .string();
}

TEST_F(TaskServerTest, CreatesGetsAndListsTasks) {
  start({"--latency-scale", "0"});
  auto created = post(kBody);
  ASSERT_EQ(created.outcome, HttpOutcome::Ok) << created.detail;
  EXPECT_EQ(created.response.status, 201);
  EXPECT_EQ(created.response.header("x-replica-id"), "task-test");
  auto task = nlohmann::json::parse(created.response.body);
  const std::string id = task["id"];
  EXPECT_EQ(created.response.header("location"), "/v1/tasks/" + id);
  EXPECT_EQ(task["status"], "succeeded");
  ASSERT_EQ(post(R"({"name":"x","actions":[{"type":"fail"}]})").response.status, 201);

  auto fetched = get("/v1/tasks/" + id);
  EXPECT_EQ(fetched.response.status, 200);
  EXPECT_EQ(nlohmann::json::parse(fetched.response.body)["name"], "report");
  EXPECT_EQ(get("/v1/tasks/t-404").response.status, 404);

  auto failed = nlohmann::json::parse(get("/v1/tasks?status=failed").response.body);
  EXPECT_EQ(failed["count"], 1);
  EXPECT_EQ(failed["tasks"][0]["name"], "x");
  EXPECT_EQ(taskCount(), 2u);
  EXPECT_EQ(get("/v1/tasks?status=weird").response.status, 400);
  EXPECT_EQ(post("{not json").response.status, 400);
  EXPECT_EQ(get("/healthz").response.status, 200);
}

TEST_F(TaskServerTest, IdempotencyKeyReplaysRejectsMismatchAndCreatesOnce) {
  start({"--latency-scale", "0"});
  auto first = post(kBody, "order-1");
  ASSERT_EQ(first.response.status, 201);
  auto second = post(kBody, "order-1");
  ASSERT_EQ(second.response.status, 201);
  EXPECT_EQ(second.response.body, first.response.body);
  EXPECT_EQ(second.response.header("idempotent-replayed"), "true");
  auto different = post(R"({"name":"other"})", "order-1");
  EXPECT_EQ(different.response.status, 422);
  EXPECT_EQ(taskCount(), 1u);
  EXPECT_EQ(post(kBody, "").response.status, 201);  // no key, no protection
  EXPECT_EQ(taskCount(), 2u);
}

TEST_F(TaskServerTest, KeyStillInProgressIs409) {
  // Executions take >= ~85 ms at scale 5 (and the seed fixes the samples), so the second request
  // finds the key claimed.
  start({"--latency-scale", "5"});
  HttpCallResult a;
  std::thread first([&] { a = post(kBody, "slow-1"); });
  // Whichever request claims the key first runs; the other finds it in progress.
  HttpCallResult b = post(kBody, "slow-1");
  first.join();
  std::multiset<int> statuses = {a.response.status, b.response.status};
  EXPECT_EQ(statuses, (std::multiset<int>{201, 409})) << a.response.body << b.response.body;
  const auto& conflict = a.response.status == 409 ? a : b;
  EXPECT_EQ(conflict.response.header("retry-after"), "1");
  EXPECT_EQ(taskCount(), 1u);
}

TEST_F(TaskServerTest, ConcurrencyCapAnswers503WithRetryAfter) {
  start({"--latency-scale", "5", "--max-concurrent", "2", "--retry-after-s", "3"});
  std::vector<HttpCallResult> results(3);
  std::vector<std::thread> clients;
  for (int i = 0; i < 3; ++i) {
    clients.emplace_back([&, i] { results[i] = post(kBody); });
  }
  for (auto& c : clients) {
    c.join();
  }
  int created = 0;
  int rejected = 0;
  for (const auto& r : results) {
    if (r.response.status == 201) {
      ++created;
    }
    if (r.response.status == 503) {
      ++rejected;
      EXPECT_EQ(r.response.header("retry-after"), "3");
    }
  }
  EXPECT_EQ(created, 2);
  EXPECT_EQ(rejected, 1);
}

TEST_F(TaskServerTest, RestartReplaysTheLogAndKeepsKeys) {
  const std::string file = tempPath("task_server_test_log");
  std::filesystem::remove(file);
  start({"--latency-scale", "0", "--data-file", file});
  auto created = post(kBody, "persist-1");
  ASSERT_EQ(created.response.status, 201);
  const std::string id = nlohmann::json::parse(created.response.body)["id"];
  server_.process->sendSignal(SIGTERM);
  EXPECT_EQ(server_.process->waitExit(milliseconds(2000)), 0);

  start({"--latency-scale", "0", "--data-file", file});
  EXPECT_EQ(get("/v1/tasks/" + id).response.status, 200);
  auto replay = post(kBody, "persist-1");
  EXPECT_EQ(replay.response.status, 201);
  EXPECT_EQ(nlohmann::json::parse(replay.response.body)["id"], id);
  EXPECT_EQ(taskCount(), 1u);
  std::filesystem::remove(file);
}

TEST_F(TaskServerTest, SigtermFinishesInFlightAndExitsZero) {
  start({"--latency-scale", "4"});
  HttpCallResult inflight;
  std::thread client([&] { inflight = post(kBody); });
  // Wait until the request is being executed (/healthz reports executions in flight).
  auto deadline = Clock::now() + milliseconds(1000);
  int executing = 0;
  while (executing == 0 && Clock::now() < deadline) {
    auto health = get("/healthz");
    ASSERT_EQ(health.response.status, 200);
    executing = nlohmann::json::parse(health.response.body)["executing"].get<int>();
  }
  ASSERT_EQ(executing, 1);
  server_.process->sendSignal(SIGTERM);
  client.join();
  EXPECT_EQ(inflight.response.status, 201) << testing::toString(inflight.outcome);
  EXPECT_EQ(server_.process->waitExit(milliseconds(2000)), 0);
}

TEST_F(TaskServerTest, ErrorKnobFailsEveryRequestThenTurnsOff) {
  start({"--latency-scale", "0"});
  faults(R"({"error_rate": 1.0, "error_http_status": 503, "retry_after": "2"})");
  for (int i = 0; i < 5; ++i) {
    auto r = post(kBody);
    EXPECT_EQ(r.response.status, 503);
    EXPECT_EQ(r.response.header("retry-after"), "2");
    EXPECT_EQ(r.response.header("x-replica-id"), "task-test");
  }
  faults("{}");
  EXPECT_EQ(post(kBody).response.status, 201);
  EXPECT_EQ(taskCount(), 1u);  // injected errors created nothing
}

TEST_F(TaskServerTest, LatencyKnobDelaysThenTurnsOff) {
  start({"--latency-scale", "0"});
  faults(R"({"latency_fixed_ms": 200})");
  auto t0 = Clock::now();
  EXPECT_EQ(get("/healthz").response.status, 200);
  EXPECT_GE(Clock::now() - t0, milliseconds(200));
  faults("{}");
  t0 = Clock::now();
  EXPECT_EQ(get("/healthz").response.status, 200);
  EXPECT_LT(Clock::now() - t0, milliseconds(200));
}

TEST_F(TaskServerTest, HangKnobTimesTheClientOutThenTurnsOff) {
  start({"--latency-scale", "0"});
  faults(R"({"hang_rate": 1.0})");
  EXPECT_EQ(get("/healthz", milliseconds(300)).outcome, HttpOutcome::Timeout);
  faults("{}");
  EXPECT_EQ(get("/healthz").response.status, 200);
}

TEST_F(TaskServerTest, ResetKnobCutsResponsesButTheTaskExists) {
  start({"--latency-scale", "0"});
  faults(R"({"reset_rate": 1.0})");
  auto r = post(kBody, "reset-1");
  EXPECT_TRUE(r.outcome == HttpOutcome::ConnectionReset ||
              r.outcome == HttpOutcome::ConnectionClosed)
      << testing::toString(r.outcome);
  faults("{}");
  // The work happened before the reset; the retry with the same key replays it.
  auto retry = post(kBody, "reset-1");
  EXPECT_EQ(retry.response.status, 201);
  EXPECT_EQ(retry.response.header("idempotent-replayed"), "true");
  EXPECT_EQ(taskCount(), 1u);
}

TEST_F(TaskServerTest, SlowBodyKnobStretchesTheResponse) {
  start({"--latency-scale", "0"});
  ASSERT_EQ(post(kBody).response.status, 201);
  const size_t size = get("/v1/tasks").response.body.size();
  // Stretch the list response to about 300 ms.
  const auto bps = static_cast<int64_t>(size * 1000 / 300);
  faults(R"({"slow_body_bytes_per_sec": )" + std::to_string(bps) + "}");
  auto t0 = Clock::now();
  auto r = get("/v1/tasks");
  EXPECT_EQ(r.response.status, 200);
  EXPECT_EQ(r.response.body.size(), size);
  EXPECT_GE(Clock::now() - t0, milliseconds(200));
  faults("{}");
  t0 = Clock::now();
  EXPECT_EQ(get("/v1/tasks").response.status, 200);
  EXPECT_LT(Clock::now() - t0, milliseconds(200));
}

TEST_F(TaskServerTest, CrashKnobExitsTheProcess) {
  start({"--latency-scale", "0"});
  faults(R"({"crash": true})");
  faults(R"({"crash": false})");  // armed and disarmed: nothing happens
  EXPECT_EQ(get("/healthz").response.status, 200);
  faults(R"({"crash": true})");
  auto r = get("/healthz");
  EXPECT_NE(r.outcome, HttpOutcome::Ok);
  EXPECT_EQ(server_.process->waitExit(milliseconds(2000)), kCrashExitCode);
}

TEST_F(TaskServerTest, HealthFlipsThroughTheControlEndpoint) {
  start({"--latency-scale", "0"});
  auto r = httpRequest(server_.control_port, "POST", "/_fault/health", {}, R"({"serving":false})");
  ASSERT_EQ(r.response.status, 200);
  EXPECT_EQ(get("/healthz").response.status, 503);
  httpRequest(server_.control_port, "POST", "/_fault/health", {}, R"({"serving":true})");
  EXPECT_EQ(get("/healthz").response.status, 200);
}

}  // namespace
}  // namespace bulwark::examples::task
