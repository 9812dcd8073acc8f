#include "examples/task/task_service.h"

#include <chrono>
#include <random>

#include <event2/event.h>

namespace bulwark::examples::task {
namespace {

constexpr size_t kDefaultListLimit = 100;
constexpr size_t kMaxListLimit = 1000;
constexpr size_t kMaxKeyLength = 255;

int64_t nowMs() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(
             std::chrono::system_clock::now().time_since_epoch())
      .count();
}

HttpResponse json(int status, const nlohmann::json& body, HeaderList headers = {}) {
  return HttpResponse{status, body.dump() + "\n", std::move(headers)};
}

HttpResponse error(int status, const std::string& message, HeaderList headers = {}) {
  return json(status, {{"error", message}}, std::move(headers));
}

}  // namespace

Result<std::string> parseIdempotencyKey(const std::string& value) {
  std::string key = value;
  if (key.size() >= 2 && key.front() == '"' && key.back() == '"') {
    key = key.substr(1, key.size() - 2);
  }
  if (key.empty() || key.size() > kMaxKeyLength) {
    return Status::error("Idempotency-Key must have 1 to 255 characters");
  }
  for (char c : key) {
    if (c < 0x21 || c > 0x7e || c == '"' || c == '\\') {
      return Status::error("Idempotency-Key must be visible ASCII without quotes or backslashes");
    }
  }
  return key;
}

TaskService::TaskService(event_base* base, TaskStore& store, TaskServiceOptions options)
    : base_(base),
      store_(store),
      options_(options),
      latency_(LatencyModel::seed(options.latency_scale)),
      random_(options.seed != 0 ? options.seed : std::random_device{}()) {}

TaskService::~TaskService() {
  for (auto& [ptr, execution] : executions_) {
    if (execution->timer != nullptr) {
      event_free(execution->timer);
    }
    if (!execution->key.empty()) {
      store_.release(execution->key);
    }
  }
}

void TaskService::handle(const std::shared_ptr<HttpExchange>& exchange) {
  const std::string& path = exchange->path();
  const auto method = exchange->method();
  if (path == "/healthz") {
    if (method != "GET" && method != "HEAD") {
      return exchange->reply(error(405, "use GET"));
    }
    const bool serving = serving_.load();
    return exchange->reply(json(serving ? 200 : 503, {{"status", serving ? "ok" : "not serving"},
                                                      {"executing", executions_.size()}}));
  }
  if (path == "/v1/tasks") {
    if (method == "POST") {
      return createTask(exchange);
    }
    if (method == "GET") {
      return listTasks(exchange);
    }
    return exchange->reply(error(405, "use GET or POST", {{"Allow", "GET, POST"}}));
  }
  static const std::string kPrefix = "/v1/tasks/";
  if (path.compare(0, kPrefix.size(), kPrefix) == 0 && path.size() > kPrefix.size() &&
      path.find('/', kPrefix.size()) == std::string::npos) {
    if (method != "GET") {
      return exchange->reply(error(405, "use GET", {{"Allow", "GET"}}));
    }
    return getTask(exchange, path.substr(kPrefix.size()));
  }
  exchange->reply(error(404, "no route for " + path));
}

void TaskService::createTask(const std::shared_ptr<HttpExchange>& exchange) {
  if (executions_.size() >= static_cast<size_t>(options_.max_concurrent)) {
    return exchange->reply(
        error(503, "at capacity: " + std::to_string(options_.max_concurrent) + " concurrent tasks",
              {{"Retry-After", std::to_string(options_.retry_after_s)}}));
  }
  auto input = parseTaskInput(exchange->body());
  if (!input) {
    return exchange->reply(error(400, input.error()));
  }

  std::string key;
  std::string fingerprint;
  if (auto header = exchange->header("Idempotency-Key")) {
    auto parsed = parseIdempotencyKey(*header);
    if (!parsed) {
      return exchange->reply(error(400, parsed.error()));
    }
    key = *parsed;
    fingerprint = bodyFingerprint(exchange->body());
    auto claim = store_.claim(key, fingerprint, nowMs());
    if (!claim) {
      return exchange->reply(error(500, claim.error()));
    }
    switch (claim->kind) {
      case TaskStore::Claim::Kind::Replay:
        return exchange->reply(json(
            201, claim->original->toJson(),
            {{"Location", "/v1/tasks/" + claim->original->id}, {"Idempotent-Replayed", "true"}}));
      case TaskStore::Claim::Kind::InProgress:
        return exchange->reply(error(409,
                                     "a request with this Idempotency-Key is still being processed",
                                     {{"Retry-After", std::to_string(options_.retry_after_s)}}));
      case TaskStore::Claim::Kind::Mismatch:
        return exchange->reply(
            error(422, "this Idempotency-Key was used with a different request body"));
      case TaskStore::Claim::Kind::Proceed: break;
    }
  }

  auto execution = std::make_unique<Execution>();
  execution->service = this;
  execution->exchange = exchange;
  execution->input = std::move(*input);
  execution->key = std::move(key);
  execution->fingerprint = std::move(fingerprint);
  Execution* raw = execution.get();
  executions_[raw] = std::move(execution);
  const double ms = latency_.sampleMs(random_);
  raw->timer = evtimer_new(base_, &TaskService::onExecuted, raw);
  timeval tv{};
  const auto us = static_cast<int64_t>(ms * 1000);
  tv.tv_sec = static_cast<time_t>(us / 1'000'000);
  tv.tv_usec = static_cast<suseconds_t>(us % 1'000'000);
  evtimer_add(raw->timer, &tv);
}

void TaskService::onExecuted(int, short, void* arg) {
  auto* execution = static_cast<Execution*>(arg);
  execution->service->finish(execution);
}

void TaskService::finish(Execution* execution) {
  // The task is stored even when the client has gone: the work happened, which is exactly the
  // case an Idempotency-Key retry must not repeat.
  auto task = store_.create(execution->input, nowMs(), execution->key, execution->fingerprint);
  if (task) {
    execution->exchange->reply(json(201, task->toJson(), {{"Location", "/v1/tasks/" + task->id}}));
  } else {
    if (!execution->key.empty()) {
      store_.release(execution->key);
    }
    execution->exchange->reply(error(500, task.error()));
  }
  event_free(execution->timer);
  executions_.erase(execution);
}

void TaskService::getTask(const std::shared_ptr<HttpExchange>& exchange, const std::string& id) {
  auto task = store_.get(id);
  if (!task) {
    return exchange->reply(error(404, "no task " + id));
  }
  exchange->reply(json(200, task->toJson()));
}

void TaskService::listTasks(const std::shared_ptr<HttpExchange>& exchange) {
  size_t limit = kDefaultListLimit;
  if (auto text = exchange->queryParam("limit")) {
    char* end = nullptr;
    unsigned long value = std::strtoul(text->c_str(), &end, 10);
    if (text->empty() || end != text->c_str() + text->size() || value == 0 ||
        value > kMaxListLimit) {
      return exchange->reply(error(400, "limit must be 1..1000"));
    }
    limit = value;
  }
  auto status = exchange->queryParam("status");
  if (status && *status != "succeeded" && *status != "failed") {
    return exchange->reply(error(400, "status must be succeeded or failed"));
  }
  nlohmann::json tasks = nlohmann::json::array();
  for (const auto& task : store_.list(status, limit)) {
    tasks.push_back(task.toJson());
  }
  exchange->reply(json(200, {{"tasks", tasks}, {"count", tasks.size()}}));
}

}  // namespace bulwark::examples::task
