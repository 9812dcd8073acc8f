#include "proxy/http/access_log.h"

namespace bulwark::http {

std::shared_ptr<AccessLog> AccessLog::open(const std::string& path, double sample,
                                           const std::string& format) {
  if (path.empty() || sample <= 0) {
    return nullptr;
  }
  FILE* file = path == "/dev/stdout" ? stdout : std::fopen(path.c_str(), "a");
  if (file == nullptr) {
    return nullptr;
  }
  return std::shared_ptr<AccessLog>(new AccessLog(file, sample, format == "text"));
}

namespace {

// key=value pairs in the entry's order; strings with spaces, quotes or '=' are quoted.
std::string textLine(const nlohmann::json& entry) {
  std::string line;
  for (auto it = entry.begin(); it != entry.end(); ++it) {
    if (!line.empty()) {
      line.push_back(' ');
    }
    line.append(it.key()).push_back('=');
    if (it->is_string()) {
      const std::string& v = it->get_ref<const std::string&>();
      bool quote = v.empty() || v.find_first_of(" \"=") != std::string::npos;
      line.append(
          quote ? nlohmann::json(v).dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)
                : v);
    } else {
      line.append(it->dump());
    }
  }
  return line;
}

}  // namespace

AccessLog::~AccessLog() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::fflush(file_);
  if (file_ != stdout) {
    std::fclose(file_);
  }
}

bool AccessLog::sampled(uint64_t random) const {
  if (sample_ >= 1.0) {
    return true;
  }
  return static_cast<double>(random % 1000000) / 1000000.0 < sample_;
}

void AccessLog::write(const nlohmann::json& entry) {
  std::string line = text_ ? textLine(entry)
                           : entry.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace);
  line.push_back('\n');
  std::lock_guard<std::mutex> lock(mutex_);
  std::fwrite(line.data(), 1, line.size(), file_);
  // Line-buffer stdout so `kubectl logs` sees entries promptly; files flush on a timer.
  if (file_ == stdout) {
    std::fflush(file_);
  }
}

void AccessLog::flush() {
  std::lock_guard<std::mutex> lock(mutex_);
  std::fflush(file_);
}

}  // namespace bulwark::http
