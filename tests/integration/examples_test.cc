// examples/edge.yaml in front of the three example backends, two replicas each, with real
// clients: HTTP/1.1 for task and recommendation, examples/ranking/ranking-client (grpc++) for
// ranking. The config is edge.yaml itself with only the addresses (and the drain pause) changed,
// so these tests break when the shipped file stops routing the backends' real APIs.

#include <unistd.h>

#include <fstream>
#include <map>
#include <set>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <yaml-cpp/yaml.h>

#include "tests/integration/bulwark_process.h"
#include "tests/integration/ranking_backend.h"
#include "tests/support/admin_client.h"
#include "tests/support/http1_client.h"
#include "tests/support/process.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

constexpr char kEdgeYaml[] = BULWARK_SOURCE_DIR "/examples/edge.yaml";
constexpr char kListener[] = "public";
// Bounds the loops that wait for a randomly balanced request to land on a given replica: with
// two replicas and LEAST_REQUEST's random tie-break, 40 misses in a row happen once in 2^40.
constexpr int kMaxBalancedTries = 40;

/** One running example backend. Thread: the test thread. */
struct Backend {
  std::string id;
  std::unique_ptr<ChildProcess> process;
  uint16_t port = 0;
  uint16_t control_port = 0;

  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
};

std::unique_ptr<ChildProcess> spawnBackend(const std::string& path, const std::string& id,
                                           std::vector<std::string> extra, std::string* error) {
  ProcessOptions options;
  options.path = path;
  options.args = {"--port", "0", "--replica-id", id, "--control-port", "0"};
  for (auto& a : extra) {
    options.args.push_back(std::move(a));
  }
  return ChildProcess::spawn(options, error);
}

/** Waits for the ports a spawned backend announces; false with *error on failure. */
bool awaitPorts(Backend& b, std::string* error) {
  auto port = b.process->waitForListeningPort(deadlineIn(15s));
  auto control = b.process->waitForLine(std::regex(R"(control port: (\d+))"), deadlineIn(15s));
  if (!port || !control) {
    *error = b.id + " did not announce its ports:\n" + b.process->output();
    return false;
  }
  b.port = *port;
  b.control_port = static_cast<uint16_t>(std::stoi((*control)[1]));
  return true;
}

/**
 * examples/edge.yaml with listeners and admin on port 0, each upstream's static endpoints
 * replaced by the running replicas, and no drain pause. Every upstream must be given.
 */
std::string edgeConfig(const std::map<std::string, std::vector<std::string>>& endpoints,
                       std::string* error) {
  YAML::Node root = YAML::LoadFile(kEdgeYaml);
  root["admin"]["address"] = "127.0.0.1:0";
  root["runtime"]["drain"]["minDuration"] = "0s";
  for (YAML::Node listener : root["listeners"]) {
    listener["address"] = "127.0.0.1:0";
  }
  std::set<std::string> seen;
  for (YAML::Node upstream : root["upstreams"]) {
    const auto name = upstream["name"].as<std::string>();
    auto it = endpoints.find(name);
    if (it == endpoints.end()) {
      *error = "edge.yaml has an upstream the test does not run: " + name;
      return {};
    }
    seen.insert(name);
    YAML::Node list(YAML::NodeType::Sequence);
    for (const auto& address : it->second) {
      YAML::Node ep;
      ep["address"] = address;
      list.push_back(ep);
    }
    upstream["endpoints"] = YAML::Node(YAML::NodeType::Map);
    upstream["endpoints"]["static"] = list;
  }
  if (seen.size() != endpoints.size()) {
    *error = "edge.yaml lacks one of the example upstreams";
    return {};
  }
  YAML::Emitter out;
  out << root;
  return out.c_str();
}

nlohmann::json parseJson(const std::string& body) {
  return nlohmann::json::parse(body, nullptr, false);
}

std::string replicaOf(const Http1Response& r) {
  return r.header("x-replica-id").value_or("<none>");
}

