#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <string>
#include <unordered_map>

#include "examples/common/http_server.h"
#include "examples/task/latency_model.h"
#include "examples/task/task_store.h"
#include "policies/random.h"

struct event;
struct event_base;

namespace bulwark::examples::task {

struct TaskServiceOptions {
  /** Multiplies the seed's execution-time model; 0 answers as fast as the work allows. */
  double latency_scale = 1.0;
  /** Concurrent task executions (seed: 250, "limited by file descriptors"); beyond: 503. */
  int max_concurrent = 250;
  /** Retry-After (seconds) on 503 when at capacity. */
  int retry_after_s = 1;
  /** Seed of the latency sampler; 0 = nondeterministic. */
  uint64_t seed = 0;
};

/**
 * The task API (after EyeFlow, seed 001) on top of TaskStore:
 *   POST /v1/tasks             create and execute a task (201), honouring Idempotency-Key
 *   GET  /v1/tasks/{id}        one task (404 if unknown)
 *   GET  /v1/tasks?status=&limit=   tasks in creation order
 *   GET  /healthz              200 {"status":"ok","executing":N}, or 503 once marked not
 *                              serving (control endpoint, SIGTERM drain)
 * A creation takes the model's execution time as a timer on the loop (not a sleep), then stores
 * the task; while it runs its Idempotency-Key answers 409.
 * Thread: the server's loop thread, except setServing() (any).
 */
class TaskService {
public:
  TaskService(event_base* base, TaskStore& store, TaskServiceOptions options);
  ~TaskService();
  TaskService(const TaskService&) = delete;
  TaskService& operator=(const TaskService&) = delete;

  void handle(const std::shared_ptr<HttpExchange>& exchange);
  void setServing(bool serving) { serving_.store(serving); }
  size_t executing() const { return executions_.size(); }

private:
  struct Execution {
    TaskService* service;
    std::shared_ptr<HttpExchange> exchange;
    TaskInput input;
    std::string key;
    std::string fingerprint;
    event* timer = nullptr;
  };

  void createTask(const std::shared_ptr<HttpExchange>& exchange);
  void getTask(const std::shared_ptr<HttpExchange>& exchange, const std::string& id);
  void listTasks(const std::shared_ptr<HttpExchange>& exchange);
  static void onExecuted(int fd, short what, void* arg);
  void finish(Execution* execution);

  event_base* base_;
  TaskStore& store_;
  TaskServiceOptions options_;
  LatencyModel latency_;
  policies::SeededRandom random_;
  std::atomic<bool> serving_{true};
  std::unordered_map<Execution*, std::unique_ptr<Execution>> executions_;
};

/**
 * Parses an Idempotency-Key header value: a structured-field string ("...", as the draft
 * specifies) or, leniently, a bare token. 1..255 visible ASCII characters.
 */
Result<std::string> parseIdempotencyKey(const std::string& value);

}  // namespace bulwark::examples::task
