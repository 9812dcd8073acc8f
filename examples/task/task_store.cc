#include "examples/task/task_store.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>

namespace bulwark::examples::task {
namespace {

constexpr size_t kMaxNameLength = 200;
constexpr size_t kMaxActions = 100;

uint64_t fnv1a(const std::string& text) {
  uint64_t h = 0xcbf29ce484222325ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 0x100000001b3ULL;
  }
  return h;
}

std::string formatId(uint64_t sequence) {
  char buf[32];
  std::snprintf(buf, sizeof(buf), "t-%08" PRIu64, sequence);
  return buf;
}

std::optional<uint64_t> sequenceOf(const std::string& id) {
  if (id.size() < 3 || id.compare(0, 2, "t-") != 0) {
    return std::nullopt;
  }
  char* end = nullptr;
  uint64_t value = std::strtoull(id.c_str() + 2, &end, 10);
  if (end != id.c_str() + id.size()) {
    return std::nullopt;
  }
  return value;
}

}  // namespace

Result<TaskInput> parseTaskInput(const std::string& body) {
  auto json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (json.is_discarded()) {
    return Status::error("body is not valid JSON");
  }
  if (!json.is_object()) {
    return Status::error("body must be a JSON object");
  }
  for (auto it = json.begin(); it != json.end(); ++it) {
    if (it.key() != "name" && it.key() != "actions" && it.key() != "payload") {
      return Status::error("unknown field '" + it.key() + "'");
    }
  }
  TaskInput input;
  auto name = json.find("name");
  if (name == json.end() || !name->is_string() || name->get<std::string>().empty()) {
    return Status::error("name must be a non-empty string");
  }
  input.name = name->get<std::string>();
  if (input.name.size() > kMaxNameLength) {
    return Status::error("name is longer than 200 characters");
  }
  if (auto actions = json.find("actions"); actions != json.end()) {
    if (!actions->is_array() || actions->size() > kMaxActions) {
      return Status::error("actions must be an array of at most 100 objects");
    }
    for (const auto& action : *actions) {
      if (!action.is_object() || !action.contains("type") || !action["type"].is_string()) {
        return Status::error("every action needs a string \"type\"");
      }
    }
    input.actions = *actions;
  }
  if (auto payload = json.find("payload"); payload != json.end()) {
    if (!payload->is_object()) {
      return Status::error("payload must be an object");
    }
    input.payload = *payload;
  }
  return input;
}

std::string bodyFingerprint(const std::string& body) {
  auto json = nlohmann::json::parse(body, nullptr, /*allow_exceptions=*/false);
  // nlohmann::json keeps object keys sorted, so dump() is a canonical form.
  const std::string canonical = json.is_discarded() ? "raw:" + body : "json:" + json.dump();
  char buf[24];
  std::snprintf(buf, sizeof(buf), "%016" PRIx64, fnv1a(canonical));
  return buf;
}

nlohmann::json Task::toJson() const {
  nlohmann::json json = {{"id", id},
                         {"name", name},
                         {"status", status},
                         {"actions", actions},
                         {"payload", payload},
                         {"actions_run", actions_run},
                         {"created_at_ms", created_at_ms}};
  if (!idempotency_key.empty()) {
    json["idempotency_key"] = idempotency_key;
  }
  return json;
}

std::optional<Task> Task::fromJson(const nlohmann::json& json) {
  if (!json.is_object()) {
    return std::nullopt;
  }
  auto str = [&json](const char* name) -> std::optional<std::string> {
    auto it = json.find(name);
    if (it == json.end() || !it->is_string()) {
      return std::nullopt;
    }
    return it->get<std::string>();
  };
  auto id = str("id");
  auto name = str("name");
  auto status = str("status");
  if (!id || !name || !status) {
    return std::nullopt;
  }
  Task task;
  task.id = *id;
  task.name = *name;
  task.status = *status;
  task.actions = json.value("actions", nlohmann::json::array());
  task.payload = json.value("payload", nlohmann::json::object());
  task.actions_run = json.value("actions_run", 0);
  task.created_at_ms = json.value("created_at_ms", int64_t{0});
  task.idempotency_key = str("idempotency_key").value_or("");
  return task;
}