Http1Request createTask(const std::string& name, const std::string& idempotency_key = {}) {
  nlohmann::json action = {{"type", "transform"}};
  nlohmann::json body = {{"name", name}, {"actions", nlohmann::json::array({action})}};
  Headers headers = {{"Content-Type", "application/json"}};
  if (!idempotency_key.empty()) {
    headers.emplace_back("Idempotency-Key", "\"" + idempotency_key + "\"");
  }
  return http1Request("POST", "/v1/tasks", headers, body.dump());
}

Http1Request recommend(const std::string& path, const nlohmann::json& body,
                       bool with_tenant = true) {
  Headers headers = {{"Content-Type", "application/json"}};
  if (with_tenant) {
    headers.emplace_back("X-Tenant-Id", "demo");
  }
  return http1Request("POST", path, headers, body.dump());
}

/**
 * Two replicas of each backend and one bulwark, started once for the suite (startup is most of
 * the cost). Each test leaves the replicas as it found them (fault knobs off).
 */
class ExamplesThroughEdgeTest : public ::testing::Test {
protected:
  struct Environment {
    std::vector<Backend> task, recommendation, ranking;
    std::unique_ptr<BulwarkProcess> proxy;
    std::string task_log;
  };

  static void SetUpTestSuite() {
    env_ = new Environment();
    if (!startEnvironment(*env_, &setup_error_)) {
      delete env_;
      env_ = nullptr;
    }
  }

  static void TearDownTestSuite() {
    delete env_;
    env_ = nullptr;
  }

  static bool startEnvironment(Environment& env, std::string* error) {
    // One task log for both task replicas: they act as one store (the seed's shared database),
    // so a read or an Idempotency-Key replay may land on either replica.
    const std::string task_log = writeTempFile("tasks.log", "");
    env.task_log = task_log;
    auto spawn = [&](std::vector<Backend>& group, const std::string& path,
                     const std::string& prefix, const std::vector<std::string>& extra) {
      for (int i = 0; i < 2; ++i) {
        Backend b;
        b.id = prefix + "-" + std::to_string(i);
        b.process = spawnBackend(path, b.id, extra, error);
        if (!b.process) {
          return false;
        }
        group.push_back(std::move(b));
      }
      return true;
    };
    // Spawn all six first so they start in parallel, then collect their ports.
    if (!spawn(env.task, TASK_SERVER_PATH, "task",
               {"--data-file", task_log, "--latency-scale", "0.1"}) ||
        !spawn(env.recommendation, RECOMMENDATION_SERVER_PATH, "rec", {}) ||
        !spawn(env.ranking, RANKING_SERVER_PATH, "ranking", {})) {
      return false;
    }
    std::map<std::string, std::vector<std::string>> endpoints;
    for (auto* group : {&env.task, &env.recommendation, &env.ranking}) {
      for (auto& b : *group) {
        if (!awaitPorts(b, error)) {
          return false;
        }
      }
    }
    for (auto& b : env.ranking) {
      endpoints["ranking"].push_back(b.address());
    }
    for (auto& b : env.task) {
      endpoints["task"].push_back(b.address());
    }
    for (auto& b : env.recommendation) {
      endpoints["recommendation"].push_back(b.address());
    }
    std::string yaml = edgeConfig(endpoints, error);
    if (yaml.empty()) {
      return false;
    }
    env.proxy = BulwarkProcess::start(yaml, {kListener}, error);
    if (!env.proxy) {
      return false;
    }
    // requireUpstreams lists all three: ready means every upstream has its hosts.
    if (!waitForAdminStatus(env.proxy->adminPort(), "/ready", 200, deadlineIn(5s))) {
      *error = "bulwark never became ready:\n" + env.proxy->process().output();
      return false;
    }
    return true;
  }

  void SetUp() override { ASSERT_NE(nullptr, env_) << setup_error_; }

  uint16_t proxyPort() const { return env_->proxy->port(kListener); }

