#include "policies/bulkhead/bulkhead.h"

#include <atomic>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "policies/bulkhead/concurrency_limit.h"
#include "tests/support/simulated_time.h"

namespace bulwark::policies {
namespace {

using namespace std::chrono_literals;
using bulwark::testing::SimulatedTime;

// Permits are counted, released on destruction, and never exceed the max.
TEST(ConcurrencyLimitTest, PermitsAreExactAndReleased) {
  ConcurrencyLimit limit(2);
  auto a = limit.tryAcquire();
  auto b = limit.tryAcquire();
  ASSERT_TRUE(a && b);
  EXPECT_FALSE(limit.tryAcquire());
  EXPECT_EQ(2u, limit.active());
  EXPECT_EQ(1u, limit.rejectedTotal());
  a.reset();
  EXPECT_EQ(1u, limit.active());
  auto c = limit.tryAcquire();
  ASSERT_TRUE(c);
  c->release();
  c->release();  // idempotent
  EXPECT_FALSE(c->held());
  EXPECT_EQ(1u, limit.active());
  ConcurrencyLimit::Permit moved = std::move(*b);
  EXPECT_EQ(1u, limit.active());  // moving does not double-release
  b.reset();
  EXPECT_EQ(1u, limit.active());
}

// Lowering the max does not revoke held permits but blocks new ones.
TEST(ConcurrencyLimitTest, SetMax) {
  ConcurrencyLimit limit(3);
  auto a = limit.tryAcquire();
  auto b = limit.tryAcquire();
  limit.setMax(1);
  EXPECT_FALSE(limit.tryAcquire());
  EXPECT_EQ(2u, limit.active());
  ConcurrencyLimit zero(0);
  EXPECT_FALSE(zero.tryAcquire());
}

// Many threads hammering a limit never see more than max held at once (TSan in CI).
TEST(ConcurrencyLimitTest, NeverExceededUnderContention) {
  ConcurrencyLimit limit(5);
  std::atomic<uint32_t> held{0};
  std::atomic<uint32_t> peak{0};
  std::vector<std::thread> threads;
  for (int i = 0; i < 4; ++i) {
    threads.emplace_back([&] {
      for (int j = 0; j < 2000; ++j) {
        if (auto p = limit.tryAcquire()) {
          const uint32_t now = held.fetch_add(1) + 1;
          uint32_t seen = peak.load();
          while (now > seen && !peak.compare_exchange_weak(seen, now)) {
          }
          held.fetch_sub(1);
        }
      }
    });
  }
  for (auto& t : threads) {
    t.join();
  }
  EXPECT_LE(peak.load(), 5u);
  EXPECT_EQ(0u, limit.active());
}

// A noisy partition is capped at max_per_partition while others keep their share.
TEST(PartitionedConcurrencyLimitTest, NoisyPartitionCannotStarveOthers) {
  PartitionedConcurrencyLimit limit(10, 4);
  std::vector<PartitionedConcurrencyLimit::Permit> noisy;
  for (int i = 0; i < 4; ++i) {
    auto r = limit.tryAcquire("tenant-a");
    ASSERT_TRUE(r.permit);
    noisy.push_back(std::move(*r.permit));
  }
  const auto refused = limit.tryAcquire("tenant-a");
  EXPECT_FALSE(refused.permit);
  EXPECT_EQ(PartitionedConcurrencyLimit::Rejection::PartitionFull, refused.rejection);
  EXPECT_EQ(4u, limit.active());  // the refused attempt gave its total slot back
  auto other = limit.tryAcquire("tenant-b");
  ASSERT_TRUE(other.permit);
  EXPECT_EQ(1u, limit.activeIn("tenant-b"));
  EXPECT_EQ(2u, limit.partitionCount());
  noisy.pop_back();
  EXPECT_EQ(3u, limit.activeIn("tenant-a"));
  EXPECT_TRUE(limit.tryAcquire("tenant-a").permit.has_value());
}

// The total still applies across partitions, and the empty partition is one of its own.
TEST(PartitionedConcurrencyLimitTest, TotalBoundAndEmptyPartition) {
  PartitionedConcurrencyLimit limit(3, 2);
  auto a = limit.tryAcquire("a");
  auto b = limit.tryAcquire("b");
  auto none1 = limit.tryAcquire("");
  ASSERT_TRUE(a.permit && b.permit && none1.permit);
  const auto full = limit.tryAcquire("c");
  EXPECT_FALSE(full.permit);
  EXPECT_EQ(PartitionedConcurrencyLimit::Rejection::Full, full.rejection);
  none1.permit.reset();
  auto none2 = limit.tryAcquire("");
  ASSERT_TRUE(none2.permit);
  none2.permit.reset();
  a.permit.reset();
  b.permit.reset();
  EXPECT_EQ(0u, limit.active());
  EXPECT_EQ(0u, limit.partitionCount());  // entries are dropped at zero: bounded memory
}

// Without partitions the partition name is ignored.
TEST(PartitionedConcurrencyLimitTest, PartitionsDisabled) {
  PartitionedConcurrencyLimit limit(2, 0);
  auto a = limit.tryAcquire("x");
  auto b = limit.tryAcquire("x");
  EXPECT_TRUE(a.permit && b.permit);
  EXPECT_EQ(0u, limit.partitionCount());
}

// Admission: admit while slots exist, then queue up to max_queued, then reject.
TEST(BulkheadTest, AdmitQueueReject) {
  Bulkhead bulkhead({2, 1, 50ms, 0});
  SimulatedTime t;
  auto a = bulkhead.tryAdmit("", t.now());
  auto b = bulkhead.tryAdmit("", t.now());
  EXPECT_EQ(Bulkhead::Decision::Admitted, a.decision);
  EXPECT_EQ(Bulkhead::Decision::Admitted, b.decision);
  ASSERT_TRUE(a.permit);
  auto q = bulkhead.tryAdmit("", t.now());
  EXPECT_EQ(Bulkhead::Decision::Queued, q.decision);
  ASSERT_TRUE(q.queue_slot);
  ASSERT_TRUE(q.queue_deadline);
  EXPECT_EQ(t.now() + 50ms, *q.queue_deadline);
  EXPECT_EQ(1u, bulkhead.queued());
  auto r = bulkhead.tryAdmit("", t.now());
  EXPECT_EQ(Bulkhead::Decision::RejectedFull, r.decision);
  EXPECT_EQ("full", decisionLabel(r.decision));

  // A slot frees: the queued request takes it and drops its queue slot.
  EXPECT_FALSE(bulkhead.tryAcquire(""));
  a.permit.reset();
  auto woken = bulkhead.tryAcquire("");
  ASSERT_TRUE(woken);
  q.queue_slot.reset();
  EXPECT_EQ(0u, bulkhead.queued());
  EXPECT_EQ(2u, bulkhead.active());
}

// A full partition is rejected at once instead of filling the shared queue.
TEST(BulkheadTest, PartitionFullIsNotQueued) {
  Bulkhead bulkhead({4, 4, 0ms, 1});
  SimulatedTime t;
  auto a = bulkhead.tryAdmit("tenant", t.now());
  EXPECT_EQ(Bulkhead::Decision::Admitted, a.decision);
  auto b = bulkhead.tryAdmit("tenant", t.now());
  EXPECT_EQ(Bulkhead::Decision::RejectedPartition, b.decision);
  EXPECT_EQ(0u, bulkhead.queued());
  EXPECT_EQ("partition_full", decisionLabel(b.decision));
}

// No queue configured: full means rejected; queued without a timeout has no deadline.
TEST(BulkheadTest, NoQueueAndNoTimeout) {
  SimulatedTime t;
  Bulkhead no_queue({1, 0, 0ms, 0});
  auto a = no_queue.tryAdmit("", t.now());
  EXPECT_EQ(Bulkhead::Decision::RejectedFull, no_queue.tryAdmit("", t.now()).decision);
  Bulkhead untimed({1, 1, 0ms, 0});
  auto b = untimed.tryAdmit("", t.now());
  auto q = untimed.tryAdmit("", t.now());
  EXPECT_EQ(Bulkhead::Decision::Queued, q.decision);
  EXPECT_FALSE(q.queue_deadline);
}

}  // namespace
}  // namespace bulwark::policies
