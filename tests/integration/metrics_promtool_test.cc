// /metrics "by the book": the exposition of a real bulwark that carried traffic (HTTP, gRPC with
// UNAVAILABLE answers, connect failures) passes `promtool check metrics`, counters are typed as
// counters, process_* are the standard collector's, and the error-ratio query printed in
// docs/metrics.md counts gRPC UNAVAILABLE answered with HTTP 200 when Prometheus evaluates it
// (`promtool test rules` on the scraped series).

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include <gtest/gtest.h>

#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/http2_client.h"
#include "tests/support/prometheus_text.h"

namespace bulwark::testing {
namespace {

namespace fs = std::filesystem;
using namespace std::chrono_literals;

const char* kPromtool = "/usr/bin/promtool";

struct ToolRun {
  std::optional<int> exit_code;
  std::string output;
};

ToolRun runTool(std::vector<std::string> args) {
  ProcessOptions options;
  options.path = kPromtool;
  options.args = std::move(args);
  std::string error;
  auto child = ChildProcess::spawn(options, &error);
  if (!child) {
    return {std::nullopt, error};
  }
  auto status = child->waitForExit(deadlineIn(60s));
  ToolRun run;
  run.output = child->output();
  if (status && status->exited) {
    run.exit_code = status->code;
  }
  return run;
}

/** The query under "# error ratio per route" in docs/metrics.md, comment lines skipped. */
std::string docsErrorRatioQuery() {
  std::ifstream in(fs::path(BULWARK_SOURCE_DIR) / "docs/metrics.md");
  std::string line;
  bool in_query = false;
  std::string query;
  while (std::getline(in, line)) {
    if (line.rfind("# error ratio per route", 0) == 0) {
      in_query = true;
      continue;
    }
    if (!in_query) {
      continue;
    }
    if (line.rfind("#", 0) == 0) {
      if (!query.empty()) {
        break;
      }
      continue;
    }
    query += line + "\n";
  }
  return query;
}

std::string labelsText(const Labels& labels) {
  std::string out = "{";
  for (const auto& [k, v] : labels) {
    if (out.size() > 1) {
      out += ",";
    }
    out += k + "=\"" + v + "\"";
  }
  return out + "}";
}

std::string indent(const std::string& text, const std::string& prefix) {
  std::istringstream in(text);
  std::string out;
  for (std::string line; std::getline(in, line);) {
    out += prefix + line + "\n";
  }
  return out;
}

const std::string kService = "/bulwark.test.Echo/Call";

class MetricsPromtool : public ::testing::Test {
protected:
  void SetUp() override {
    ASSERT_TRUE(fs::exists(kPromtool)) << "promtool missing: scripts/install-deps.sh installs it";
    upstream_ = std::make_unique<FakeUpstream>(Protocol::Http2);
    upstream_->script()
        .matching([](const ReceivedRequest& r) { return r.header("x-fail") == "unavailable"; },
                  respondGrpcTrailersOnly(GrpcStatus::Unavailable, "replica down"))
        .otherwise(respondGrpc(GrpcStatus::Ok, "pong"));
    bulwark_ =
        startBulwark(ConfigBuilder()
                         .concurrency(1)
                         .drain("0s", "5s")
                         .listener("h2c")
                         .upstream("grpc", {upstream_->address()}, "", "echo")
                         .upstream("http2", {"127.0.0.1:1"},
                                   "  connectionPool: {tcp: {connectTimeout: 200ms}}\n", "gone")
                         .route("  retries: {attempts: 1}\n", "/bulwark.test.Echo/", "grpc", "echo")
                         .route("  retries: {attempts: 1}\n", "/down", "down", "gone")
                         .yaml());
    ASSERT_TRUE(bulwark_);
  }

  /** `ok` OK calls, `unavailable` UNAVAILABLE calls and one request to a refused upstream. */
  void sendTraffic(int ok, int unavailable) {
    Http2Client client(bulwark_->port("public"));
    ASSERT_TRUE(client.connect()) << client.lastError();
    for (int i = 0; i < ok; ++i) {
      auto rpc = client.grpcUnary(kService, "ping", deadlineIn(5s));
      ASSERT_EQ(rpc.grpcStatus(), GrpcStatus::Ok) << rpc.grpc_message;
    }
    for (int i = 0; i < unavailable; ++i) {
      auto rpc = client.grpcUnary(kService, "ping", deadlineIn(5s), {{"x-fail", "unavailable"}});
      ASSERT_EQ(rpc.grpcStatus(), GrpcStatus::Unavailable);
      ASSERT_EQ(rpc.http.status, 200);  // gRPC errors travel in trailers, HTTP says 200
    }
    auto down = client.request(http2Get("/down"), deadlineIn(5s));
    ASSERT_TRUE(down) << client.lastError();
    ASSERT_EQ(down->status, 503);
  }

  std::string scrape() {
    auto r = adminGet(bulwark_->adminPort(), "/metrics");
    EXPECT_EQ(r.status, 200);
    return r.body;
  }

  std::string writeFile(const std::string& name, const std::string& text) {
    return writeTempFile(name, text);
  }