  static Environment* env_;
  static std::string setup_error_;
};

ExamplesThroughEdgeTest::Environment* ExamplesThroughEdgeTest::env_ = nullptr;
std::string ExamplesThroughEdgeTest::setup_error_;

// Proves a task created through bulwark is readable through bulwark, also when the read lands on
// the other replica (both share one log).
TEST_F(ExamplesThroughEdgeTest, TaskCreatedThroughProxyIsReadBack) {
  Http1Client client(proxyPort());
  bool read_on_other_replica = false;
  for (int i = 0; i < kMaxBalancedTries && !read_on_other_replica; ++i) {
    auto created = client.request(createTask("edge-report-" + std::to_string(i)));
    ASSERT_TRUE(created) << client.lastError();
    ASSERT_EQ(201, created->status) << created->body;
    auto task = parseJson(created->body);
    ASSERT_TRUE(task.is_object() && task.contains("id")) << created->body;
    const std::string id = task["id"].get<std::string>();
    EXPECT_EQ("/v1/tasks/" + id, created->header("Location").value_or(""));

    auto read = client.get("/v1/tasks/" + id);
    ASSERT_TRUE(read) << client.lastError();
    ASSERT_EQ(200, read->status) << read->body;
    auto got = parseJson(read->body);
    ASSERT_TRUE(got.is_object()) << read->body;
    EXPECT_EQ(id, got.value("id", ""));
    EXPECT_EQ("edge-report-" + std::to_string(i), got.value("name", ""));
    EXPECT_EQ("succeeded", got.value("status", ""));
    read_on_other_replica = replicaOf(*read) != replicaOf(*created);
  }
  EXPECT_TRUE(read_on_other_replica) << "every read landed on the replica that created the task";

  auto missing = client.get("/v1/tasks/no-such-task");
  ASSERT_TRUE(missing) << client.lastError();
  EXPECT_EQ(404, missing->status);
}

// Proves edge.yaml's task-create idempotency block: a repeat is answered by bulwark's store (the
// original task, marked x-bulwark-idempotent-replay, on any connection and so any worker) and
// creates nothing; a different body under the same key is bulwark's 422.
TEST_F(ExamplesThroughEdgeTest, IdempotencyKeyReplayThroughProxy) {
  Http1Client client(proxyPort());
  const std::string key = "edge-order-" + std::to_string(::getpid());
  auto count = [&]() -> int {
    auto list = client.get("/v1/tasks?limit=1000");
    if (!list || list->status != 200) {
      return -1;
    }
    return parseJson(list->body).value("count", -1);
  };

  auto first = client.request(createTask("order", key));
  ASSERT_TRUE(first) << client.lastError();
  ASSERT_EQ(201, first->status) << first->body;
  EXPECT_FALSE(first->header("Idempotent-Replayed"));
  EXPECT_FALSE(first->header("x-bulwark-idempotent-replay"));
  const std::string id = parseJson(first->body).value("id", "");
  ASSERT_FALSE(id.empty()) << first->body;
  const int before = count();
  ASSERT_GE(before, 1);

  for (int i = 0; i < 4; ++i) {
    Http1Client fresh(proxyPort());
    auto replay = fresh.request(createTask("order", key));
    ASSERT_TRUE(replay) << fresh.lastError();
    ASSERT_EQ(201, replay->status) << replay->body;
    EXPECT_EQ("true", replay->header("x-bulwark-idempotent-replay").value_or("")) << replay->body;
    EXPECT_FALSE(replay->header("Idempotent-Replayed")) << "the replay reached a replica";
    EXPECT_EQ(id, parseJson(replay->body).value("id", ""));
    EXPECT_EQ(replicaOf(*first), replicaOf(*replay));  // the stored answer, headers included
  }
  EXPECT_EQ(before, count()) << "a replay created a task";

  auto mismatch = client.request(createTask("a different order", key));
  ASSERT_TRUE(mismatch) << client.lastError();
  EXPECT_EQ(422, mismatch->status) << mismatch->body;
  EXPECT_EQ("idempotency_key_mismatch", mismatch->header("x-bulwark-reason").value_or(""));
  EXPECT_EQ(before, count());
}

