// OpenTelemetry traces: a server span per request and a client span per attempt, exported over
// OTLP/HTTP (JSON) to a collector (a FakeUpstream recording what it receives); the upstream gets
// a traceparent whose parent is its attempt's span; sampling by ratio and by the caller's flag;
// a collector that is down costs dropped spans, never requests.

#include <map>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "tests/integration/bulwark_process.h"
#include "tests/support/admin_client.h"
#include "tests/support/fake_upstream.h"
#include "tests/support/http1_client.h"

namespace bulwark::testing {
namespace {

using namespace std::chrono_literals;

/** Every span the collector received, flattened. */
std::vector<nlohmann::json> receivedSpans(const FakeUpstream& collector) {
  std::vector<nlohmann::json> spans;
  for (const auto& request : collector.requests()) {
    auto doc = nlohmann::json::parse(request.body, nullptr, false);
    if (!doc.is_object()) {
      continue;
    }
    for (const auto& rs : doc["resourceSpans"]) {
      for (const auto& ss : rs["scopeSpans"]) {
        for (const auto& span : ss["spans"]) {
          spans.push_back(span);
        }
      }
    }
  }
  return spans;
}

std::string attribute(const nlohmann::json& span, const std::string& key) {
  for (const auto& a : span["attributes"]) {
    if (a.value("key", "") == key) {
      const auto& v = a["value"];
      return v.contains("stringValue") ? v["stringValue"].get<std::string>()
                                       : v.value("intValue", "");
    }
  }
  return "";
}

std::string tracingConfig(uint16_t collector_port, const std::string& sampling) {
  return "observability:\n  accessLog: {path: /dev/stdout}\n  tracing:\n"
         "    propagation: [w3c]\n    sampling: " +
         sampling + "\n    exporter:\n      otlp: {endpoint: http://127.0.0.1:" +
         std::to_string(collector_port) +
         "/v1/traces, timeout: 1s, batch: {maxSpans: 512, interval: 100ms}, maxQueue: 4096}\n";
}

// Two failures then a success: one server span, three attempt spans under it (retries are
// siblings), the caller's trace id throughout, and the upstream's parent is the last attempt.
TEST(TracingTest, RequestAndAttemptSpansShareTheCallersTrace) {
  auto collector = FakeUpstream::start();
  auto upstream = FakeUpstream::start();
  ASSERT_TRUE(collector && upstream);
  collector->script().otherwise(respond(200, {{"content-type", "application/json"}}, "{}"));
  upstream->script()
      .nthRequest(1, respond(503, {}, "one"))
      .nthRequest(2, respond(503, {}, "two"))
      .otherwise(respond(200, {}, "three"));
  auto proxy = startBulwark(
      ConfigBuilder()
          .topLevel(tracingConfig(collector->port(), "{ratio: 0, parentBased: true}"))
          .listener("http1")
          .upstream("http1", {"127.0.0.1:" + std::to_string(upstream->port())})
          .route("  retries: {attempts: 3, retryOn: [5xx], backoff: {baseInterval: 1ms, "
                 "maxInterval: 2ms}}\n")
          .yaml());
  ASSERT_TRUE(proxy);
  const std::string trace = "4bf92f3577b34da6a3ce929d0e0e4736";
  const std::string caller = "00f067aa0ba902b7";
  Http1Client client(proxy->port("public"));
  auto r = client.request(http1Request("GET", "/traced",
                                       {{"traceparent", "00-" + trace + "-" + caller + "-01"},
                                        {"tracestate", "vendor=x"},
                                        {"x-request-id", "traced-1"}}));
  ASSERT_TRUE(r) << client.lastError();
  EXPECT_EQ(200, r->status);

  std::vector<nlohmann::json> spans;
  ASSERT_TRUE(waitFor(
      [&] {
        spans = receivedSpans(*collector);
        return spans.size() >= 4;
      },
      10s));
  ASSERT_EQ(4u, spans.size());
  const nlohmann::json* server = nullptr;
  std::map<std::string, nlohmann::json> attempts;  // by bulwark.attempt
  for (const auto& s : spans) {
    EXPECT_EQ(trace, s.value("traceId", ""));
    if (s.value("kind", 0) == 2) {
      server = &s;
    } else {
      attempts[attribute(s, "bulwark.attempt")] = s;
    }
  }
  ASSERT_NE(nullptr, server);
  EXPECT_EQ(caller, server->value("parentSpanId", ""));
  EXPECT_EQ("GET", attribute(*server, "http.request.method"));
  EXPECT_EQ("200", attribute(*server, "http.response.status_code"));
  EXPECT_EQ("/traced", attribute(*server, "url.path"));
  ASSERT_EQ(3u, attempts.size());
  for (const auto& [n, s] : attempts) {
    EXPECT_EQ(server->value("spanId", ""), s.value("parentSpanId", "")) << n;
    EXPECT_EQ(3, s.value("kind", 0));
  }
  EXPECT_EQ("initial", attribute(attempts["1"], "bulwark.attempt.kind"));
  EXPECT_EQ("503", attribute(attempts["1"], "http.response.status_code"));
  EXPECT_EQ(2, attempts["1"]["status"].value("code", 0));
  EXPECT_EQ("retry", attribute(attempts["2"], "bulwark.attempt.kind"));
  EXPECT_EQ("gateway-error", attribute(attempts["2"], "bulwark.retry.reason"));
  EXPECT_EQ("gateway-error", attribute(attempts["3"], "bulwark.retry.reason"));
  EXPECT_EQ("success", attribute(attempts["3"], "bulwark.outcome"));

  // Each attempt carried its own span as the parent; the last one's reached the backend last.
  auto received = upstream->requests();
  ASSERT_EQ(3u, received.size());
  for (size_t i = 0; i < received.size(); ++i) {
    const std::string expected =
        "00-" + trace + "-" + attempts[std::to_string(i + 1)].value("spanId", "") + "-01";
    EXPECT_EQ(expected, received[i].header("traceparent").value_or("")) << i;
    EXPECT_EQ("vendor=x", received[i].header("tracestate").value_or(""));
  }
  // The access log names the same trace and the server span.
  ASSERT_TRUE(waitFor(
      [&] {
        for (const auto& line : proxy->process().lines()) {
          auto entry = nlohmann::json::parse(line.text, nullptr, false);
          if (entry.is_object() && entry.value("request_id", "") == "traced-1") {
            return entry.value("trace_id", "") == trace &&
                   entry.value("span_id", "") == server->value("spanId", "");
          }
        }
        return false;
      },
      5s));
}

// ratio 0.1 without a caller's decision: about 1,000 of 10,000 requests are traced; a caller's
// sampled flag is followed either way (parentBased).
TEST(TracingTest, SamplingFollowsTheRatioAndTheCallersFlag) {
  auto collector = FakeUpstream::start();
  auto upstream = FakeUpstream::start();
  ASSERT_TRUE(collector && upstream);
  collector->script().otherwise(respond(200, {}, "{}"));
  upstream->script().otherwise(respond(200, {}, "ok"));
  auto proxy = startBulwark(
      ConfigBuilder()
          .topLevel(tracingConfig(collector->port(), "{ratio: 0.1, parentBased: true}"))
          .listener("http1")
          .upstream("http1", {"127.0.0.1:" + std::to_string(upstream->port())})
          .route()
          .yaml());
  ASSERT_TRUE(proxy);
  Http1Client client(proxy->port("public"));
  for (int i = 0; i < 10000; ++i) {
    auto r = client.get("/ratio");
    ASSERT_TRUE(r && r->status == 200) << i << " " << client.lastError();
  }
  // Caller says sampled: traced although the ratio would mostly not; says not: never.
  for (int i = 0; i < 20; ++i) {
    char sampled_parent[64];
    std::snprintf(sampled_parent, sizeof(sampled_parent), "00-%032x-%016x-01", i + 1, i + 1);
    ASSERT_TRUE(client.request(http1Request("GET", "/forced", {{"traceparent", sampled_parent}})));
    std::snprintf(sampled_parent, sizeof(sampled_parent), "00-%032x-%016x-00", i + 101, i + 101);
    ASSERT_TRUE(client.request(http1Request("GET", "/refused", {{"traceparent", sampled_parent}})));
  }
  auto count = [&](const std::string& path) {
    size_t n = 0;
    for (const auto& s : receivedSpans(*collector)) {
      n += s.value("kind", 0) == 2 && attribute(s, "url.path") == path ? 1 : 0;
    }
    return n;
  };
  ASSERT_TRUE(waitFor([&] { return count("/forced") == 20; }, 10s)) << count("/forced");
  const size_t traced = count("/ratio");
  EXPECT_GE(traced, 900u);
  EXPECT_LE(traced, 1100u);
  EXPECT_EQ(0u, count("/refused"));
}

// The collector refuses connections: requests are unaffected and spans are counted as dropped.
TEST(TracingTest, ACollectorThatIsDownCostsSpansNotRequests) {
  auto upstream = FakeUpstream::start();
  ASSERT_TRUE(upstream);
  upstream->script().otherwise(respond(200, {}, "ok"));
  RefusingPort down;
  const uint16_t port = static_cast<uint16_t>(std::stoi(down.address().substr(10)));
  auto proxy =
      startBulwark(ConfigBuilder()
                       .topLevel(tracingConfig(port, "{ratio: 1}"))
                       .listener("http1")
                       .upstream("http1", {"127.0.0.1:" + std::to_string(upstream->port())})
                       .route()
                       .yaml());
  ASSERT_TRUE(proxy);
  Http1Client client(proxy->port("public"));
  for (int i = 0; i < 200; ++i) {
    auto r = client.get("/x");
    ASSERT_TRUE(r && r->status == 200) << i;
  }
  ASSERT_TRUE(waitForMetric(
      proxy->adminPort(), "bulwark_tracing_spans_dropped_total", {{"reason", "export_failed"}},
      [](double v) { return v >= 400; }, deadlineIn(10s)));
  EXPECT_EQ(0,
            metricValue(proxy->adminPort(), "bulwark_tracing_spans_exported_total").value_or(-1));
}

}  // namespace
}  // namespace bulwark::testing
