#include "filters/load_shed/load_shed_filter.h"

#include <gtest/gtest.h>

#include "tests/mocks/fake_filter_callbacks.h"
#include "tests/support/simulated_time.h"

namespace bulwark::filters::load_shed {
namespace {

using namespace std::chrono_literals;
using mocks::FakeFactoryContext;
using mocks::FilterUnderTest;

config::RouteSpec routeWith(uint32_t min_limit, uint32_t max_limit,
                            std::string algorithm = "gradient",
                            std::string priority_header = "x-priority") {
  config::LoadSheddingSpec spec;
  config::AdaptiveConcurrencySpec ac;
  ac.algorithm = std::move(algorithm);
  ac.min_limit = min_limit;
  ac.max_limit = max_limit;
  ac.window = std::chrono::milliseconds(100);
  spec.adaptive_concurrency = ac;
  spec.priority_header = std::move(priority_header);
  spec.reject.retry_after = std::chrono::milliseconds(1500);
  config::RouteSpec route;
  route.name = "api";
  route.policies.load_shedding = spec;
  return route;
}

class LoadShedFilterTest : public ::testing::Test {
protected:
  http::FilterFactoryCb build(FakeFactoryContext& ctx) {
    auto cb = mocks::createOrFail(*factory_, ctx);
    state(ctx).clock().setNowForTest([this] { return time_.now(); });
    return cb;
  }
  static LoadShedState& state(FakeFactoryContext& ctx) { return *ctx.onlyState<LoadShedState>(); }
  /** Starts one request with the given priority header value ("" = none). */
  std::unique_ptr<FilterUnderTest> start(const http::FilterFactoryCb& cb, std::string priority = "",
                                         bool grpc = false) {
    auto r = std::make_unique<FilterUnderTest>(dispatcher_, cb);
    if (!priority.empty()) {
      r->callbacks->headers.headers.add("x-priority", priority);
    }
    r->callbacks->grpc = grpc;
    r->start();
    return r;
  }
  static bool admitted(const FilterUnderTest& r) { return r.callbacks->replies.empty(); }
  /** Admits `n` requests, lets `latency` pass, completes them all with `status`. */
  void round(const http::FilterFactoryCb& cb, int n, std::chrono::milliseconds latency,
             uint32_t status = 200) {
    std::vector<std::unique_ptr<FilterUnderTest>> requests;
    for (int i = 0; i < n; ++i) {
      requests.push_back(start(cb));
      ASSERT_TRUE(admitted(*requests.back()));
    }
    time_.advance(latency);
    for (auto& r : requests) {
      r->complete(status);
    }
  }
  double shed(FakeFactoryContext& ctx, const std::string& priority) {
    return counterFamily(ctx.stats().registry(), "bulwark_load_shed_total", "")
        .Add({{"route", "api"}, {"reason", "concurrency_limit"}, {"priority", priority}})
        .Value();
  }

