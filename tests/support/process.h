#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <regex>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "tests/support/wait.h"

namespace bulwark::testing {

/** How to start a child process. Thread: value type. */
struct ProcessOptions {
  /** Path of the executable (not searched in PATH). */
  std::string path;
  /** Arguments after argv[0]. */
  std::vector<std::string> args;
  /** Variables to set (or override) in the child's environment. */
  std::vector<std::pair<std::string, std::string>> env;
  /** Start from the parent's environment (true) or from `env` alone (false). */
  bool inherit_env = true;
  /** Working directory; empty = the parent's. */
  std::string working_dir;
};

/** How a child ended. Thread: value type. */
struct ExitStatus {
  /** Exited normally with `code`. */
  bool exited = false;
  int code = -1;
  /** Killed by `signal`. */
  bool signaled = false;
  int signal = 0;
};

/** One line a child printed. Thread: value type. */
struct OutputLine {
  bool from_stderr = false;
  std::string text;
};

/**
 * A spawned child (an example backend, the bulwark binary) with its stdout and stderr captured
 * line by line by a reader thread, so the pipes never fill up and tests can wait for a line:
 *
 *   ProcessOptions options;
 *   options.path = kServer;
 *   options.args = {"--port", "0"};
 *   std::string spawn_error;
 *   auto child = ChildProcess::spawn(options, &spawn_error);
 *   ASSERT_TRUE(child) << spawn_error;
 *   auto port = child->waitForListeningPort();
 *   ...
 *   child->signal(SIGTERM);
 *   auto status = child->waitForExit(deadlineIn(5s));
 *
 * The destructor SIGKILLs a child that is still running and reaps it. Spawning uses posix_spawn
 * with signal dispositions and mask reset, and all pipe ends close-on-exec, so concurrent
 * spawns and the test's own sockets don't leak into children.
 * Thread: any (state shared with the reader thread is locked).
 */
class ChildProcess {
public:
  /** Starts the child. nullptr on failure with *error set. */
  static std::unique_ptr<ChildProcess> spawn(const ProcessOptions& options,
                                             std::string* error = nullptr);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }

  /**
   * Waits for the first line (stdout or stderr, from the start of the child's output) matching
   * `pattern` (std::regex_search). Returns the match groups (group 0 = whole match) or nullopt
   * at the deadline or when the child closed its output without printing it.
   */
  std::optional<std::vector<std::string>> waitForLine(const std::regex& pattern,
                                                      Deadline deadline = defaultDeadline());
  std::optional<std::vector<std::string>> waitForLine(const std::string& pattern,
                                                      Deadline deadline = defaultDeadline());
  /**
   * Waits for "listening on 127.0.0.1:PORT" (or a custom pattern whose group 1 is the port)
   * and returns the port.
   */
  std::optional<uint16_t> waitForListeningPort(
      Deadline deadline = defaultDeadline(),
      const std::string& pattern = R"(listening on 127\.0\.0\.1:(\d+))");
  /** Every line so far. */
  std::vector<OutputLine> lines() const;
  /** All output so far joined with '\n' (for failure messages). */
  std::string output() const;

  /** Sends a signal. False if the child already exited. */
  bool signal(int sig);
  /** SIGKILL. */
  bool kill() { return signal(9); }
  /** Still running (not yet reaped). */
  bool running();
  /** Waits for exit; nullopt at the deadline (the child keeps running). */
  std::optional<ExitStatus> waitForExit(Deadline deadline = defaultDeadline());

private:
  ChildProcess() = default;
  void readerLoop(int out_fd, int err_fd);
  bool reap(bool block);

  pid_t pid_ = -1;
  std::thread reader_;
  mutable std::mutex mu_;
  std::vector<OutputLine> lines_;   // guarded by mu_
  bool output_closed_ = false;      // guarded by mu_
  std::optional<ExitStatus> exit_;  // guarded by mu_
};

/** Resident set size of a process (VmRSS in /proc/PID/status), in bytes. */
std::optional<uint64_t> readRssBytes(pid_t pid);
/** Peak resident set size (VmHWM), in bytes. */
std::optional<uint64_t> readPeakRssBytes(pid_t pid);
/** User + system CPU time of a process (/proc/PID/stat), for CPU-amplification figures. */
std::optional<std::chrono::microseconds> readCpuTime(pid_t pid);
/** Number of open file descriptors (/proc/PID/fd), for leak checks across reloads. */
std::optional<size_t> countOpenFds(pid_t pid);

}  // namespace bulwark::testing
