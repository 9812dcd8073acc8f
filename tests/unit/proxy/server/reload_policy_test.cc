// The reload table, field by field: every field of the full schema's effective config is
// classified, and changing any one of them is refused exactly when the table says it needs a
// restart, with the field named.

#include "proxy/server/reload_policy.h"

#include <gtest/gtest.h>

#include "proxy/config/effective_json.h"
#include "tests/unit/proxy/config/full_schema.h"
#include "tests/unit/proxy/config/test_util.h"

namespace bulwark::server {
namespace {

nlohmann::json fullSchemaEffective() {
  auto loaded = config::test::loadText(config::test::kFullSchemaYaml);
  EXPECT_TRUE(loaded.config) << ::testing::PrintToString(config::test::formatted(loaded));
  return loaded.config ? config::toJson(*loaded.config) : nlohmann::json();
}

/** A different value of the same JSON type. */
nlohmann::json changed(const nlohmann::json& value) {
  if (value.is_boolean()) {
    return !value.get<bool>();
  }
  if (value.is_number_unsigned()) {
    return value.get<uint64_t>() + 1;
  }
  if (value.is_number_integer()) {
    return value.get<int64_t>() + 1;
  }
  if (value.is_number()) {
    return value.get<double>() + 0.5;
  }
  if (value.is_string()) {
    return value.get<std::string>() + "x";
  }
  nlohmann::json more = value.is_array() ? value : nlohmann::json::array();
  more.push_back(value.empty() ? nlohmann::json("x") : value.back());
  return more;
}

// A field added to the spec and not to the table fails here, before anyone can forget whether a
// reload applies it.
TEST(ReloadPolicyTest, EveryFieldOfTheFullSchemaIsClassified) {
  auto effective = fullSchemaEffective();
  ASSERT_FALSE(effective.is_null());
  EXPECT_EQ(std::vector<std::string>{}, unclassifiedFields(effective));
  // The walk reaches the leaves (not only the top-level blocks).
  EXPECT_GT(classifiedLeaves(effective).size(), 100u);
}

TEST(ReloadPolicyTest, AnUnknownFieldIsReportedUnclassified) {
  auto effective = fullSchemaEffective();
  effective["runtime"]["newKnob"] = 3;
  EXPECT_EQ(std::vector<std::string>{"/runtime/newKnob"}, unclassifiedFields(effective));
}

// Field by field from the one table: each leaf is changed alone; the reload is refused naming it
// exactly when the table says NeedsRestart.
TEST(ReloadPolicyTest, EachFieldChangedAloneIsRefusedExactlyWhenItNeedsARestart) {
  auto running = fullSchemaEffective();
  ASSERT_FALSE(running.is_null());
  size_t refused = 0;
  for (const auto& [leaf, pattern] : classifiedLeaves(running)) {
    auto next = running;
    auto pointer = nlohmann::json::json_pointer(leaf);
    next[pointer] = changed(running[pointer]);
    auto change = restartOnlyChange(running, next);
    bool needs_restart = false;
    for (const auto& field : reloadTable()) {
      if (field.pattern == pattern) {
        needs_restart = field.on_reload == OnReload::NeedsRestart;
      }
    }
    EXPECT_EQ(needs_restart, change.has_value()) << leaf << " " << change.value_or("");
    if (change) {
      ++refused;
    }
  }
  // admin.address, listeners[*].name and .address, concurrency, maxConnectionsPerWorker,
  // latencyBuckets: every NeedsRestart row was exercised at least once.
  EXPECT_GE(refused, 6u);
}

TEST(ReloadPolicyTest, TheRefusalNamesTheFieldAndBothValues) {
  auto running = fullSchemaEffective();
  auto next = running;
  next["runtime"]["maxConnectionsPerWorker"] = 7;
  auto change = restartOnlyChange(running, next);
  ASSERT_TRUE(change);
  EXPECT_EQ(0u, change->find("runtime.maxConnectionsPerWorker (")) << *change;
  EXPECT_NE(std::string::npos, change->find("-> 7)")) << *change;

  next = running;
  next["listeners"][0]["address"] = "127.0.0.1:1";
  change = restartOnlyChange(running, next);
  ASSERT_TRUE(change);
  EXPECT_EQ(0u, change->find("listeners[0].address (")) << *change;

  next = running;
  next["listeners"].push_back(running["listeners"][0]);
  change = restartOnlyChange(running, next);
  ASSERT_TRUE(change);
  EXPECT_EQ(0u, change->find("listeners[*].name")) << *change;
}

TEST(ReloadPolicyTest, RouteAndUpstreamChangesApply) {
  auto running = fullSchemaEffective();
  auto next = running;
  next["routes"].erase(0);
  next["upstreams"][0]["name"] = "renamed";
  EXPECT_FALSE(restartOnlyChange(running, next).has_value());
}

}  // namespace
}  // namespace bulwark::server
