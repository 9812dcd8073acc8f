#include "filters/bulkhead/bulkhead_filter.h"

#include <atomic>
#include <thread>

#include <event2/thread.h>
#include <gtest/gtest.h>

#include "tests/mocks/fake_filter_callbacks.h"

namespace bulwark::filters::bulkhead {
namespace {

using namespace std::chrono_literals;
using mocks::FakeFactoryContext;
using mocks::FilterUnderTest;

config::RouteSpec routeWith(uint32_t max, uint32_t queued = 0,
                            std::chrono::milliseconds queue_timeout = 0ms,
                            uint32_t per_partition = 0) {
  config::BulkheadSpec spec;
  spec.max_concurrent_requests = max;
  spec.max_queued_requests = queued;
  spec.queue_timeout = queue_timeout;
  if (per_partition > 0) {
    spec.partition_header = "x-tenant";
    spec.max_concurrent_per_partition = per_partition;
  }
  config::RouteSpec route;
  route.name = "api";
  route.policies.bulkhead = spec;
  return route;
}

class BulkheadFilterTest : public ::testing::Test {
protected:
  static BulkheadState& state(FakeFactoryContext& ctx) { return *ctx.onlyState<BulkheadState>(); }
  std::unique_ptr<FilterUnderTest> start(const http::FilterFactoryCb& cb, std::string tenant = "",
                                         event::Dispatcher* dispatcher = nullptr) {
    auto r = std::make_unique<FilterUnderTest>(dispatcher ? *dispatcher : dispatcher_, cb);
    if (!tenant.empty()) {
      r->callbacks->headers.headers.add("x-tenant", tenant);
    }
    status_ = r->start();
    return r;
  }
  static bulkhead::BulkheadFilter& filter(FilterUnderTest& r) {
    return static_cast<BulkheadFilter&>(*r.filter);
  }
  double gauge(FakeFactoryContext& ctx, const std::string& name) {
    return gaugeFamily(ctx.stats().registry(), name, "").Add({{"route", "api"}}).Value();
  }
  double rejected(FakeFactoryContext& ctx, const std::string& reason) {
    return counterFamily(ctx.stats().registry(), "bulwark_bulkhead_rejected_total", "")
        .Add({{"route", "api"}, {"reason", reason}})
        .Value();
  }

  event::Dispatcher dispatcher_;
  http::FilterFactoryPtr factory_ = makeFactory();
  http::FilterStatus status_ = http::FilterStatus::Continue;
};

// Exactly maxConcurrentRequests pass; the next is a 503 bulkhead_full with Retry-After and the
// shed fallback trigger; the gauge shows the slots held.
TEST_F(BulkheadFilterTest, AdmitsUpToMaxThenRejectsFull) {
  FakeFactoryContext ctx(routeWith(2));
  auto cb = mocks::createOrFail(*factory_, ctx);
  auto a = start(cb);
  EXPECT_EQ(status_, http::FilterStatus::Continue);
  auto b = start(cb);
  EXPECT_EQ(status_, http::FilterStatus::Continue);
  auto c = start(cb);
  EXPECT_EQ(status_, http::FilterStatus::StopIteration);
  const http::LocalReply& reply = c->callbacks->reply();
  EXPECT_EQ(reply.httpStatus(), 503u);
  EXPECT_EQ(reply.reason(), "bulkhead_full");
  EXPECT_EQ(reply.info().fallback_trigger, config::FallbackTrigger::Shed);
  EXPECT_EQ(c->callbacks->replyHeader("retry-after"), "1");
  EXPECT_EQ(gauge(ctx, "bulwark_bulkhead_active"), 2);
  EXPECT_EQ(rejected(ctx, "full"), 1);
  a->complete();
  EXPECT_EQ(gauge(ctx, "bulwark_bulkhead_active"), 1);
  auto d = start(cb);
  EXPECT_EQ(status_, http::FilterStatus::Continue);
}

// A queued request waits (StopIteration), overflow beyond the queue is rejected at once, and a
// completion hands its slot to the waiter, which continues.
TEST_F(BulkheadFilterTest, QueuedRequestProceedsWhenSlotFrees) {
  FakeFactoryContext ctx(routeWith(1, 1, 1000ms));
  auto cb = mocks::createOrFail(*factory_, ctx);
  auto a = start(cb);
  auto waiter = start(cb);
  EXPECT_EQ(status_, http::FilterStatus::StopIteration);
  EXPECT_TRUE(waiter->callbacks->replies.empty());
  EXPECT_TRUE(filter(*waiter).queuedForTest());
  EXPECT_EQ(gauge(ctx, "bulwark_bulkhead_queued"), 1);
  auto overflow = start(cb);
  EXPECT_EQ(overflow->callbacks->reply().reason(), "bulkhead_full");
  a->complete();
  EXPECT_EQ(waiter->callbacks->continued, 1);
  EXPECT_TRUE(filter(*waiter).holdsPermitForTest());
  EXPECT_FALSE(filter(*waiter).queuedForTest());
  EXPECT_EQ(gauge(ctx, "bulwark_bulkhead_queued"), 0);
  EXPECT_EQ(gauge(ctx, "bulwark_bulkhead_active"), 1);
  EXPECT_EQ(state(ctx).engine().queued(), 0u);
  waiter->complete();
  EXPECT_EQ(state(ctx).engine().active(), 0u);
}

// Waiters of one worker are admitted in arrival order.
TEST_F(BulkheadFilterTest, WaitersAreFifo) {
  FakeFactoryContext ctx(routeWith(1, 3));
  auto cb = mocks::createOrFail(*factory_, ctx);
  auto a = start(cb);
  auto w1 = start(cb);
  auto w2 = start(cb);
  auto w3 = start(cb);
  a->complete();
  EXPECT_EQ(w1->callbacks->continued, 1);
  EXPECT_EQ(w2->callbacks->continued + w3->callbacks->continued, 0);
  w1->complete();
  EXPECT_EQ(w2->callbacks->continued, 1);
  EXPECT_EQ(w3->callbacks->continued, 0);
}

// A waiter that is still queued at queueTimeout gets 503 bulkhead_queue_timeout and gives its
// queue slot back; completing the stream from inside the reply (as the connection manager
// does) is safe.
TEST_F(BulkheadFilterTest, QueueTimeoutRejects) {
  FakeFactoryContext ctx(routeWith(1, 1, 5ms));
  auto cb = mocks::createOrFail(*factory_, ctx);
  auto a = start(cb);
  auto waiter = start(cb);
  waiter->callbacks->on_local_reply = [&] {
    waiter->complete(503, true, "bulkhead_queue_timeout");
  };
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return !waiter->callbacks->replies.empty(); }));
  EXPECT_EQ(waiter->callbacks->reply().reason(), "bulkhead_queue_timeout");
  EXPECT_EQ(waiter->callbacks->reply().httpStatus(), 503u);
  EXPECT_EQ(state(ctx).engine().queued(), 0u);
  EXPECT_EQ(gauge(ctx, "bulwark_bulkhead_queued"), 0);
  EXPECT_EQ(rejected(ctx, "queue_timeout"), 1);
  a->complete();
  EXPECT_EQ(waiter->callbacks->continued, 0);
}