Result<std::unique_ptr<TaskStore>> TaskStore::open(Options options) {
  std::unique_ptr<TaskStore> store(new TaskStore(std::move(options)));
  if (!store->options_.data_file.empty()) {
    store->fd_ =
        ::open(store->options_.data_file.c_str(), O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (store->fd_ < 0) {
      return Status::error("cannot open " + store->options_.data_file + ": " + strerror(errno));
    }
    if (auto s = store->lock(false); !s) {
      return s;
    }
    Status s = store->catchUp();
    store->unlock();
    if (!s) {
      return s;
    }
  }
  return store;
}

TaskStore::~TaskStore() {
  // Claims this replica holds and never finished (shutdown mid-request) are given back.
  std::vector<std::string> mine;
  for (const auto& [key, record] : keys_) {
    if (record.claimed_here && !record.task_id) {
      mine.push_back(key);
    }
  }
  for (const auto& key : mine) {
    release(key);
  }
  if (fd_ >= 0) {
    ::close(fd_);
  }
}

Status TaskStore::lock(bool exclusive) {
  if (fd_ < 0) {
    return Status::ok();
  }
  while (flock(fd_, exclusive ? LOCK_EX : LOCK_SH) != 0) {
    if (errno != EINTR) {
      return Status::error(std::string("flock: ") + strerror(errno));
    }
  }
  return Status::ok();
}

void TaskStore::unlock() {
  if (fd_ >= 0) {
    flock(fd_, LOCK_UN);
  }
}

Status TaskStore::catchUp() {
  if (fd_ < 0) {
    return Status::ok();
  }
  char buf[65536];
  while (true) {
    ssize_t n = ::pread(fd_, buf, sizeof(buf), static_cast<off_t>(read_offset_));
    if (n < 0) {
      if (errno == EINTR) {
        continue;
      }
      return Status::error(std::string("read ") + options_.data_file + ": " + strerror(errno));
    }
    if (n == 0) {
      break;
    }
    read_offset_ += static_cast<uint64_t>(n);
    partial_line_.append(buf, static_cast<size_t>(n));
    size_t start = 0;
    while (true) {
      size_t end = partial_line_.find('\n', start);
      if (end == std::string::npos) {
        break;
      }
      std::string line = partial_line_.substr(start, end - start);
      start = end + 1;
      if (line.empty()) {
        continue;
      }
      auto record = nlohmann::json::parse(line, nullptr, /*allow_exceptions=*/false);
      if (record.is_discarded() || !record.is_object()) {
        ++skipped_records_;
        continue;
      }
      apply(record);
    }
    partial_line_.erase(0, start);
  }
  return Status::ok();
}

void TaskStore::apply(const nlohmann::json& record) {
  const std::string op = record.value("op", "");
  const std::string key = record.value("key", "");
  if (op == "claim" && !key.empty()) {
    KeyRecord& k = keys_[key];
    k.fingerprint = record.value("fp", "");
    k.claimed_at_ms = record.value("at", int64_t{0});
    k.task_id.reset();
    k.claimed_here = false;
  } else if (op == "release" && !key.empty()) {
    keys_.erase(key);
  } else if (op == "task") {
    auto task = Task::fromJson(record.value("task", nlohmann::json()));
    if (!task || index_.count(task->id) != 0) {
      ++skipped_records_;
      return;
    }
    if (auto seq = sequenceOf(task->id); seq && *seq >= next_sequence_) {
      next_sequence_ = *seq + 1;
    }
    if (!task->idempotency_key.empty()) {
      KeyRecord& k = keys_[task->idempotency_key];
      k.fingerprint = record.value("fp", "");
      k.task_id = task->id;
    }
    index_[task->id] = tasks_.size();
    tasks_.push_back(std::move(*task));
  } else {
    ++skipped_records_;
  }
}

Status TaskStore::append(const nlohmann::json& record) {
  if (fd_ < 0) {
    apply(record);
    return Status::ok();
  }
  std::string line = record.dump() + "\n";
  if (!partial_line_.empty()) {
    // Under the exclusive lock nobody is mid-write, so this is a torn write from a crash:
    // terminate it so that our record starts on its own line.
    line.insert(line.begin(), '\n');
    partial_line_.clear();
    ++skipped_records_;
  }
  // One write(2) per record with O_APPEND; the record is in the kernel once this returns, so it
  // survives a crash of this process (not of the machine: no fsync, by design for the benchmark).
  size_t written = 0;
  while (written < line.size()) {
    ssize_t n = ::write(fd_, line.data() + written, line.size() - written);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      return Status::error("write " + options_.data_file + ": " + strerror(errno));
    }
    written += static_cast<size_t>(n);
  }
  read_offset_ += line.size();
  apply(record);
  return Status::ok();
}