// Proves recommendation requests reach both replicas through bulwark with their k items, and the
// backend's own 401 for a missing tenant passes through unchanged.
TEST_F(ExamplesThroughEdgeTest, RecommendationsThroughProxy) {
  Http1Client client(proxyPort());
  std::string first_replica;
  for (int i = 0; i < 4; ++i) {
    auto r = client.request(recommend(
        "/v1/recommend", {{"surface", "home"}, {"user_id", "u-" + std::to_string(i)}, {"k", 7}}));
    ASSERT_TRUE(r) << client.lastError();
    ASSERT_EQ(200, r->status) << r->body;
    auto body = parseJson(r->body);
    ASSERT_TRUE(body.is_object() && body["items"].is_array()) << r->body;
    ASSERT_EQ(7u, body["items"].size()) << r->body;
    for (size_t j = 1; j < body["items"].size(); ++j) {
      EXPECT_GE(body["items"][j - 1]["score"].get<double>(),
                body["items"][j]["score"].get<double>());
    }
    first_replica = replicaOf(*r);
  }
  // PEAK_EWMA: the replica that answered last turns slow (200 ms, still successful, so no outlier
  // rule fires); within a few calls the balancer sends them to the other one.
  const Backend& slowed = env_->recommendation[0].id == first_replica ? env_->recommendation[0]
                                                                      : env_->recommendation[1];
  const Backend& other =
      &slowed == &env_->recommendation[0] ? env_->recommendation[1] : env_->recommendation[0];
  auto set = adminPost(slowed.control_port, "/_fault", R"({"latency_fixed_ms":200})");
  ASSERT_TRUE(set.ok && set.status == 200) << set.error << set.body;
  struct KnobOff {
    uint16_t port;
    ~KnobOff() { adminPost(port, "/_fault", "{}"); }
  } knob_off{slowed.control_port};
  int on_other_in_a_row = 0;
  for (int i = 0; i < kMaxBalancedTries && on_other_in_a_row < 5; ++i) {
    auto r = client.request(
        recommend("/v1/recommend", {{"surface", "home"}, {"user_id", "u-9"}, {"k", 3}}));
    ASSERT_TRUE(r) << client.lastError();
    ASSERT_EQ(200, r->status) << r->body;
    on_other_in_a_row = replicaOf(*r) == other.id ? on_other_in_a_row + 1 : 0;
  }
  EXPECT_EQ(5, on_other_in_a_row) << "calls kept going to the slow replica " << slowed.id;

  auto similar = client.request(
      recommend("/v1/similar", {{"surface", "pdp"}, {"item_id", "demo-item-00042"}, {"k", 3}}));
  ASSERT_TRUE(similar) << client.lastError();
  ASSERT_EQ(200, similar->status) << similar->body;
  EXPECT_EQ(3u, parseJson(similar->body)["items"].size()) << similar->body;

  auto anonymous =
      client.request(recommend("/v1/recommend", {{"surface", "home"}, {"user_id", "u-1"}}, false));
  ASSERT_TRUE(anonymous) << client.lastError();
  EXPECT_EQ(401, anonymous->status) << anonymous->body;
  // Answered by a replica, not generated by bulwark.
  EXPECT_TRUE(anonymous->header("x-replica-id")) << anonymous->body;
}