// Without queueTimeout the route's request timeout bounds the wait.
TEST_F(BulkheadFilterTest, QueueWaitDefaultsToRequestTimeout) {
  auto route = routeWith(1, 1);
  route.policies.timeouts = config::TimeoutsSpec{};
  route.policies.timeouts->request = 5ms;
  FakeFactoryContext ctx(route);
  auto cb = mocks::createOrFail(*factory_, ctx);
  auto a = start(cb);
  auto waiter = start(cb);
  ASSERT_TRUE(mocks::runUntil(dispatcher_, [&] { return !waiter->callbacks->replies.empty(); }));
  EXPECT_EQ(waiter->callbacks->reply().reason(), "bulkhead_queue_timeout");
}

// A partition at its own limit is refused at once (never queued, even with queue room), while
// other partitions still get slots.
TEST_F(BulkheadFilterTest, PartitionLimitIsolatesTenants) {
  FakeFactoryContext ctx(routeWith(4, 4, 1000ms, 2));
  auto cb = mocks::createOrFail(*factory_, ctx);
  auto a1 = start(cb, "a");
  auto a2 = start(cb, "a");
  auto a3 = start(cb, "a");
  EXPECT_EQ(a3->callbacks->reply().reason(), "bulkhead_partition_full");
  EXPECT_EQ(state(ctx).engine().queued(), 0u);
  auto b1 = start(cb, "b");
  EXPECT_EQ(status_, http::FilterStatus::Continue);
  auto none = start(cb);  // no header: its own "" partition
  EXPECT_EQ(status_, http::FilterStatus::Continue);
  EXPECT_EQ(rejected(ctx, "partition_full"), 1);
}

// A waiter whose partition is at its limit does not block a later waiter of another partition.
TEST_F(BulkheadFilterTest, FullPartitionWaiterDoesNotBlockOthers) {
  FakeFactoryContext ctx(routeWith(3, 4, 1000ms, 2));
  auto cb = mocks::createOrFail(*factory_, ctx);
  auto a1 = start(cb, "a");
  auto a2 = start(cb, "a");
  auto b1 = start(cb, "b");
  auto a3 = start(cb, "a");  // route full: queued
  EXPECT_TRUE(filter(*a3).queuedForTest());
  auto b2 = start(cb, "b");
  EXPECT_TRUE(filter(*b2).queuedForTest());
  b1->complete();
  EXPECT_EQ(a3->callbacks->continued, 0);  // "a" still holds 2
  EXPECT_EQ(b2->callbacks->continued, 1);
  a1->complete();
  EXPECT_EQ(a3->callbacks->continued, 1);
}

