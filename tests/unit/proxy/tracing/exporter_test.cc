#include "proxy/tracing/exporter.h"

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

namespace bulwark::tracing {
namespace {

// The body is what OTLP/HTTP JSON collectors parse: hex ids, int64 as strings, kind numbers.
TEST(ExporterTest, EncodesOtlpJson) {
  std::mt19937_64 rng(1);
  Span span;
  span.trace_id = randomTraceId(rng);
  span.span_id = randomSpanId(rng);
  span.parent = randomSpanId(rng);
  span.name = "GET api";
  span.kind = Span::Kind::Client;
  span.start_unix_nanos = 1700000000000000000ULL;
  span.end_unix_nanos = 1700000000500000000ULL;
  span.set("http.response.status_code", int64_t{503});
  span.set("server.address", std::string("10.0.0.1:80"));
  span.status = Span::Status::Error;
  auto doc = nlohmann::json::parse(encodeOtlpJson({span}, "bulwark"));
  const auto& rs = doc["resourceSpans"][0];
  EXPECT_EQ("bulwark", rs["resource"]["attributes"][0]["value"]["stringValue"]);
  const auto& s = rs["scopeSpans"][0]["spans"][0];
  EXPECT_EQ(toHex(span.trace_id), s["traceId"]);
  EXPECT_EQ(toHex(*span.parent), s["parentSpanId"]);
  EXPECT_EQ(3, s["kind"]);
  EXPECT_EQ("1700000000500000000", s["endTimeUnixNano"]);
  EXPECT_EQ("503", s["attributes"][0]["value"]["intValue"]);
  EXPECT_EQ("10.0.0.1:80", s["attributes"][1]["value"]["stringValue"]);
  EXPECT_EQ(2, s["status"]["code"]);
}

// Nothing listens: submit() never blocks, the queue bound holds, what does not fit is dropped.
TEST(ExporterTest, QueueIsBounded) {
  prometheus::Registry registry;
  ExporterOptions options;
  options.endpoint = "http://127.0.0.1:9/v1/traces";  // discard port: refused on loopback
  options.max_queue = 10;
  options.max_batch = 1000;
  options.interval = std::chrono::hours(1);  // never exports during the test
  auto exporter = SpanExporter::create(options, registry);
  ASSERT_TRUE(exporter);
  for (int i = 0; i < 25; ++i) {
    (*exporter)->submit(Span{});
  }
  double dropped = 0;
  for (const auto& family : registry.Collect()) {
    if (family.name == "bulwark_tracing_spans_dropped_total") {
      for (const auto& metric : family.metric) {
        for (const auto& label : metric.label) {
          if (label.value == "queue_full") {
            dropped = metric.counter.value;
          }
        }
      }
    }
  }
  EXPECT_EQ(15, dropped);
}

}  // namespace
}  // namespace bulwark::tracing
