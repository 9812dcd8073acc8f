#include "proxy/http/access_log.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <fmt/format.h>
#include <spdlog/spdlog.h>

namespace bulwark::http {

namespace {

// Lines collected before a write() goes to the file without waiting for the timer: bounds the
// memory a busy worker holds and keeps each write() a few pages.
constexpr size_t kWriteThreshold = 64UL * 1024;

Result<int> openFd(const std::string& path) {
  if (path == "/dev/stdout") {
    return STDOUT_FILENO;
  }
  if (path == "/dev/stderr") {
    return STDERR_FILENO;
  }
  int fd = ::open(path.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
  if (fd < 0) {
    return Status::error(fmt::format("cannot open {}: {}", path, std::strerror(errno)));
  }
  return fd;
}

}  // namespace

Result<std::shared_ptr<AccessLog>> AccessLog::open(const Options& options) {
  if (options.path.empty() || options.sample <= 0) {
    return std::shared_ptr<AccessLog>();
  }
  auto fd = openFd(options.path);
  if (!fd) {
    return fd.status();
  }
  return std::shared_ptr<AccessLog>(new AccessLog(options, *fd));
}

AccessLog::~AccessLog() {
  std::lock_guard<std::mutex> lock(mutex_);
  writeBufferLocked();
  if (ownsFd()) {
    ::close(fd_);
  }
}

bool AccessLog::sampled(uint64_t random) const {
  if (options_.sample >= 1.0) {
    return true;
  }
  return static_cast<double>(random % 1000000) / 1000000.0 < options_.sample;
}

void AccessLog::write(const LogEntry& entry) {
  // Rendered outside the lock into this thread's line, which keeps its capacity between calls.
  thread_local std::string line;
  line.clear();
  if (options_.text) {
    entry.appendText(line);
  } else {
    entry.appendJson(line);
  }
  line.push_back('\n');
  {
    std::lock_guard<std::mutex> lock(mutex_);
    buffer_.append(line);
    if (!ownsFd() || buffer_.size() >= kWriteThreshold) {
      writeBufferLocked();
    }
  }
  if (line.capacity() > kWriteThreshold) {
    line = std::string();  // one huge request does not pin its line's memory on this thread
  }
}

void AccessLog::flush() {
  std::lock_guard<std::mutex> lock(mutex_);
  writeBufferLocked();
}

Status AccessLog::reopen() {
  std::lock_guard<std::mutex> lock(mutex_);
  writeBufferLocked();
  if (!ownsFd()) {
    return Status::ok();
  }
  auto fd = openFd(options_.path);
  if (!fd) {
    return fd.status();  // keep writing to the old file rather than lose lines
  }
  ::close(fd_);
  fd_ = *fd;
  return Status::ok();
}

void AccessLog::writeBufferLocked() {
  size_t done = 0;
  while (done < buffer_.size()) {
    ssize_t n = ::write(fd_, buffer_.data() + done, buffer_.size() - done);
    if (n < 0 && errno == EINTR) {
      continue;
    }
    if (n <= 0) {
      // A full disk or a closed pipe: report once per batch and drop the batch; holding it
      // would only grow memory while the file cannot take it.
      spdlog::warn("access log {}: dropping {} bytes: {}", options_.path, buffer_.size() - done,
                   n < 0 ? std::strerror(errno) : "short write");
      if (dropped_bytes_ != nullptr) {
        dropped_bytes_->Increment(static_cast<double>(buffer_.size() - done));
      }
      break;
    }
    done += static_cast<size_t>(n);
  }
  buffer_.clear();
}

}  // namespace bulwark::http
