#include "proxy/tracing/trace_context.h"

#include <vector>

#include <gtest/gtest.h>

#include "proxy/tracing/tracer.h"

namespace bulwark::tracing {
namespace {

constexpr char kTrace[] = "4bf92f3577b34da6a3ce929d0e0e4736";
constexpr char kSpan[] = "00f067aa0ba902b7";

TEST(TraceContextTest, TraceparentRoundTrips) {
  const std::string value = std::string("00-") + kTrace + "-" + kSpan + "-01";
  auto context = parseTraceparent(value);
  ASSERT_TRUE(context);
  EXPECT_EQ(kTrace, toHex(context->trace_id));
  EXPECT_EQ(kSpan, toHex(context->span_id));
  EXPECT_TRUE(context->sampled);
  EXPECT_EQ(value, formatTraceparent(*context));
  auto unsampled = parseTraceparent(std::string("00-") + kTrace + "-" + kSpan + "-00");
  ASSERT_TRUE(unsampled);
  EXPECT_FALSE(unsampled->sampled);
  // A later version may append fields; version 00 may not.
  EXPECT_TRUE(parseTraceparent(std::string("01-") + kTrace + "-" + kSpan + "-01-extra"));
}

TEST(TraceContextTest, MalformedTraceparentIsIgnored) {
  const std::string trace = kTrace;
  const std::string span = kSpan;
  for (const std::string& bad : std::vector<std::string>{
           std::string(), "00-" + trace + "-" + span,           // no flags
           "00-" + trace + "-" + span + "-01-extra",            // version 00 with more
           "ff-" + trace + "-" + span + "-01",                  // forbidden version
           "00-" + std::string(32, '0') + "-" + span + "-01",   // zero trace id
           "00-" + trace + "-" + std::string(16, '0') + "-01",  // zero span id
           "00-" + trace.substr(0, 31) + "g-" + span + "-01",   // not hex
           "00_" + trace + "-" + span + "-01",                  // separators
       }) {
    EXPECT_FALSE(parseTraceparent(bad)) << bad;
  }
}

TEST(TraceContextTest, B3SingleAndMulti) {
  http::HeaderMap single;
  single.add("b3", std::string(kTrace) + "-" + kSpan + "-1");
  auto a = parseB3(single);
  ASSERT_TRUE(a);
  EXPECT_EQ(kTrace, toHex(a->trace_id));
  EXPECT_TRUE(a->sampled);

  http::HeaderMap multi;
  multi.add("x-b3-traceid", "a3ce929d0e0e4736");  // 64-bit: widened with zeros in front
  multi.add("x-b3-spanid", kSpan);
  multi.add("x-b3-sampled", "0");
  auto b = parseB3(multi);
  ASSERT_TRUE(b);
  EXPECT_EQ("0000000000000000a3ce929d0e0e4736", toHex(b->trace_id));
  EXPECT_FALSE(b->sampled);

  http::HeaderMap out;
  out.add("b3", "stale");
  SpanContext next{a->trace_id, a->span_id, true};
  writeB3(out, next, b->span_id);
  EXPECT_FALSE(out.get("b3"));
  EXPECT_EQ(kTrace, out.get("x-b3-traceid").value_or(""));
  EXPECT_EQ(kSpan, out.get("x-b3-parentspanid").value_or(""));
  EXPECT_EQ("1", out.get("x-b3-sampled").value_or(""));
}

TEST(TraceContextTest, SamplingFollowsTheParentOrTheRatio) {
  std::mt19937_64 rng(7);
  Tracer never(0.0, true, true, false, nullptr);
  Tracer always(1.0, false, true, false, nullptr);
  SpanContext parent;
  parent.trace_id = randomTraceId(rng);
  parent.span_id = randomSpanId(rng);
  parent.sampled = true;
  EXPECT_TRUE(never.sample(parent, rng));  // parentBased follows the caller
  EXPECT_FALSE(never.sample(std::nullopt, rng));
  parent.sampled = false;
  EXPECT_TRUE(always.sample(parent, rng));  // not parentBased: the ratio decides
  Tracer tenth(0.1, true, true, false, nullptr);
  int sampled = 0;
  for (int i = 0; i < 100000; ++i) {
    sampled += tenth.sample(std::nullopt, rng) ? 1 : 0;
  }
  EXPECT_NEAR(10000, sampled, 500);
}

}  // namespace
}  // namespace bulwark::tracing
