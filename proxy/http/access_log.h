#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>

#include <prometheus/counter.h>

#include "common/result.h"
#include "proxy/http/log_entry.h"

namespace bulwark::http {

/**
 * JSON-lines (or key=value text) access log with Istio's keys, optionally sampled.
 *
 * Workers append whole lines to a memory buffer; the buffer reaches the file only as whole lines
 * (a log shipper never sees half an entry), when it grows past a few pages, when the main thread
 * calls flush() on its timer (every `flushInterval`, so a line is on disk within that) and when the
 * last owner lets go. stdout is written line by line so `kubectl logs` sees entries at once.
 * reopen() swaps in a fresh descriptor for the same path, the logrotate contract.
 * Thread: any (one mutex around the buffer and the descriptor).
 */
class AccessLog {
public:
  struct Options {
    std::string path;  // "/dev/stdout" and "/dev/stderr" write to the process's own streams
    bool text = false;
    double sample = 1.0;
    std::chrono::milliseconds flush_interval{1000};
    bool operator==(const Options&) const = default;
  };

  /**
   * Opens (creating, appending) options.path; nullptr when the path is empty or sample is 0. The
   * error names the path and the reason, e.g. "cannot open /var/log/x.log: Permission denied".
   */
  static Result<std::shared_ptr<AccessLog>> open(const Options& options);
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  const Options& options() const { return options_; }
  bool sampled(uint64_t random) const;
  void write(const LogEntry& entry);
  /** Writes every buffered line to the file. */
  void flush();
  /** Flushes, then reopens the path (after logrotate moved the old file away). */
  Status reopen();
  /** Where bytes dropped by a failed write are counted (set once, before the log is shared). */
  void setDroppedBytesCounter(prometheus::Counter* counter) { dropped_bytes_ = counter; }

private:
  AccessLog(Options options, int fd) : options_(std::move(options)), fd_(fd) {}
  void writeBufferLocked();
  bool ownsFd() const { return fd_ > 2; }

  const Options options_;
  std::mutex mutex_;
  int fd_;
  std::string buffer_;  // whole lines only
  prometheus::Counter* dropped_bytes_ = nullptr;
};
using AccessLogSharedPtr = std::shared_ptr<AccessLog>;

}  // namespace bulwark::http