  event::Dispatcher dispatcher_;
  testing::SimulatedTime time_;
  http::FilterFactoryPtr factory_ = makeFactory();
};

// Under a limit of 10: sheddable work is refused at 8 in flight, default at 10, critical at 11,
// so the lowest priority goes first; each refusal is counted by priority.
TEST_F(LoadShedFilterTest, ShedsLowestPriorityFirst) {
  FakeFactoryContext ctx(routeWith(10, 10));
  auto cb = build(ctx);
  std::vector<std::unique_ptr<FilterUnderTest>> held;
  for (int i = 0; i < 8; ++i) {
    held.push_back(start(cb, "sheddable"));
    ASSERT_TRUE(admitted(*held.back())) << i;
  }
  EXPECT_FALSE(admitted(*start(cb, "sheddable")));
  held.push_back(start(cb, "default"));
  held.push_back(start(cb));  // no header: default
  EXPECT_TRUE(admitted(*held[8]));
  EXPECT_TRUE(admitted(*held[9]));
  EXPECT_FALSE(admitted(*start(cb, "default")));
  EXPECT_FALSE(admitted(*start(cb, "nonsense")));  // unknown value: default
  held.push_back(start(cb, "Critical"));
  EXPECT_TRUE(admitted(*held.back()));
  EXPECT_FALSE(admitted(*start(cb, "critical")));
  EXPECT_EQ(state(ctx).inflight(), 11u);
  EXPECT_EQ(shed(ctx, "sheddable"), 1);
  EXPECT_EQ(shed(ctx, "default"), 2);
  EXPECT_EQ(shed(ctx, "critical"), 1);
}

// A rejection is 503 + Retry-After (rounded up to whole seconds) + x-bulwark-overloaded,
// reason load_shed, fallback trigger shed.
TEST_F(LoadShedFilterTest, RejectionIs503WithRetryAfter) {
  FakeFactoryContext ctx(routeWith(1, 1));
  auto cb = build(ctx);
  auto holder = start(cb);
  auto rejected = start(cb);
  const http::LocalReply& reply = rejected->callbacks->reply();
  EXPECT_EQ(reply.httpStatus(), 503u);
  EXPECT_EQ(reply.reason(), "load_shed");
  EXPECT_EQ(reply.info().fallback_trigger, config::FallbackTrigger::Shed);
  EXPECT_EQ(rejected->callbacks->replyHeader("retry-after"), "2");
  EXPECT_EQ(rejected->callbacks->replyHeader("x-bulwark-overloaded"), "true");
}

// gRPC calls get the configured status (UNAVAILABLE) and grpc-retry-pushback-ms.
TEST_F(LoadShedFilterTest, GrpcRejectionCarriesPushback) {
  FakeFactoryContext ctx(routeWith(1, 1));
  auto cb = build(ctx);
  auto holder = start(cb);
  auto rejected = start(cb, "", true);
  EXPECT_EQ(rejected->callbacks->reply().grpcStatus(), GrpcStatus::Unavailable);
  EXPECT_EQ(rejected->callbacks->replyHeader("grpc-retry-pushback-ms"), "1500");
  EXPECT_FALSE(rejected->callbacks->replyHeader("retry-after"));
}

// The permit is held until onStreamComplete (or destruction) and then frees the slot.
TEST_F(LoadShedFilterTest, CompletionReleasesTheSlot) {
  FakeFactoryContext ctx(routeWith(1, 1));
  auto cb = build(ctx);
  auto first = start(cb);
  EXPECT_FALSE(admitted(*start(cb)));
  first->complete();
  auto second = start(cb);
  EXPECT_TRUE(admitted(*second));
  second.reset();
  EXPECT_EQ(state(ctx).inflight(), 0u);
}

// AIMD: windows of fast answers at >= half the limit in flight raise the limit by one;
// a window with 503s cuts it by 10 %; the gauge follows.
TEST_F(LoadShedFilterTest, AimdLimitMovesWithCompletedWindows) {
  FakeFactoryContext ctx(routeWith(4, 100, "aimd"));
  auto cb = build(ctx);
  auto gauge = [&] {
    return gaugeFamily(ctx.stats().registry(), "bulwark_concurrency_limit", "")
        .Add({{"route", "api"}})
        .Value();
  };
  EXPECT_EQ(state(ctx).limit(), 4u);
  EXPECT_EQ(gauge(), 4);
  for (int i = 0; i < 6; ++i) {
    round(cb, 2, 10ms);  // 12 samples; the window (100 ms from the first) is still open
  }
  EXPECT_EQ(state(ctx).limit(), 4u);
  round(cb, 2, 50ms);  // closes the window
  EXPECT_EQ(state(ctx).limit(), 5u);
  EXPECT_EQ(gauge(), 5);
  round(cb, 3, 101ms, 503);  // a whole window of overload signals
  EXPECT_EQ(state(ctx).limit(), 4u);
  EXPECT_EQ(gauge(), 4);
}

// Local replies after admission (e.g. a bulkhead rejection) and resets add no latency sample;
// upstream answers and timeouts do, timeouts and 503/504 as overload signals.
TEST(SampleKindTest, ClassifiesCompletions) {
  http::StreamInfo info;
  info.status = 200;
  EXPECT_EQ(sampleKind(info), false);
  info.status = 503;
  EXPECT_EQ(sampleKind(info), true);
  info.status = 0;
  EXPECT_EQ(sampleKind(info), std::nullopt);
  info.grpc = true;
  info.status = 200;
  info.grpc_status = GrpcStatus::Unavailable;
  EXPECT_EQ(sampleKind(info), true);
  info.grpc_status = GrpcStatus::Ok;
  EXPECT_EQ(sampleKind(info), false);
  info.local_reply = true;
  info.response_detail = "bulkhead_full";
  EXPECT_EQ(sampleKind(info), std::nullopt);
  info.response_detail = "request_timeout";
  EXPECT_EQ(sampleKind(info), true);
  info.response_detail = "fallback:timeout";
  EXPECT_EQ(sampleKind(info), true);
  info.response_detail = "fallback:shed";
  EXPECT_EQ(sampleKind(info), std::nullopt);
}

// A block without adaptiveConcurrency uses the schema defaults (gradient, minLimit 8).
TEST_F(LoadShedFilterTest, DefaultsWithoutAdaptiveConcurrency) {
  config::RouteSpec route;
  route.name = "api";
  route.policies.load_shedding = config::LoadSheddingSpec{};
  FakeFactoryContext ctx(route);
  auto cb = build(ctx);
  EXPECT_EQ(state(ctx).limit(), 8u);
  EXPECT_EQ(state(ctx).adaptiveLimit().name(), "gradient");
}

// An algorithm the engine does not know is a factory error (the reload is refused).
TEST_F(LoadShedFilterTest, UnknownAlgorithmIsAnError) {
  FakeFactoryContext ctx(routeWith(1, 2, "vegas"));
  auto cb = factory_->create(ctx);
  ASSERT_FALSE(cb.isOk());
  EXPECT_NE(cb.error().find("vegas"), std::string::npos);
}

}  // namespace
}  // namespace bulwark::filters::load_shed