// A waiter that goes away (client reset) leaves the queue and returns its queue slot.
TEST_F(BulkheadFilterTest, DestroyedWaiterLeavesQueue) {
  FakeFactoryContext ctx(routeWith(1, 2));
  auto cb = mocks::createOrFail(*factory_, ctx);
  auto a = start(cb);
  auto w1 = start(cb);
  auto w2 = start(cb);
  EXPECT_EQ(state(ctx).queuedOn(dispatcher_), 2u);
  w1.reset();
  EXPECT_EQ(state(ctx).queuedOn(dispatcher_), 1u);
  EXPECT_EQ(state(ctx).engine().queued(), 1u);
  EXPECT_EQ(gauge(ctx, "bulwark_bulkhead_queued"), 1);
  a->complete();
  EXPECT_EQ(w2->callbacks->continued, 1);
}

// A slot freed on one worker wakes a waiter queued on another worker through that worker's
// loop (a posted pump), not inline.
TEST_F(BulkheadFilterTest, ReleaseOnOneWorkerWakesWaiterOnAnother) {
  FakeFactoryContext ctx(routeWith(1, 1));
  auto cb = mocks::createOrFail(*factory_, ctx);
  event::Dispatcher other;
  auto a = start(cb);
  auto waiter = start(cb, "", &other);
  EXPECT_EQ(state(ctx).queuedOn(other), 1u);
  a->complete();
  EXPECT_EQ(waiter->callbacks->continued, 0);
  mocks::runReady(other);
  EXPECT_EQ(waiter->callbacks->continued, 1);
  EXPECT_TRUE(filter(*waiter).holdsPermitForTest());
}

/** Spins (yielding) until `done` or one second passed. */
bool waitUntil(const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(1);
  while (!done() && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::yield();
  }
  return done();
}

// With two real worker threads: a slot released on worker A hands itself to the waiter queued
// on worker B through B's own loop; every filter is created, run and destroyed on its worker.
TEST_F(BulkheadFilterTest, CrossThreadWakeWithRunningWorkers) {
  evthread_use_pthreads();
  FakeFactoryContext ctx(routeWith(1, 1));
  auto cb = mocks::createOrFail(*factory_, ctx);
  BulkheadState& shared = state(ctx);
  auto a = std::make_unique<event::Dispatcher>();
  auto b = std::make_unique<event::Dispatcher>();
  // Pending timers keep each loop running while it has nothing else (a worker has listeners).
  auto keep_a = a->createTimer([] {});
  auto keep_b = b->createTimer([] {});
  keep_a->enableTimer(std::chrono::seconds(60));
  keep_b->enableTimer(std::chrono::seconds(60));
  std::thread ta([&] { a->run(); });
  std::thread tb([&] { b->run(); });
  std::unique_ptr<FilterUnderTest> holder;
  std::unique_ptr<FilterUnderTest> waiter;
  std::atomic<bool> waiter_continued{false};
  std::atomic<bool> waiter_gone{false};
  std::atomic<bool> holder_gone{false};
  // Built here, used only on their worker (start() on the test fixture would share status_).
  holder = std::make_unique<FilterUnderTest>(*a, cb);
  waiter = std::make_unique<FilterUnderTest>(*b, cb);
  a->post([&] { holder->start(); });
  ASSERT_TRUE(waitUntil([&] { return shared.engine().active() == 1; }));
  b->post([&] { waiter->start(); });
  ASSERT_TRUE(waitUntil([&] { return shared.engine().queued() == 1; }));
  a->post([&] { holder->complete(); });
  EXPECT_TRUE(
      waitUntil([&] { return shared.engine().queued() == 0 && shared.engine().active() == 1; }));
  b->post([&] {
    waiter_continued = waiter->callbacks->continued == 1;
    waiter->complete();
    waiter.reset();
    waiter_gone = true;
  });
  a->post([&] {
    holder.reset();
    holder_gone = true;
  });
  EXPECT_TRUE(waitUntil([&] { return waiter_gone && holder_gone; }));
  EXPECT_EQ(shared.engine().active(), 0u);
  a->exit();
  b->exit();
  ta.join();
  tb.join();
  EXPECT_TRUE(waiter_continued);
}

// A reload with the same numbers shares the slot counts: in-flight requests of the old chain
// still count against the new one.
TEST_F(BulkheadFilterTest, ReloadKeepsCountsWhileBlockUnchanged) {
  FakeFactoryContext ctx(routeWith(1));
  auto old_chain = mocks::createOrFail(*factory_, ctx);
  auto a = start(old_chain);
  auto new_chain = mocks::createOrFail(*factory_, ctx);
  auto b = start(new_chain);
  EXPECT_EQ(b->callbacks->reply().reason(), "bulkhead_full");
}

// maxConcurrentPerPartition without partitionBy is refused by the factory.
TEST_F(BulkheadFilterTest, PartitionLimitNeedsHeader) {
  auto route = routeWith(4);
  route.policies.bulkhead->max_concurrent_per_partition = 2;
  FakeFactoryContext ctx(route);
  EXPECT_FALSE(factory_->create(ctx).isOk());
}

}  // namespace
}  // namespace bulwark::filters::bulkhead
