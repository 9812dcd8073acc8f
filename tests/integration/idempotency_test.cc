// Route `idempotency` end to end: bulwark (two workers) in front of the example task backend
// (examples/task). The backend dedupes Idempotency-Key itself too, so every assertion about
// bulwark's store looks at what only bulwark produces (x-bulwark-idempotent-replay,
// x-bulwark-reason) and at how many creates reached the backend (its task list, bulwark's
// upstream attempt count).

#include <unistd.h>

#include <regex>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"
#include "tests/support/http1_client.h"
#include "tests/support/process.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

constexpr char kListener[] = "public";
// Fresh connections used to reach both workers: each lands on one of the two SO_REUSEPORT
// sockets by the hash of its source port, so 16 miss a worker together once in 2^15.
constexpr size_t kConnections = 16;

nlohmann::json parseJson(const std::string& body) {
  return nlohmann::json::parse(body, nullptr, false);
}

Http1Request createTask(const std::string& name, const std::string& key,
                        const std::string& request_id = "") {
  nlohmann::json body = {{"name", name},
                         {"actions", nlohmann::json::array({{{"type", "transform"}}})}};
  Headers headers = {{"Content-Type", "application/json"}, {"Idempotency-Key", "\"" + key + "\""}};
  if (!request_id.empty()) {
    headers.emplace_back("x-request-id", request_id);
  }
  return http1Request("POST", "/v1/tasks", headers, body.dump());
}

/** One task-server and one bulwark (runtime.concurrency 2) for the suite. Thread: test thread. */
class IdempotencyTest : public ::testing::Test {
protected:
  static void SetUpTestSuite() {
    std::string error;
    ProcessOptions options;
    options.path = TASK_SERVER_PATH;
    options.args = {"--port",          "0",
                    "--replica-id",    "task-0",
                    "--control-port",  "0",
                    "--latency-scale", "0",
                    "--data-file",     writeTempFile("tasks.log", "")};
    backend_ = ChildProcess::spawn(options, &error).release();
    if (backend_ == nullptr) {
      setup_error_ = error;
      return;
    }
    auto port = backend_->waitForListeningPort(deadlineIn(15s));
    auto control = backend_->waitForLine(std::regex(R"(control port: (\d+))"), deadlineIn(15s));
    if (!port || !control) {
      setup_error_ = "task-server did not announce its ports:\n" + backend_->output();
      return;
    }
    backend_port_ = *port;
    control_port_ = static_cast<uint16_t>(std::stoi((*control)[1]));
    // The access log goes to stdout, where the test reads which worker served each request.
    proxy_ = BulwarkProcess::start(
                 simpleConfig(
                     "http1", "http1", {"127.0.0.1:" + std::to_string(backend_port_)},
                     "  timeouts: {request: 5s}\n"
                     "  idempotency:\n"
                     "    header: Idempotency-Key\n"
                     "    dedupe: {enabled: true, ttl: 1m, maxEntries: 1000, maxBodyBytes: 4Ki}\n",
                     "", "observability:\n  accessLog: {path: /dev/stdout}\n"),
                 {kListener}, &error)
                 .release();
    if (proxy_ == nullptr) {
      setup_error_ = error;
    }
  }

  static void TearDownTestSuite() {
    delete proxy_;
    delete backend_;
    proxy_ = nullptr;
    backend_ = nullptr;
  }

  void SetUp() override { ASSERT_TRUE(proxy_ != nullptr && backend_port_ != 0) << setup_error_; }

  uint16_t proxyPort() const { return proxy_->port(kListener); }
  uint16_t adminPort() const { return proxy_->adminPort(); }

  /** Tasks named `name` in the backend's store, asked of the backend directly. */
  int tasksNamed(const std::string& name) {
    Http1Client direct(backend_port_);
    auto list = direct.get("/v1/tasks?limit=1000");
    if (!list || list->status != 200) {
      return -1;
    }
    int n = 0;
    for (const auto& task : parseJson(list->body).value("tasks", nlohmann::json::array())) {
      if (task.value("name", "") == name) {
        ++n;
      }
    }
    return n;
  }

