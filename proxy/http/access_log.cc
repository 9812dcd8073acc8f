#include "proxy/http/access_log.h"

namespace bulwark::http {

std::shared_ptr<AccessLog> AccessLog::open(const std::string& path, double sample) {
  if (path.empty() || sample <= 0) return nullptr;
  FILE* file = path == "/dev/stdout" ? stdout : std::fopen(path.c_str(), "a");
  if (file == nullptr) return nullptr;
  return std::shared_ptr<AccessLog>(new AccessLog(file, sample));
}

AccessLog::~AccessLog() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::fflush(file_);
  if (file_ != stdout) std::fclose(file_);
}

bool AccessLog::sampled(uint64_t random) const {
  if (sample_ >= 1.0) return true;
  return static_cast<double>(random % 1000000) / 1000000.0 < sample_;
}

void AccessLog::write(const nlohmann::json& entry) {
  std::string line = entry.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line.push_back('\n');
  std::lock_guard<std::mutex> lock(mutex_);
  std::fwrite(line.data(), 1, line.size(), file_);
  // Line-buffer stdout so `kubectl logs` sees entries promptly; files flush on a timer.
  if (file_ == stdout) std::fflush(file_);
}

void AccessLog::flush() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::fflush(file_);
}

}  // namespace bulwark::http