  std::unique_ptr<FakeUpstream> upstream_;
  std::unique_ptr<BulwarkProcess> bulwark_;
};

TEST_F(MetricsPromtool, ExpositionPassesPromtoolAndTypesAreByTheBook) {
  ASSERT_NO_FATAL_FAILURE(sendTraffic(3, 1));
  std::string text = scrape();
  // promtool reads the exposition from stdin only.
  ProcessOptions options;
  options.path = "/bin/sh";
  options.args = {"-c", std::string(kPromtool) + " check metrics < " + writeFile("m.txt", text)};
  std::string error;
  auto child = ChildProcess::spawn(options, &error);
  ASSERT_TRUE(child) << error;
  auto status = child->waitForExit(deadlineIn(60s));
  ASSERT_TRUE(status && status->exited);
  EXPECT_EQ(status->code, 0) << "promtool check metrics:\n" << child->output();
  EXPECT_EQ(child->output(), "") << "lint findings:\n" << child->output();

  std::string parse_error;
  auto metrics = PrometheusText::parse(text, &parse_error);
  ASSERT_TRUE(metrics) << parse_error;
  EXPECT_EQ(metrics->type("bulwark_upstream_connect_failures_total"), "counter");
  EXPECT_GE(metrics->value("bulwark_upstream_connect_failures_total", {{"upstream", "gone"}}), 1);
  EXPECT_EQ(metrics->value("bulwark_upstream_connect_failures_total", {{"upstream", "echo"}}), 0);
  EXPECT_FALSE(metrics->type("bulwark_upstream_connect_failures")) << "the old gauge is back";
  // The standard process collector's names and types.
  const std::vector<std::pair<std::string, std::string>> process = {
      {"process_cpu_seconds_total", "counter"},
      {"process_resident_memory_bytes", "gauge"},
      {"process_virtual_memory_bytes", "gauge"},
      {"process_virtual_memory_max_bytes", "gauge"},
      {"process_open_fds", "gauge"},
      {"process_max_fds", "gauge"},
      {"process_start_time_seconds", "gauge"}};
  for (const auto& [name, type] : process) {
    EXPECT_EQ(metrics->type(name), type) << name;
    EXPECT_TRUE(metrics->has(name)) << name;
  }
  EXPECT_GT(*metrics->value("process_open_fds"), 3);
  EXPECT_GE(*metrics->value("process_max_fds"), *metrics->value("process_open_fds"));
  auto start = *metrics->value("process_start_time_seconds");
  auto now = static_cast<double>(std::time(nullptr));
  EXPECT_LE(start, now + 1);
  EXPECT_GT(start, now - 600);
  // Every family with a _total name is a counter, and every counter is named _total.
  for (const auto& s : metrics->samples()) {
    auto type = metrics->type(s.name);
    if (type) {
      EXPECT_EQ(*type == "counter", s.name.size() > 6 && s.name.ends_with("_total")) << s.name;
    }
  }
}

TEST_F(MetricsPromtool, DocsErrorRatioQueryCountsGrpcUnavailableAnsweredWith200) {
  // Phase A creates every series; the scrapes around phase B become the last two samples.
  ASSERT_NO_FATAL_FAILURE(sendTraffic(1, 1));
  auto before = PrometheusText::parse(scrape());
  ASSERT_NO_FATAL_FAILURE(sendTraffic(3, 1));
  auto after = PrometheusText::parse(scrape());
  ASSERT_TRUE(before && after);

  std::string series;
  for (const auto& s : after->samples("bulwark_requests_total")) {
    auto v0 = before->value("bulwark_requests_total", s.labels);
    series += "  - series: 'bulwark_requests_total" + labelsText(s.labels) + "'\n";
    // The first scrape held for six minutes, then the second: the 5m window at 6m is covered
    // by samples, so Prometheus extrapolates every series alike and the ratio is exact.
    std::string first = v0 ? std::to_string(static_cast<int64_t>(*v0)) : "_";
    series +=
        "    values: '" + first + "x5 " + std::to_string(static_cast<int64_t>(s.value)) + "'\n";
  }
  std::string query = docsErrorRatioQuery();
  ASSERT_NE(query, "") << "no '# error ratio per route' query in docs/metrics.md";
  // Phase B per route: grpc 1 UNAVAILABLE of 4 calls; down 1 refused (503) of 1.
  std::string test =
      "rule_files: []\nevaluation_interval: 1m\ntests:\n- interval: 1m\n"
      "  input_series:\n" +
      series +
      "  promql_expr_test:\n"
      "  - eval_time: 6m\n"
      "    expr: |\n"
      "      round(1000 * (\n" +
      indent(query, "        ") +
      "      ))\n"
      "    exp_samples:\n"
      "    - {labels: '{route=\"down\"}', value: 1000}\n"
      "    - {labels: '{route=\"grpc\"}', value: 250}\n";
  auto run = runTool({"test", "rules", writeFile("error_ratio.test.yaml", test)});
  EXPECT_EQ(run.exit_code, 0) << run.output << "\n" << test;
}

}  // namespace
}  // namespace bulwark::testing