  double idempotencyResult(const std::string& result) {
    return metricValue(adminPort(), "bulwark_idempotency_results_total",
                       {{"route", "all"}, {"result", result}})
        .value_or(0);
  }

  /** Sets the backend's fault knobs (latency) through its control port. */
  bool setBackendFault(const std::string& json) {
    Http1Client control(control_port_);
    auto r = control.request(
        http1Request("POST", "/_fault", {{"Content-Type", "application/json"}}, json));
    return r && r->status == 200;
  }

  std::string uniqueKey(const std::string& what) { return what + "-" + std::to_string(::getpid()); }

  static ChildProcess* backend_;
  static BulwarkProcess* proxy_;
  static uint16_t backend_port_;
  static uint16_t control_port_;
  static std::string setup_error_;
};

ChildProcess* IdempotencyTest::backend_ = nullptr;
BulwarkProcess* IdempotencyTest::proxy_ = nullptr;
uint16_t IdempotencyTest::backend_port_ = 0;
uint16_t IdempotencyTest::control_port_ = 0;
std::string IdempotencyTest::setup_error_;

// The same POST with the same key twice: the second answer is bulwark's stored copy of the first
// (same status, same task id, marked as a replay), and the backend created exactly one task and
// saw one create.
TEST_F(IdempotencyTest, RepeatIsReplayedAndTheBackendCreatesOneTask) {
  const std::string key = uniqueKey("replay");
  const std::string name = "report-" + key;
  const double replayed_before = idempotencyResult("replayed");
  Http1Client client(proxyPort());
  auto first = client.request(createTask(name, key));
  ASSERT_TRUE(first) << client.lastError();
  ASSERT_EQ(201, first->status) << first->body;
  EXPECT_FALSE(first->header("x-bulwark-idempotent-replay"));
  const std::string id = parseJson(first->body).value("id", "");
  ASSERT_FALSE(id.empty()) << first->body;

  auto second = client.request(createTask(name, key));
  ASSERT_TRUE(second) << client.lastError();
  EXPECT_EQ(201, second->status) << second->body;
  EXPECT_EQ("true", second->header("x-bulwark-idempotent-replay").value_or(""));
  // The backend's own replay marker is absent: the request never reached it.
  EXPECT_FALSE(second->header("Idempotent-Replayed"));
  EXPECT_EQ(id, parseJson(second->body).value("id", ""));
  EXPECT_EQ(first->header("Location"), second->header("Location"));
  EXPECT_EQ(1, tasksNamed(name));
  EXPECT_EQ(replayed_before + 1, idempotencyResult("replayed"));
}

// A duplicate while the first is still being executed gets bulwark's 409 (with Retry-After);
// the first completes normally, and one task exists.
TEST_F(IdempotencyTest, ConcurrentDuplicateGets409) {
  const std::string key = uniqueKey("inflight");
  const std::string name = "report-" + key;
  ASSERT_TRUE(setBackendFault(R"({"latency_fixed_ms": 500})"));
  const double proceeded = idempotencyResult("proceed");
  Http1Client first(proxyPort());
  ASSERT_TRUE(first.sendRequest(createTask(name, key)));
  ASSERT_TRUE(waitForMetric(
      adminPort(), "bulwark_idempotency_results_total", {{"route", "all"}, {"result", "proceed"}},
      [&](double v) { return v >= proceeded + 1; }, deadlineIn(2s)));
  Http1Client duplicate(proxyPort());
  auto conflict = duplicate.request(createTask(name, key));
  ASSERT_TRUE(conflict) << duplicate.lastError();
  EXPECT_EQ(409, conflict->status) << conflict->body;
  EXPECT_EQ("idempotency_key_in_flight", conflict->header("x-bulwark-reason").value_or(""));
  EXPECT_EQ("1", conflict->header("Retry-After").value_or(""));
  EXPECT_EQ("application/problem+json", conflict->header("Content-Type").value_or(""));
  auto done = first.readResponse(deadlineIn(5s));
  ASSERT_TRUE(setBackendFault("{}"));
  ASSERT_TRUE(done) << first.lastError();
  EXPECT_EQ(201, done->status) << done->body;
  EXPECT_EQ(1, tasksNamed(name));
}

