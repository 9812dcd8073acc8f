#pragma once

#include <cstdio>
#include <memory>
#include <mutex>
#include <string>

#include <nlohmann/json.hpp>

namespace bulwark::http {

/**
 * JSON-lines access log with Istio's keys, optionally sampled.
 * Thread: any (one mutex around a buffered FILE*; off by default for benchmarks).
 */
class AccessLog {
public:
  /**
   * Opens path ("/dev/stdout" works); nullptr when path is empty. format "json" writes one JSON
   * object per line; "text" writes the same fields as key=value pairs (values with spaces quoted).
   */
  static std::shared_ptr<AccessLog> open(const std::string& path, double sample,
                                         const std::string& format = "json");
  ~AccessLog();
  bool sampled(uint64_t random) const;
  void write(const nlohmann::json& entry);
  void flush();

private:
  AccessLog(FILE* file, double sample, bool text) : file_(file), sample_(sample), text_(text) {}
  std::mutex mutex_;
  FILE* file_;
  double sample_;
  bool text_;
};
using AccessLogSharedPtr = std::shared_ptr<AccessLog>;

}  // namespace bulwark::http