// Proves gRPC Rank calls from a real grpc++ client go through the edge listener (auto protocol:
// h2c prior knowledge) and are spread over both ranking replicas.
TEST_F(ExamplesThroughEdgeTest, RankingClientThroughProxy) {
  const std::string target = "127.0.0.1:" + std::to_string(proxyPort());
  auto result = runRankingClient({"--target", target, "--method", "rank", "--tenant", "mixed",
                                  "--count", "100", "--concurrency", "4", "--deadline-ms", "2000"});
  ASSERT_TRUE(result.is_object() && result.contains("ok")) << result.dump();
  EXPECT_EQ(100, result["ok"].get<int>()) << result.dump();
  EXPECT_EQ(0, result["errors"].get<int>()) << result.dump();
  ASSERT_EQ(2u, result["replicas"].size()) << result.dump();
  for (auto& [replica, calls] : result["replicas"].items()) {
    // LEAST_REQUEST over 2 hosts: far from all-or-nothing (a 10/90 split is ~1e-15 likely).
    EXPECT_GE(calls.get<int>(), 10) << replica << " " << result.dump();
  }

  auto stream = runRankingClient({"--target", target, "--method", "stream", "--tenant", "tenantB",
                                  "--count", "10", "--deadline-ms", "2000"});
  ASSERT_TRUE(stream.is_object() && stream.contains("ok")) << stream.dump();
  EXPECT_EQ(10, stream["ok"].get<int>()) << stream.dump();
}

// Proves a replica's fault knob shows through bulwark: with error rate 1.0 on task-0, every
// request landing there gets task-0's 503 + Retry-After (no retries yet: attempts is 1), the
// other replica keeps serving, and turning the knob off heals task-0 at run time.
TEST_F(ExamplesThroughEdgeTest, ReplicaFaultKnobShowsThroughProxy) {
  const Backend& faulty = env_->task[0];
  auto set = adminPost(faulty.control_port, "/_fault",
                       R"({"error_rate":1.0,"error_http_status":503,"retry_after":"7"})");
  ASSERT_TRUE(set.ok && set.status == 200) << set.error << set.body;
  struct KnobOff {
    uint16_t port;
    ~KnobOff() { adminPost(port, "/_fault", "{}"); }
  } knob_off{faulty.control_port};

  Http1Client client(proxyPort());
  std::map<std::string, int> failed, served;
  for (int i = 0; i < kMaxBalancedTries && (failed[faulty.id] < 3 || served[env_->task[1].id] < 3);
       ++i) {
    auto r = client.get("/v1/tasks?limit=1");
    ASSERT_TRUE(r) << client.lastError();
    const std::string replica = replicaOf(*r);
    if (r->status == 503) {
      ++failed[replica];
      EXPECT_EQ("7", r->header("Retry-After").value_or("")) << "not the replica's own 503";
    } else {
      EXPECT_EQ(200, r->status) << r->body;
      ++served[replica];
    }
  }
  EXPECT_GE(failed[faulty.id], 3);
  EXPECT_GE(served[env_->task[1].id], 3);
  EXPECT_EQ(0, served[faulty.id]) << "task-0 served with error rate 1.0";
  EXPECT_EQ(0, failed[env_->task[1].id]) << "the healthy replica failed";
  // Creates landing on task-0 fail the same way, and are not re-sent to task-1.
  bool create_failed = false;
  for (int i = 0; i < kMaxBalancedTries && !create_failed; ++i) {
    auto r = client.request(createTask("during-fault"));
    ASSERT_TRUE(r) << client.lastError();
    create_failed = r->status == 503;
    EXPECT_EQ(create_failed ? faulty.id : env_->task[1].id, replicaOf(*r)) << r->status;
  }
  EXPECT_TRUE(create_failed);

  auto off = adminPost(faulty.control_port, "/_fault", "{}");
  ASSERT_TRUE(off.ok && off.status == 200) << off.error << off.body;
  bool healed = false;
  for (int i = 0; i < kMaxBalancedTries && !healed; ++i) {
    auto r = client.get("/v1/tasks?limit=1");
    ASSERT_TRUE(r) << client.lastError();
    EXPECT_EQ(200, r->status) << replicaOf(*r) << " " << r->body;
    healed = r->status == 200 && replicaOf(*r) == faulty.id;
  }
  EXPECT_TRUE(healed) << "no request reached task-0 after the knob was turned off";
}

