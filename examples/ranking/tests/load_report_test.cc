#include "examples/ranking/load_report.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace bulwark::examples::ranking {
namespace {

using std::chrono::milliseconds;

// Nearest-rank percentiles, counts by status and replica, and rps over the elapsed time.
TEST(LoadReportTest, PercentilesAndCounts) {
  LoadReport a;
  LoadReport b;
  for (int i = 1; i <= 50; ++i) {
    a.record(milliseconds(i), "OK", "r1", false);
  }
  for (int i = 51; i <= 100; ++i) {
    b.record(milliseconds(i), i % 10 == 0 ? "UNAVAILABLE" : "OK", "r2", i == 51);
  }
  a.merge(b);
  a.setElapsed(std::chrono::seconds(2));
  EXPECT_EQ(a.calls(), 100u);
  EXPECT_DOUBLE_EQ(a.percentileMs(0.5), 50.0);
  EXPECT_DOUBLE_EQ(a.percentileMs(0.9), 90.0);
  EXPECT_DOUBLE_EQ(a.percentileMs(0.99), 99.0);
  EXPECT_DOUBLE_EQ(a.percentileMs(1.0), 100.0);
  EXPECT_DOUBLE_EQ(a.rps(), 50.0);
  EXPECT_EQ(a.count("UNAVAILABLE"), 5u);
  EXPECT_EQ(a.byReplica().at("r1"), 50u);
  EXPECT_EQ(a.degraded(), 1u);
  auto j = nlohmann::json::parse(a.toJson());
  EXPECT_EQ(j["errors"], 5);
  EXPECT_EQ(j["replicas"]["r2"], 50);
  EXPECT_DOUBLE_EQ(j["latency_ms"]["p99"].get<double>(), 99.0);
}

// No samples: zeros, not a crash.
TEST(LoadReportTest, EmptyReport) {
  LoadReport r;
  EXPECT_EQ(r.percentileMs(0.99), 0.0);
  EXPECT_EQ(r.rps(), 0.0);
}

}  // namespace
}  // namespace bulwark::examples::ranking
