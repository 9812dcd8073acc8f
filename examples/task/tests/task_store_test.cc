#include "examples/task/task_store.h"

#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>

#include <gtest/gtest.h>

namespace bulwark::examples::task {
namespace {

using Kind = TaskStore::Claim::Kind;

TaskInput input(const std::string& name) {
  auto parsed = parseTaskInput(R"({"name":")" + name + R"("})");
  return *parsed;
}

std::unique_ptr<TaskStore> memoryStore() {
  auto store = TaskStore::open({});
  EXPECT_TRUE(store) << store.error();
  return std::move(*store);
}

class TempFile {
public:
  TempFile() {
    path_ = (std::filesystem::temp_directory_path() /
             ("task_store_test_" + std::to_string(getpid()) + "_" + std::to_string(counter_++)))
                .string();
    std::filesystem::remove(path_);
  }
  ~TempFile() { std::filesystem::remove(path_); }
  const std::string& path() const { return path_; }

private:
  static inline int counter_ = 0;
  std::string path_;
};

TEST(TaskInputTest, ValidatesTheBody) {
  EXPECT_TRUE(parseTaskInput(R"({"name":"a","actions":[{"type":"http"}],"payload":{"x":1}})"));
  EXPECT_FALSE(parseTaskInput("not json"));
  EXPECT_FALSE(parseTaskInput(R"({"actions":[]})"));
  EXPECT_FALSE(parseTaskInput(R"({"name":""})"));
  EXPECT_FALSE(parseTaskInput(R"({"name":"a","actions":[{}]})"));
  EXPECT_FALSE(parseTaskInput(R"({"name":"a","payload":[]})"));
  EXPECT_FALSE(parseTaskInput(R"({"name":"a","extra":1})"));
}

TEST(TaskInputTest, FingerprintIgnoresFormattingButNotContent) {
  EXPECT_EQ(bodyFingerprint(R"({"name":"a","payload":{"x":1}})"),
            bodyFingerprint("{ \"payload\" : {\"x\": 1},\n \"name\": \"a\" }"));
  EXPECT_NE(bodyFingerprint(R"({"name":"a"})"), bodyFingerprint(R"({"name":"b"})"));
}

TEST(TaskStoreTest, ExecutesActionsAndFailsOnAFailAction) {
  auto store = memoryStore();
  auto ok =
      store->create(*parseTaskInput(R"({"name":"a","actions":[{"type":"x"},{"type":"y"}]})"), 1);
  ASSERT_TRUE(ok);
  EXPECT_EQ(ok->status, "succeeded");
  EXPECT_EQ(ok->actions_run, 2);
  auto failed =
      store->create(*parseTaskInput(R"({"name":"b","actions":[{"type":"fail"},{"type":"y"}]})"), 2);
  ASSERT_TRUE(failed);
  EXPECT_EQ(failed->status, "failed");
  EXPECT_EQ(failed->actions_run, 1);
  EXPECT_NE(ok->id, failed->id);
  EXPECT_EQ(store->list(std::string("failed"), 10).size(), 1u);
  EXPECT_EQ(store->list(std::nullopt, 10).size(), 2u);
  EXPECT_EQ(store->list(std::nullopt, 1).size(), 1u);
  EXPECT_EQ(store->get(ok->id)->name, "a");
  EXPECT_FALSE(store->get("t-99999999"));
}

TEST(TaskStoreTest, SameKeySameBodyReplaysAndCreatesNothing) {
  auto store = memoryStore();
  auto claim = store->claim("k1", "fp", 1000);
  ASSERT_TRUE(claim);
  ASSERT_EQ(claim->kind, Kind::Proceed);
  auto task = store->create(input("a"), 1001, "k1", "fp");
  ASSERT_TRUE(task);
  auto again = store->claim("k1", "fp", 2000);
  ASSERT_TRUE(again);
  EXPECT_EQ(again->kind, Kind::Replay);
  ASSERT_TRUE(again->original);
  EXPECT_EQ(again->original->id, task->id);
  EXPECT_EQ(store->size(), 1u);
}

TEST(TaskStoreTest, SameKeyDifferentBodyIsAMismatch) {
  auto store = memoryStore();
  ASSERT_EQ(store->claim("k1", "fp1", 1000)->kind, Kind::Proceed);
  EXPECT_EQ(store->claim("k1", "fp2", 1001)->kind, Kind::Mismatch);  // while in progress
  ASSERT_TRUE(store->create(input("a"), 1002, "k1", "fp1"));
  EXPECT_EQ(store->claim("k1", "fp2", 1003)->kind, Kind::Mismatch);  // after completion
  EXPECT_EQ(store->size(), 1u);
}

TEST(TaskStoreTest, KeyInProgressConflictsUntilFinishedReleasedOrExpired) {
  TaskStore::Options options;
  options.claim_timeout_ms = 500;
  auto store = TaskStore::open(options).value();
  ASSERT_EQ(store->claim("k1", "fp", 1000)->kind, Kind::Proceed);
  EXPECT_EQ(store->claim("k1", "fp", 1100)->kind, Kind::InProgress);
  // Released (the request failed): the key may be used again.
  ASSERT_TRUE(store->release("k1"));
  EXPECT_EQ(store->claim("k1", "fp", 1200)->kind, Kind::Proceed);
  // Abandoned (its replica died): free again after the claim timeout.
  EXPECT_EQ(store->claim("k1", "fp", 1699)->kind, Kind::InProgress);
  EXPECT_EQ(store->claim("k1", "fp", 1700)->kind, Kind::Proceed);
  EXPECT_EQ(store->size(), 0u);
}

TEST(TaskStoreTest, LogReplayRestoresTasksAndKeys) {
  TempFile file;
  std::string id;
  {
    auto store = TaskStore::open({file.path()}).value();
    ASSERT_EQ(store->claim("k1", "fp", 1000)->kind, Kind::Proceed);
    id = store->create(input("a"), 1001, "k1", "fp")->id;
    ASSERT_TRUE(store->create(input("b"), 1002));
  }
  auto store = TaskStore::open({file.path()});
  ASSERT_TRUE(store) << store.error();
  EXPECT_EQ((*store)->size(), 2u);
  EXPECT_EQ((*store)->get(id)->name, "a");
  auto claim = (*store)->claim("k1", "fp", 5000);
  EXPECT_EQ(claim->kind, Kind::Replay);
  EXPECT_EQ(claim->original->id, id);
  // New ids continue after the replayed ones.
  auto c = (*store)->create(input("c"), 5001);
  EXPECT_EQ(c->id, "t-00000003");
  EXPECT_EQ((*store)->skippedRecords(), 0u);
}

TEST(TaskStoreTest, ReplicasSharingALogActAsOneStore) {
  TempFile file;
  auto a = TaskStore::open({file.path()}).value();
  auto b = TaskStore::open({file.path()}).value();
  ASSERT_EQ(a->claim("k1", "fp", 1000)->kind, Kind::Proceed);
  EXPECT_EQ(b->claim("k1", "fp", 1001)->kind, Kind::InProgress);  // a retry landing on b
  auto task = a->create(input("x"), 1002, "k1", "fp");
  auto replay = b->claim("k1", "fp", 1003);
  EXPECT_EQ(replay->kind, Kind::Replay);
  EXPECT_EQ(replay->original->id, task->id);
  auto other = b->create(input("y"), 1004);
  EXPECT_NE(other->id, task->id);
  EXPECT_EQ(a->size(), 2u);
  EXPECT_EQ(a->get(other->id)->name, "y");
}

TEST(TaskStoreTest, TornLastLineIsSkippedAndLaterRecordsStillParse) {
  TempFile file;
  {
    auto store = TaskStore::open({file.path()}).value();
    ASSERT_TRUE(store->create(input("a"), 1));
  }
  {
    std::ofstream out(file.path(), std::ios::app);
    out << R"({"op":"task","task":{"id":"t-0000)";  // a crash mid-write
  }
  {
    auto store = TaskStore::open({file.path()}).value();
    EXPECT_EQ(store->size(), 1u);
    ASSERT_TRUE(store->create(input("b"), 2));
  }
  auto store = TaskStore::open({file.path()}).value();
  EXPECT_EQ(store->size(), 2u);
  EXPECT_EQ(store->skippedRecords(), 1u);
}

}  // namespace
}  // namespace bulwark::examples::task
