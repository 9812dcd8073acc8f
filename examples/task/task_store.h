#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/result.h"

namespace bulwark::examples::task {

/** What a client asks for: POST /v1/tasks {"name": "...", "actions": [...], "payload": {...}}. */
struct TaskInput {
  std::string name;
  nlohmann::json actions = nlohmann::json::array();  // [{"type": "..."}...]
  nlohmann::json payload = nlohmann::json::object();
};

/**
 * Validates a request body. name: non-empty string (<= 200 chars); actions: optional array of up
 * to 100 objects, each with a string "type"; payload: optional object. Unknown fields are errors.
 */
Result<TaskInput> parseTaskInput(const std::string& body);

/**
 * Fingerprint of a request body for Idempotency-Key checks: semantically equal JSON (whitespace,
 * key order) gives the same fingerprint. Non-JSON bodies are fingerprinted byte for byte.
 */
std::string bodyFingerprint(const std::string& body);

/** A stored task. Execution runs the actions in order; an action of type "fail" fails the task. */
struct Task {
  std::string id;
  std::string name;
  std::string status;  // "succeeded" | "failed"
  nlohmann::json actions;
  nlohmann::json payload;
  int actions_run = 0;
  int64_t created_at_ms = 0;
  std::string idempotency_key;  // empty when the request had none

  /** The public representation (responses). */
  nlohmann::json toJson() const;
  static std::optional<Task> fromJson(const nlohmann::json& json);
};

/**
 * Tasks and Idempotency-Key records (draft-ietf-httpapi-idempotency-key-header), in memory and,
 * optionally, in an append-only JSON-lines log. Every change is appended under an exclusive
 * flock(2) after catching up with the log, so several replicas given the same file behave as one
 * store (the seed's shared database): ids stay unique and a key claimed by one replica is seen
 * by all. Records:
 *   {"op":"claim","key":K,"fp":F,"at":MS}   a request with key K started
 *   {"op":"release","key":K}                 it ended without creating a task (key reusable)
 *   {"op":"task","task":{...},"fp":F}        a task was created (completes its key, if any)
 * A claim without task or release counts as in progress until claim_timeout_ms has passed (the
 * replica holding it may have crashed). Replaying the log at start restores everything.
 * Thread: owning thread (not synchronised; the file lock only orders processes).
 */
class TaskStore {
public:
  struct Options {
    /** Append-only log; empty = memory only. */
    std::string data_file;
    /** How long an unfinished claim blocks its key. */
    int64_t claim_timeout_ms = 30'000;
  };

  /** Opens (creating if needed) and replays the log. */
  static Result<std::unique_ptr<TaskStore>> open(Options options);
  ~TaskStore();
  TaskStore(const TaskStore&) = delete;
  TaskStore& operator=(const TaskStore&) = delete;

  /** Outcome of presenting an Idempotency-Key. */
  struct Claim {
    enum class Kind {
      Proceed,     // new key, now claimed by the caller: create() or release() it
      Replay,      // same key and same body as a finished request: answer `original` again
      InProgress,  // the first request with this key has not finished: 409
      Mismatch,    // the key was used with a different body: 422
    };
    Kind kind = Kind::Proceed;
    std::optional<Task> original;
  };
  Result<Claim> claim(const std::string& key, const std::string& fingerprint, int64_t now_ms);
  /** Gives up a claim made by this store (the request failed before creating anything). */
  Status release(const std::string& key);

  /**
   * Runs and stores a task. With `key`, the caller must hold its claim (claim() returned
   * Proceed); the key then replays this task.
   */
  Result<Task> create(const TaskInput& input, int64_t now_ms, const std::string& key = "",
                      const std::string& fingerprint = "");

  /** Looks up a task (after catching up with the log). */
  std::optional<Task> get(const std::string& id);
  /** Tasks in creation order, optionally only those with `status`, at most `limit`. */
  std::vector<Task> list(const std::optional<std::string>& status, size_t limit);
  size_t size();
  /** Log lines that could not be parsed (a torn last write after a crash, for instance). */
  size_t skippedRecords() const { return skipped_records_; }

private:
  struct KeyRecord {
    std::string fingerprint;
    int64_t claimed_at_ms = 0;
    std::optional<std::string> task_id;  // set once the task exists
    bool claimed_here = false;
  };

  explicit TaskStore(Options options) : options_(std::move(options)) {}
  Status catchUp();                             // reads records appended since the last read
  Status append(const nlohmann::json& record);  // after catchUp(), under the lock
  void apply(const nlohmann::json& record);
  Status lock(bool exclusive);
  void unlock();

  Options options_;
  int fd_ = -1;
  uint64_t read_offset_ = 0;
  std::string partial_line_;
  size_t skipped_records_ = 0;
  uint64_t next_sequence_ = 1;
  std::vector<Task> tasks_;                        // creation order
  std::unordered_map<std::string, size_t> index_;  // id -> position in tasks_
  std::unordered_map<std::string, KeyRecord> keys_;
};

}  // namespace bulwark::examples::task
