// What a user checks before shipping a config: `bulwark check --explain ROUTE` and the admin
// `GET /explain/route?path=&method=&header=` answer which route a request takes and its
// effective policies, for every route of examples/edge.yaml; one route's answer is pinned.

#include <fstream>
#include <sstream>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"

namespace bulwark::testing {
namespace {

const std::string kEdge = std::string(BULWARK_SOURCE_DIR) + "/examples/edge.yaml";
const std::string kPinned =
    std::string(BULWARK_SOURCE_DIR) + "/tests/data/explain/edge-task-create.json";

std::string readFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

/** A request the edge routes to each of its routes. */
struct Probe {
  std::string route;
  std::string query;
};
const std::vector<Probe> kProbes = {
    {"ranking-grpc",
     "path=/ranking.v1.RankingService/Rank&method=POST&header=content-type:application/grpc"},
    {"task-create", "path=/v1/tasks&method=POST"},
    {"task-read", "path=/v1/tasks/42&method=GET"},
    {"recommendations", "path=/v1/recommend&method=POST&header=x-tenant-id:acme"},
};

TEST(ExplainTest, CheckExplainsEveryRouteOfTheEdgeAndPinsOne) {
  for (const Probe& probe : kProbes) {
    auto run = runBulwarkCli({"check", "-c", kEdge, "--explain", probe.route});
    ASSERT_EQ(0, run.code) << run.stderr_text;
    auto doc = nlohmann::json::parse(run.stdout_text, nullptr, false);
    ASSERT_TRUE(doc.is_object()) << run.stdout_text;
    EXPECT_EQ(probe.route, doc["route"].value("name", ""));
    EXPECT_EQ(doc["route"].value("upstream", ""), doc["upstream"].value("name", ""));
    EXPECT_EQ(nlohmann::json::array({"public"}), doc["listeners"]);
  }
  auto pinned = runBulwarkCli({"check", "-c", kEdge, "--explain", "task-create"});
  EXPECT_EQ(nlohmann::json::parse(readFile(kPinned)),
            nlohmann::json::parse(pinned.stdout_text, nullptr, false))
      << "regenerate with: bulwark check -c examples/edge.yaml --explain task-create > "
         "tests/data/explain/edge-task-create.json\n"
      << pinned.stdout_text;

  auto unknown = runBulwarkCli({"check", "-c", kEdge, "--explain", "nope"});
  EXPECT_EQ(1, unknown.code);
  EXPECT_NE(unknown.stderr_text.find("no route named \"nope\" (routes: ranking-grpc, "),
            std::string::npos)
      << unknown.stderr_text;
}

TEST(ExplainTest, AdminMatchesEveryRouteOfTheRunningEdgeWithoutSendingTraffic) {
  std::string yaml = readFile(kEdge);
  for (const std::string fixed : {"127.0.0.1:9900", "127.0.0.1:8080"}) {
    const size_t at = yaml.find(fixed);
    ASSERT_NE(at, std::string::npos) << fixed;
    yaml.replace(at, fixed.size(), "127.0.0.1:0");
  }
  auto proxy = startBulwark(yaml);
  ASSERT_TRUE(proxy);
  for (const Probe& probe : kProbes) {
    auto r = adminGet(proxy->adminPort(), "/explain/route?" + probe.query);
    ASSERT_EQ(200, r.status) << r.body;
    auto doc = nlohmann::json::parse(r.body, nullptr, false);
    ASSERT_EQ(1u, doc["matches"].size()) << r.body;
    const auto& match = doc["matches"][0];
    EXPECT_EQ("public", match.value("listener", ""));
    EXPECT_EQ(probe.route, match["route"].value("name", "")) << probe.query;
    if (probe.route == "task-create") {
      nlohmann::json expected = nlohmann::json::parse(readFile(kPinned));
      nlohmann::json got = match;
      got.erase("listener");
      EXPECT_EQ(expected, got);
    }
  }
  auto none = adminGet(proxy->adminPort(), "/explain/route?path=/nothing&method=DELETE");
  auto doc = nlohmann::json::parse(none.body, nullptr, false);
  ASSERT_EQ(1u, doc["matches"].size()) << none.body;
  EXPECT_TRUE(doc["matches"][0]["route"].is_null()) << none.body;
}

}  // namespace
}  // namespace bulwark::testing
