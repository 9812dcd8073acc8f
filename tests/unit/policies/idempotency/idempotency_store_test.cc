#include "policies/idempotency/idempotency_store.h"

#include <atomic>
#include <chrono>
#include <string>
#include <thread>
#include <vector>

#include <gtest/gtest.h>

#include "tests/support/simulated_time.h"

namespace bulwark::policies::idempotency {
namespace {

using namespace std::chrono_literals;

constexpr std::string_view kKey = "task-create|8e03978e-40d5-43e8-bc93-6894a57f9324";
constexpr std::string_view kFingerprint = "POST /v1/tasks 9f86d081884c7d65";

StoredResponse response(uint32_t status, std::string body = "{\"id\":1}") {
  return {status, {{"content-type", "application/json"}}, std::move(body)};
}

class IdempotencyStoreTest : public ::testing::Test {
protected:
  IdempotencyStore makeStore(size_t max_entries = 100) {
    return IdempotencyStore({.ttl = 1h, .in_flight_ttl = 30s, .max_entries = max_entries});
  }

  testing::SimulatedTime t_;
};

// First request proceeds; once completed with 201, a repeat gets exactly that response.
TEST_F(IdempotencyStoreTest, CompletedResponseIsReplayed) {
  auto store = makeStore();
  auto first = store.begin(kKey, kFingerprint, t_.now());
  ASSERT_EQ(BeginOutcome::Proceed, first.outcome);
  EXPECT_EQ(CompleteOutcome::Stored, store.complete(first.token, response(201), t_.now()));

  t_.advance(10min);
  auto repeat = store.begin(kKey, kFingerprint, t_.now());
  ASSERT_EQ(BeginOutcome::Replay, repeat.outcome);
  ASSERT_NE(nullptr, repeat.response);
  EXPECT_EQ(201u, repeat.response->status);
  EXPECT_EQ("{\"id\":1}", repeat.response->body);
  ASSERT_EQ(1u, repeat.response->headers.size());
  EXPECT_EQ("content-type", repeat.response->headers[0].first);
}

// While the first request is in flight, a repeat is told 409 (and does not take over the key).
TEST_F(IdempotencyStoreTest, RepeatWhileInFlightConflicts) {
  auto store = makeStore();
  auto first = store.begin(kKey, kFingerprint, t_.now());
  ASSERT_EQ(BeginOutcome::Proceed, first.outcome);
  EXPECT_EQ(BeginOutcome::Conflict, store.begin(kKey, kFingerprint, t_.now()).outcome);
  EXPECT_EQ(1u, store.inFlightCount());
  EXPECT_EQ(CompleteOutcome::Stored, store.complete(first.token, response(200), t_.now()));
  EXPECT_EQ(BeginOutcome::Replay, store.begin(kKey, kFingerprint, t_.now()).outcome);
}

// A key reused with another payload is 422, whether the first is in flight or completed.
TEST_F(IdempotencyStoreTest, DifferentFingerprintIsAMismatch) {
  auto store = makeStore();
  auto first = store.begin(kKey, kFingerprint, t_.now());
  EXPECT_EQ(BeginOutcome::Mismatch, store.begin(kKey, "POST /v1/tasks other", t_.now()).outcome);
  store.complete(first.token, response(201), t_.now());
  EXPECT_EQ(BeginOutcome::Mismatch, store.begin(kKey, "PATCH /v1/tasks 9f86", t_.now()).outcome);
  EXPECT_EQ(BeginOutcome::Replay, store.begin(kKey, kFingerprint, t_.now()).outcome);
}

// 5xx means the outcome is unknown: the key is released and the retry proceeds.
TEST_F(IdempotencyStoreTest, ServerErrorReleasesTheKey) {
  auto store = makeStore();
  auto first = store.begin(kKey, kFingerprint, t_.now());
  EXPECT_EQ(CompleteOutcome::Released, store.complete(first.token, response(503), t_.now()));
  EXPECT_EQ(0u, store.size());
  auto retry = store.begin(kKey, kFingerprint, t_.now());
  EXPECT_EQ(BeginOutcome::Proceed, retry.outcome);
  EXPECT_NE(first.token.generation, retry.token.generation);
}

TEST_F(IdempotencyStoreTest, AbandonReleasesTheKey) {
  auto store = makeStore();
  auto first = store.begin(kKey, kFingerprint, t_.now());
  EXPECT_TRUE(store.abandon(first.token));
  EXPECT_FALSE(store.abandon(first.token));  // second abandon: nothing left to release
  EXPECT_EQ(0u, store.inFlightCount());
  EXPECT_EQ(BeginOutcome::Proceed, store.begin(kKey, kFingerprint, t_.now()).outcome);
}

// Abandoning is only for in-flight entries: it must not delete a stored response.
TEST_F(IdempotencyStoreTest, AbandonAfterCompleteKeepsTheStoredResponse) {
  auto store = makeStore();
  auto first = store.begin(kKey, kFingerprint, t_.now());
  store.complete(first.token, response(201), t_.now());
  EXPECT_FALSE(store.abandon(first.token));
  EXPECT_EQ(BeginOutcome::Replay, store.begin(kKey, kFingerprint, t_.now()).outcome);
}

// Stored for ttl after completion; at ttl the key is new again (and the fingerprint is free).
TEST_F(IdempotencyStoreTest, CompletedEntryExpiresAfterTtl) {
  auto store = makeStore();
  auto first = store.begin(kKey, kFingerprint, t_.now());
  t_.advance(5s);
  store.complete(first.token, response(201), t_.now());
  t_.advance(1h - 1ns);
  EXPECT_EQ(BeginOutcome::Replay, store.begin(kKey, kFingerprint, t_.now()).outcome);
  t_.advance(1ns);
  EXPECT_EQ(BeginOutcome::Proceed, store.begin(kKey, "another payload", t_.now()).outcome);
}

// A request whose completion never arrives stops blocking its key after in_flight_ttl; the late
// completion of the old token is then stale and cannot overwrite the new owner's entry.
TEST_F(IdempotencyStoreTest, LostInFlightEntryExpiresAndLateCompletionIsStale) {
  auto store = makeStore();
  auto lost = store.begin(kKey, kFingerprint, t_.now());
  t_.advance(29s);
  EXPECT_EQ(BeginOutcome::Conflict, store.begin(kKey, kFingerprint, t_.now()).outcome);
  t_.advance(1s);
  auto takeover = store.begin(kKey, kFingerprint, t_.now());
  ASSERT_EQ(BeginOutcome::Proceed, takeover.outcome);
  EXPECT_EQ(CompleteOutcome::Stale, store.complete(lost.token, response(200, "old"), t_.now()));
  EXPECT_FALSE(store.abandon(lost.token));
  EXPECT_EQ(CompleteOutcome::Stored,
            store.complete(takeover.token, response(200, "new"), t_.now()));
  EXPECT_EQ("new", store.begin(kKey, kFingerprint, t_.now()).response->body);
}

// At max_entries the least recently used completed entry goes; a replay counts as a use.
TEST_F(IdempotencyStoreTest, FullStoreEvictsLeastRecentlyUsedCompletedEntry) {
  auto store = makeStore(3);
  for (std::string key : {"a", "b", "c"}) {
    auto r = store.begin(key, kFingerprint, t_.now());
    store.complete(r.token, response(200, key), t_.now());
    t_.advance(1s);
  }
  EXPECT_EQ(BeginOutcome::Replay, store.begin("a", kFingerprint, t_.now()).outcome);  // touch a

  EXPECT_EQ(BeginOutcome::Proceed, store.begin("d", kFingerprint, t_.now()).outcome);
  EXPECT_EQ(3u, store.size());
  EXPECT_EQ(BeginOutcome::Replay, store.begin("a", kFingerprint, t_.now()).outcome);
  EXPECT_EQ(BeginOutcome::Replay, store.begin("c", kFingerprint, t_.now()).outcome);
  EXPECT_EQ(BeginOutcome::Proceed, store.begin("b", kFingerprint, t_.now()).outcome);  // evicted
}

// In-flight entries are never evicted; a store full of them refuses new keys distinctly, and
// accepts again once one finishes.
TEST_F(IdempotencyStoreTest, StoreFullOfInFlightEntriesRefusesNewKeys) {
  auto store = makeStore(2);
  auto a = store.begin("a", kFingerprint, t_.now());
  auto b = store.begin("b", kFingerprint, t_.now());
  ASSERT_EQ(BeginOutcome::Proceed, b.outcome);
  EXPECT_EQ(BeginOutcome::StoreFull, store.begin("c", kFingerprint, t_.now()).outcome);
  EXPECT_EQ(BeginOutcome::Conflict, store.begin("a", kFingerprint, t_.now()).outcome);

  store.complete(a.token, response(201), t_.now());  // now evictable
  EXPECT_EQ(BeginOutcome::Proceed, store.begin("c", kFingerprint, t_.now()).outcome);
  EXPECT_EQ(BeginOutcome::Conflict, store.begin("b", kFingerprint, t_.now()).outcome);
  EXPECT_EQ(2u, store.inFlightCount());
}

// Expired entries are purged before a full store evicts anything live.
TEST_F(IdempotencyStoreTest, ExpiredEntriesFreeRoomBeforeEviction) {
  auto store = makeStore(2);
  auto old = store.begin("old", kFingerprint, t_.now());
  store.complete(old.token, response(200), t_.now());
  t_.advance(30min);
  auto live = store.begin("live", kFingerprint, t_.now());
  store.complete(live.token, response(200), t_.now());
  t_.advance(31min);  // "old" expired, "live" not
  EXPECT_EQ(BeginOutcome::Proceed, store.begin("new", kFingerprint, t_.now()).outcome);
  EXPECT_EQ(BeginOutcome::Replay, store.begin("live", kFingerprint, t_.now()).outcome);

  t_.advance(2h);
  store.purgeExpired(t_.now());
  EXPECT_EQ(0u, store.size());
  EXPECT_EQ(0u, store.inFlightCount());
}

// Shared by all workers: concurrent begins of the same key admit exactly one request per key.
TEST_F(IdempotencyStoreTest, ConcurrentBeginsAdmitExactlyOnePerKey) {
  auto store = makeStore(100000);
  constexpr int kThreads = 4;
  constexpr int kKeys = 500;
  std::atomic<int> proceeded{0};
  std::atomic<int> conflicted{0};
  const auto now = t_.now();
  std::vector<std::thread> threads;
  for (int w = 0; w < kThreads; ++w) {
    threads.emplace_back([&] {
      for (int k = 0; k < kKeys; ++k) {
        const auto r = store.begin("key-" + std::to_string(k), kFingerprint, now);
        (r.outcome == BeginOutcome::Proceed ? proceeded : conflicted).fetch_add(1);
      }
    });
  }
  for (auto& thread : threads) {
    thread.join();
  }
  EXPECT_EQ(kKeys, proceeded.load());
  EXPECT_EQ(kKeys * (kThreads - 1), conflicted.load());
  EXPECT_EQ(static_cast<size_t>(kKeys), store.inFlightCount());
}

// The storage rule (file comment of idempotency_store.h), status by status.
TEST(IdempotencyStorableTest, StatusTable) {
  for (uint32_t s : {200u, 201u, 202u, 204u, 303u, 400u, 404u, 410u, 412u, 413u, 422u}) {
    EXPECT_TRUE(IdempotencyStore::isStorable(s)) << s;
  }
  for (uint32_t s :
       {0u, 100u, 103u, 401u, 403u, 407u, 408u, 409u, 425u, 429u, 500u, 502u, 503u, 504u, 600u}) {
    EXPECT_FALSE(IdempotencyStore::isStorable(s)) << s;
  }
}

TEST(IdempotencyOutcomeLabelTest, LabelsAreStable) {
  EXPECT_EQ("replayed", beginOutcomeLabel(BeginOutcome::Replay));
  EXPECT_EQ("conflict", beginOutcomeLabel(BeginOutcome::Conflict));
  EXPECT_EQ("mismatch", beginOutcomeLabel(BeginOutcome::Mismatch));
  EXPECT_EQ("store_full", beginOutcomeLabel(BeginOutcome::StoreFull));
  EXPECT_EQ("proceed", beginOutcomeLabel(BeginOutcome::Proceed));
}

}  // namespace
}  // namespace bulwark::policies::idempotency