// Tasks the shared task log holds for `key`: what the replicas actually created, whatever the
// answers said.
int tasksCreatedWithKey(const std::string& task_log, const std::string& key) {
  std::ifstream in(task_log);
  int tasks = 0;
  for (std::string line; std::getline(in, line);) {
    auto record = nlohmann::json::parse(line, nullptr, false);
    if (record.is_object() && record.value("op", "") == "task" &&
        record["task"].value("idempotency_key", "") == key) {
      ++tasks;
    }
  }
  return tasks;
}

// Proves edge.yaml's task-create retry rule: while task-0 answers 500 to everything, a create
// without a key that lands there gets the 500 (it may have reached the replica's store), while
// one with an Idempotency-Key is re-sent to task-1 and succeeds, and the replicas' shared log
// holds exactly one task for that key.
TEST_F(ExamplesThroughEdgeTest, KeyedCreateIsResentToAnotherReplicaAfter500) {
  const Backend& faulty = env_->task[0];
  const Backend& healthy = env_->task[1];
  auto set =
      adminPost(faulty.control_port, "/_fault", R"({"error_rate":1.0,"error_http_status":500})");
  ASSERT_TRUE(set.ok && set.status == 200) << set.error << set.body;
  struct KnobOff {
    uint16_t port;
    ~KnobOff() { adminPost(port, "/_fault", "{}"); }
  } knob_off{faulty.control_port};
  const uint16_t admin = env_->proxy->adminPort();
  const Labels retried = {{"route", "task-create"}, {"reason", "5xx"}};
  Http1Client client(proxyPort());

  bool unkeyed_failed = false;
  for (int i = 0; i < kMaxBalancedTries && !unkeyed_failed; ++i) {
    auto r = client.request(createTask("unkeyed-during-500"));
    ASSERT_TRUE(r) << client.lastError();
    unkeyed_failed = r->status == 500;
    EXPECT_EQ(unkeyed_failed ? faulty.id : healthy.id, replicaOf(*r)) << r->status << r->body;
  }
  EXPECT_TRUE(unkeyed_failed) << "no create without a key landed on " << faulty.id;

  // Each keyed create lands on either replica first; go on until one was re-sent.
  const double retries_before = metricValue(admin, "bulwark_retries_total", retried).value_or(0);
  std::vector<std::string> keys;
  bool resent = false;
  for (int i = 0; i < kMaxBalancedTries && !resent; ++i) {
    keys.push_back("edge-500-" + std::to_string(::getpid()) + "-" + std::to_string(i));
    auto r = client.request(createTask("keyed-during-500", keys.back()));
    ASSERT_TRUE(r) << client.lastError();
    EXPECT_EQ(201, r->status) << r->body;
    EXPECT_EQ(healthy.id, replicaOf(*r));
    resent = metricValue(admin, "bulwark_retries_total", retried).value_or(0) > retries_before;
  }
  ASSERT_TRUE(resent) << "no keyed create landed on " << faulty.id << " first";
  for (const auto& key : keys) {
    EXPECT_EQ(1, tasksCreatedWithKey(env_->task_log, key)) << key;
  }

  auto off = adminPost(faulty.control_port, "/_fault", "{}");
  ASSERT_TRUE(off.ok && off.status == 200) << off.error << off.body;
  // Leave task-0 serving again (health checks may have taken it out meanwhile).
  bool healed = false;
  const auto deadline = deadlineIn(15s);
  while (!healed && Clock::now() < deadline) {
    auto r = client.get("/v1/tasks?limit=1");
    ASSERT_TRUE(r) << client.lastError();
    healed = r->status == 200 && replicaOf(*r) == faulty.id;
  }
  EXPECT_TRUE(healed) << "no request reached " << faulty.id << " after the knob was turned off";
}

}  // namespace
}  // namespace bulwark::testing
