#include "examples/common/fault_spec.h"

#include <algorithm>
#include <vector>

#include <CLI/CLI.hpp>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace bulwark::examples {
namespace {

TEST(LatencyDistributionTest, ParsesEveryKindAndRoundTrips) {
  for (std::string text : {"exp:20", "uniform:5:15", "normal:40:10", "lognormal:45:0.42"}) {
    auto d = LatencyDistribution::parse(text);
    ASSERT_TRUE(d) << text << ": " << d.error();
    EXPECT_EQ(d->toString(), text);
  }
  auto none = LatencyDistribution::parse("none");
  ASSERT_TRUE(none);
  EXPECT_EQ(none->kind, LatencyDistribution::Kind::None);
}

TEST(LatencyDistributionTest, RejectsMalformedText) {
  for (std::string text :
       {"exp", "exp:-1", "exp:1:2", "uniform:9:3", "gamma:1", "normal:x:1", "uniform:1"}) {
    EXPECT_FALSE(LatencyDistribution::parse(text)) << text;
  }
}

TEST(LatencyDistributionTest, SamplesHaveTheRequestedShape) {
  policies::SeededRandom random(7);
  auto uniform = *LatencyDistribution::parse("uniform:10:20");
  auto exp = *LatencyDistribution::parse("exp:30");
  double exp_sum = 0;
  constexpr int kN = 20000;
  for (int i = 0; i < kN; ++i) {
    double u = uniform.sampleMs(random);
    ASSERT_GE(u, 10);
    ASSERT_LE(u, 20);
    exp_sum += exp.sampleMs(random);
  }
  EXPECT_NEAR(exp_sum / kN, 30, 1.5);

  auto lognormal = *LatencyDistribution::parse("lognormal:45:0.5");
  std::vector<double> samples;
  for (int i = 0; i < kN; ++i) {
    samples.push_back(lognormal.sampleMs(random));
  }
  std::nth_element(samples.begin(), samples.begin() + kN / 2, samples.end());
  EXPECT_NEAR(samples[kN / 2], 45, 2.5);
}

TEST(FaultSpecTest, EmptyJsonClearsEverything) {
  auto spec = FaultSpec::fromJsonText("{}");
  ASSERT_TRUE(spec) << spec.error();
  EXPECT_TRUE(spec->inactive());
  EXPECT_EQ(*spec, FaultSpec{});
  EXPECT_TRUE(FaultSpec::fromJsonText("")->inactive());
}

TEST(FaultSpecTest, JsonRoundTripKeepsEveryField) {
  FaultSpec spec;
  spec.error_rate = 0.25;
  spec.error_http_status = 429;
  spec.error_grpc_code = 8;
  spec.retry_after = "2";
  spec.grpc_pushback_ms = 150;
  spec.latency_fixed_ms = 12.5;
  spec.latency_distribution = *LatencyDistribution::parse("exp:5");
  spec.hang_rate = 0.1;
  spec.reset_rate = 0.05;
  spec.slow_body_bytes_per_sec = 1000;
  spec.crash = true;
  auto back = FaultSpec::fromJson(spec.toJson());
  ASSERT_TRUE(back) << back.error();
  EXPECT_EQ(*back, spec);
}

TEST(FaultSpecTest, RejectsUnknownFieldsWrongTypesAndRanges) {
  EXPECT_FALSE(FaultSpec::fromJsonText(R"({"error_rat": 1})"));
  EXPECT_FALSE(FaultSpec::fromJsonText(R"({"error_rate": "1"})"));
  EXPECT_FALSE(FaultSpec::fromJsonText(R"({"error_rate": 1.5})"));
  EXPECT_FALSE(FaultSpec::fromJsonText(R"({"error_http_status": 200})"));
  EXPECT_FALSE(FaultSpec::fromJsonText(R"({"error_grpc_code": 0})"));
  EXPECT_FALSE(FaultSpec::fromJsonText(R"({"crash": 1})"));
  EXPECT_FALSE(FaultSpec::fromJsonText(R"({"latency_distribution": "exp"})"));
  EXPECT_FALSE(FaultSpec::fromJsonText(R"([1])"));
  EXPECT_FALSE(FaultSpec::fromJsonText("{"));
}

TEST(FaultSpecTest, AcceptsNumericRetryAfter) {
  auto spec = FaultSpec::fromJsonText(R"({"error_rate": 1, "retry_after": 3})");
  ASSERT_TRUE(spec) << spec.error();
  EXPECT_EQ(spec->retry_after, "3");
}

TEST(FaultSpecTest, FlagsFillTheSpec) {
  CLI::App app;
  FaultSpec spec;
  addFaultFlags(app, spec);
  std::vector<std::string> args = {"--fault-crash",
                                   "--fault-slow-body-bps=100",
                                   "--fault-reset-rate=0.2",
                                   "--fault-hang-rate=0.1",
                                   "--fault-latency-dist=uniform:1:2",
                                   "--fault-latency-ms=5",
                                   "--fault-grpc-pushback-ms=40",
                                   "--fault-retry-after=1",
                                   "--fault-error-grpc-code=4",
                                   "--fault-error-status=429",
                                   "--fault-error-rate=0.5"};
  app.parse(args);
  EXPECT_DOUBLE_EQ(spec.error_rate, 0.5);
  EXPECT_EQ(spec.error_http_status, 429);
  EXPECT_EQ(spec.error_grpc_code, 4);
  EXPECT_EQ(spec.retry_after, "1");
  EXPECT_EQ(spec.grpc_pushback_ms, 40);
  EXPECT_DOUBLE_EQ(spec.latency_fixed_ms, 5);
  EXPECT_EQ(spec.latency_distribution.toString(), "uniform:1:2");
  EXPECT_DOUBLE_EQ(spec.hang_rate, 0.1);
  EXPECT_DOUBLE_EQ(spec.reset_rate, 0.2);
  EXPECT_EQ(spec.slow_body_bytes_per_sec, 100);
  EXPECT_TRUE(spec.crash);
  EXPECT_TRUE(spec.validate());
}

TEST(FaultSpecTest, BadFlagValuesFailParsing) {
  CLI::App app;
  FaultSpec spec;
  addFaultFlags(app, spec);
  EXPECT_THROW(app.parse(std::vector<std::string>{"--fault-latency-dist=exp:-3"}), CLI::ParseError);
  CLI::App app2;
  addFaultFlags(app2, spec);
  EXPECT_THROW(app2.parse(std::vector<std::string>{"--fault-error-rate=2"}), CLI::ParseError);
}

}  // namespace
}  // namespace bulwark::examples
