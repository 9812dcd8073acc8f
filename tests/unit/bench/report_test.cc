#include <gtest/gtest.h>

#include "bench/loadgen/connection.h"
#include "bench/loadgen/stats.h"

namespace bulwark::bench {
namespace {

using namespace std::chrono_literals;

TEST(LoadgenOutcomeTest, HttpKinds) {
  EXPECT_TRUE(httpOutcome(200, false).ok);
  EXPECT_TRUE(httpOutcome(204, true).degraded);
  EXPECT_EQ("http_429", httpOutcome(429, false).error);
  EXPECT_EQ("http_503", httpOutcome(503, false).error);
  EXPECT_EQ("http_4xx", httpOutcome(404, false).error);
  EXPECT_EQ("http_5xx", httpOutcome(500, false).error);
  EXPECT_EQ("http_3xx", httpOutcome(302, false).error);
  EXPECT_TRUE(httpOutcome(500, false).answered);
  EXPECT_FALSE(httpOutcome(500, true).degraded);
}

TEST(LoadgenOutcomeTest, GrpcKinds) {
  EXPECT_TRUE(grpcOutcome(200, 0, false).ok);
  EXPECT_EQ("grpc_UNAVAILABLE", grpcOutcome(200, 14, false).error);
  EXPECT_EQ("grpc_DEADLINE_EXCEEDED", grpcOutcome(200, 4, false).error);
  EXPECT_EQ("grpc_CODE_99", grpcOutcome(200, 99, false).error);
  EXPECT_EQ("http_503", grpcOutcome(503, std::nullopt, false).error);
  EXPECT_EQ("protocol", grpcOutcome(200, std::nullopt, false).error);
  EXPECT_FALSE(failedOutcome(error_kind::kTimeout).answered);
}

// Only answered requests carry a latency; errors are counted by kind.
TEST(LoadgenStatsTest, CountsAndLatencyPopulation) {
  Stats s;
  for (int i = 0; i < 4; ++i) {
    s.onSent();
  }
  s.onOutcome(httpOutcome(200, true), 10ms);
  s.onOutcome(httpOutcome(503, false), 20ms);
  s.onOutcome(failedOutcome(error_kind::kTimeout), 5s);
  s.onOutcome(failedOutcome(error_kind::kConnect), 1ms);
  EXPECT_EQ(4u, s.completed());
  EXPECT_EQ(1u, s.ok());
  EXPECT_EQ(1u, s.degraded());
  EXPECT_EQ(2u, s.answered());
  EXPECT_EQ(3u, s.errorCount());
  EXPECT_EQ(2u, s.latency().count());
  EXPECT_EQ(20'000, s.latency().maxUs());
  const auto j = s.toJson(2.0);
  EXPECT_EQ(0.75, j["error_rate"].get<double>());
  EXPECT_EQ(1.0, j["achieved_rps"].get<double>());
  EXPECT_EQ(1, j["errors"]["timeout"].get<int>());
  EXPECT_EQ(10.0, j["latency_ms"]["min"].get<double>());
}

// The report carries every field of the contract (bench/loadgen/README.md).
TEST(LoadgenReportTest, ContractFields) {
  Report r;
  r.start_unix_ms = 1790000000000;
  r.config = {{"targets", {"127.0.0.1:1"}}};
  PhaseReport steady;
  steady.spec = *parsePhase("steady:500:10s");
  PhaseReport ramp;
  ramp.spec = *parsePhase("ramp:10-100:5s");
  ramp.start_s = 10;
  r.phases = {steady, ramp};
  r.total.onSent();
  r.total.onOutcome(httpOutcome(200, false), 3ms);
  r.timeline.resize(2);
  r.timeline[1].onSent();
  r.timeline[1].onOutcome(httpOutcome(500, false), 7ms);
  r.duration_s = 15;
  const auto j = r.toJson();
  EXPECT_EQ("bulwark-loadgen", j["tool"]);
  EXPECT_EQ(1790000000000, j["start_unix_ms"].get<int64_t>());
  EXPECT_EQ("127.0.0.1:1", j["config"]["targets"][0]);
  EXPECT_EQ(500.0, j["phases"][0]["target_rps"].get<double>());
  EXPECT_FALSE(j["phases"][0].contains("target_rps_from"));
  EXPECT_EQ(10.0, j["phases"][1]["target_rps_from"].get<double>());
  EXPECT_EQ(100.0, j["phases"][1]["target_rps_to"].get<double>());
  EXPECT_EQ(10.0, j["phases"][1]["start_s"].get<double>());
  EXPECT_EQ(5.0, j["phases"][1]["duration_s"].get<double>());
  EXPECT_EQ("steady", j["phases"][0]["name"]);
  for (const char* key : {"sent", "completed", "ok", "degraded", "errors", "error_rate",
                          "achieved_rps", "latency_ms"}) {
    EXPECT_TRUE(j["total"].contains(key)) << key;
    EXPECT_TRUE(j["phases"][0].contains(key)) << key;
  }
  for (const char* key : {"min", "mean", "p50", "p90", "p95", "p99", "p999", "max"}) {
    EXPECT_TRUE(j["total"]["latency_ms"].contains(key)) << key;
  }
  EXPECT_EQ(3.0, j["total"]["latency_ms"]["p50"].get<double>());
  EXPECT_FALSE(j.contains("by_request"));
  ASSERT_EQ(2u, j["timeline"].size());
  const auto& t1 = j["timeline"][1];
  EXPECT_EQ(1, t1["t"].get<int>());
  EXPECT_EQ(1, t1["errors"]["http_5xx"].get<int>());
  for (const char* key :
       {"sent", "ok", "degraded", "errors", "p50_ms", "p90_ms", "p99_ms", "max_ms"}) {
    EXPECT_TRUE(t1.contains(key)) << key;
  }
  EXPECT_EQ(7.0, t1["max_ms"].get<double>());
}

// The wire form of the templates: Host and Content-Length for HTTP/1.1, pseudo-headers and the
// gRPC frame for h2.
TEST(LoadgenPrepareTest, WireForms) {
  RequestTemplate t;
  t.method = "POST";
  t.path = "/tasks";
  t.headers = {{"Content-Type", "application/json"}};
  t.body = "{}";
  const TargetAddress target = *parseTarget("127.0.0.1:8080");
  const auto h1 = prepareRequest(t, target, LoadProtocol::Http1);
  EXPECT_EQ(
      "POST /tasks HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nContent-Type: application/json\r\n"
      "Content-Length: 2\r\n\r\n{}",
      h1.http1_bytes);
  const auto h2 = prepareRequest(t, target, LoadProtocol::H2c);
  ASSERT_GE(h2.h2_headers.size(), 4u);
  EXPECT_EQ(":method", h2.h2_headers[0].first);
  EXPECT_EQ("127.0.0.1:8080", h2.h2_headers[2].second);
  EXPECT_EQ("{}", h2.h2_body);
  t.grpc_method = "/pkg.Svc/M";
  t.body = "ab";
  t.headers = {{"Host", "svc.local"}, {"Connection", "keep-alive"}};
  const auto grpc = prepareRequest(t, target, LoadProtocol::Grpc);
  EXPECT_EQ("svc.local", grpc.h2_headers[2].second);
  EXPECT_EQ("/pkg.Svc/M", grpc.h2_headers[3].second);
  EXPECT_EQ(std::string("\0\0\0\0\2ab", 7), grpc.h2_body);
  bool has_te = false;
  for (const auto& [n, v] : grpc.h2_headers) {
    EXPECT_NE("connection", n);
    EXPECT_NE("host", n);
    has_te = has_te || (n == "te" && v == "trailers");
  }
  EXPECT_TRUE(has_te);
}

// "{sequence}" in a header value becomes the request's sequence number (one Idempotency-Key per
// logical request); the body, even holding the same text, and its length stay as they were. A
// keyed POST counts as safe to resend.
TEST(LoadgenPrepareTest, SequencePlaceholder) {
  RequestTemplate t;
  t.method = "POST";
  t.path = "/v1/tasks";
  t.headers = {{"Idempotency-Key", "\"run-{sequence}\""}};
  t.body = "{sequence}";
  const TargetAddress target = *parseTarget("127.0.0.1:8080");
  const auto h1 = prepareRequest(t, target, LoadProtocol::Http1);
  EXPECT_TRUE(h1.per_request);
  EXPECT_TRUE(h1.idempotent);
  const auto sent = withSequence(h1, 1234);
  EXPECT_FALSE(sent.per_request);
  EXPECT_EQ(
      "POST /v1/tasks HTTP/1.1\r\nHost: 127.0.0.1:8080\r\nIdempotency-Key: \"run-1234\"\r\n"
      "Content-Length: 10\r\n\r\n{sequence}",
      sent.http1_bytes);
  const auto h2 = withSequence(prepareRequest(t, target, LoadProtocol::H2c), 7);
  EXPECT_EQ("{sequence}", h2.h2_body);
  bool found = false;
  for (const auto& [n, v] : h2.h2_headers) {
    found = found || (n == "idempotency-key" && v == "\"run-7\"");
  }
  EXPECT_TRUE(found);

  t.headers = {{"content-type", "application/json"}};
  const auto plain = prepareRequest(t, target, LoadProtocol::Http1);
  EXPECT_FALSE(plain.per_request);
  EXPECT_FALSE(plain.idempotent);
}

}  // namespace
}  // namespace bulwark::bench