// The same key with another body is bulwark's 422, and nothing more is created.
TEST_F(IdempotencyTest, DifferentBodySameKeyGets422) {
  const std::string key = uniqueKey("mismatch");
  Http1Client client(proxyPort());
  auto first = client.request(createTask("first-" + key, key));
  ASSERT_TRUE(first) << client.lastError();
  ASSERT_EQ(201, first->status) << first->body;
  auto other = client.request(createTask("second-" + key, key));
  ASSERT_TRUE(other) << client.lastError();
  EXPECT_EQ(422, other->status) << other->body;
  EXPECT_EQ("idempotency_key_mismatch", other->header("x-bulwark-reason").value_or(""));
  EXPECT_EQ(0, tasksNamed("second-" + key));
  EXPECT_EQ(1, tasksNamed("first-" + key));
}

// One store for all workers: after the first create, repeats on many fresh connections (spread
// over both workers by SO_REUSEPORT, which the access log's worker field shows) are all
// replayed by bulwark, none reaches the backend.
TEST_F(IdempotencyTest, StoreIsSharedAcrossWorkers) {
  const std::string key = uniqueKey("workers");
  const std::string name = "report-" + key;
  Http1Client client(proxyPort());
  auto first = client.request(createTask(name, key));
  ASSERT_TRUE(first) << client.lastError();
  ASSERT_EQ(201, first->status) << first->body;
  const double attempts_before = metricValue(adminPort(), "bulwark_upstream_attempts_total",
                                             {{"route", "all"}, {"kind", "initial"}})
                                     .value_or(-1);
  for (size_t i = 0; i < kConnections; ++i) {
    Http1Client fresh(proxyPort());
    auto r = fresh.request(createTask(name, key, key + "-" + std::to_string(i)));
    ASSERT_TRUE(r) << fresh.lastError();
    EXPECT_EQ(201, r->status) << i << ": " << r->body;
    EXPECT_EQ("true", r->header("x-bulwark-idempotent-replay").value_or("")) << "connection " << i;
  }
  EXPECT_EQ(attempts_before, metricValue(adminPort(), "bulwark_upstream_attempts_total",
                                         {{"route", "all"}, {"kind", "initial"}})
                                 .value_or(-2));
  EXPECT_EQ(1, tasksNamed(name));
  // Both workers answered replays: the store they read is one.
  std::vector<nlohmann::json> replays;
  ASSERT_TRUE(waitFor(
      [&] {
        replays.clear();
        for (const auto& line : proxy_->process().lines()) {
          auto entry = parseJson(line.text);
          if (entry.is_object() && entry.value("request_id", "").rfind(key + "-", 0) == 0) {
            replays.push_back(entry);
          }
        }
        return replays.size() == kConnections;
      },
      deadlineIn(5s)))
      << proxy_->process().output();
  std::set<int> workers;
  for (const auto& entry : replays) {
    EXPECT_EQ("idempotent_replay", entry.value("response_code_details", "")) << entry.dump();
    workers.insert(entry.value("worker", -1));
  }
  EXPECT_EQ((std::set<int>{0, 1}), workers);
}

// A body above dedupe.maxBodyBytes is refused with 413 before anything is forwarded.
TEST_F(IdempotencyTest, BodyAboveTheBoundIs413) {
  const std::string key = uniqueKey("large");
  Http1Client client(proxyPort());
  auto r = client.request(
      http1Request("POST", "/v1/tasks",
                   {{"Content-Type", "application/json"}, {"Idempotency-Key", "\"" + key + "\""}},
                   std::string(8 * 1024, 'x')));
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(413, r->status) << r->body;
  EXPECT_EQ("idempotency_body_too_large", r->header("x-bulwark-reason").value_or(""));
}

}  // namespace
}  // namespace bulwark::testing