Result<TaskStore::Claim> TaskStore::claim(const std::string& key, const std::string& fingerprint,
                                          int64_t now_ms) {
  if (auto s = lock(true); !s) {
    return s;
  }
  struct Unlock {
    TaskStore* store;
    ~Unlock() { store->unlock(); }
  } unlock_guard{this};
  if (auto s = catchUp(); !s) {
    return s;
  }
  Claim claim;
  if (auto it = keys_.find(key); it != keys_.end()) {
    const KeyRecord& record = it->second;
    if (record.fingerprint != fingerprint &&
        (record.task_id || now_ms - record.claimed_at_ms < options_.claim_timeout_ms)) {
      claim.kind = Claim::Kind::Mismatch;
      return claim;
    }
    if (record.task_id) {
      claim.kind = Claim::Kind::Replay;
      claim.original = tasks_[index_.at(*record.task_id)];
      return claim;
    }
    if (now_ms - record.claimed_at_ms < options_.claim_timeout_ms) {
      claim.kind = Claim::Kind::InProgress;
      return claim;
    }
    // An abandoned claim (its replica died): the key is free again.
  }
  if (auto s = append({{"op", "claim"}, {"key", key}, {"fp", fingerprint}, {"at", now_ms}}); !s) {
    return s;
  }
  keys_[key].claimed_here = true;
  claim.kind = Claim::Kind::Proceed;
  return claim;
}

Status TaskStore::release(const std::string& key) {
  if (auto s = lock(true); !s) {
    return s;
  }
  Status s = catchUp();
  if (s) {
    s = append({{"op", "release"}, {"key", key}});
  }
  unlock();
  return s;
}

Result<Task> TaskStore::create(const TaskInput& input, int64_t now_ms, const std::string& key,
                               const std::string& fingerprint) {
  if (auto s = lock(true); !s) {
    return s;
  }
  struct Unlock {
    TaskStore* store;
    ~Unlock() { store->unlock(); }
  } unlock_guard{this};
  if (auto s = catchUp(); !s) {
    return s;
  }
  Task task;
  task.id = formatId(next_sequence_);
  task.name = input.name;
  task.actions = input.actions;
  task.payload = input.payload;
  task.created_at_ms = now_ms;
  task.idempotency_key = key;
  task.status = "succeeded";
  for (const auto& action : input.actions) {
    ++task.actions_run;
    if (action["type"] == "fail") {
      task.status = "failed";
      break;
    }
  }
  nlohmann::json record = {{"op", "task"}, {"task", task.toJson()}};
  if (!key.empty()) {
    record["fp"] = fingerprint;
  }
  if (auto s = append(record); !s) {
    return s;
  }
  return task;
}

std::optional<Task> TaskStore::get(const std::string& id) {
  if (lock(false)) {
    catchUp();
    unlock();
  }
  auto it = index_.find(id);
  if (it == index_.end()) {
    return std::nullopt;
  }
  return tasks_[it->second];
}

std::vector<Task> TaskStore::list(const std::optional<std::string>& status, size_t limit) {
  if (lock(false)) {
    catchUp();
    unlock();
  }
  std::vector<Task> out;
  for (const auto& task : tasks_) {
    if (out.size() >= limit) {
      break;
    }
    if (!status || task.status == *status) {
      out.push_back(task);
    }
  }
  return out;
}

size_t TaskStore::size() {
  if (lock(false)) {
    catchUp();
    unlock();
  }
  return tasks_.size();
}

}  // namespace bulwark::examples::task
