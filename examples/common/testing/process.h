#pragma once

// Spawns an example server binary for integration tests, reads the port it prints and stops it.

#include <sys/types.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "common/result.h"

namespace bulwark::examples::testing {

/**
 * A child process whose stdout is captured line by line. Its stderr is copied to the test's
 * stderr as it comes (server logs land in the test log) by a thread that also keeps it: the
 * destructor fails the running test when it holds a sanitizer report (a sanitized server that
 * is killed at the end of a test would otherwise pass unnoticed). The child gets SIGKILL when
 * the test process dies, and the destructor kills and reaps it if it is still running.
 * Thread: owning test thread (the stderr copy runs on its own thread).
 */
class ChildProcess {
public:
  /** Starts `path` with `args` (argv[0] is added). */
  static Result<std::unique_ptr<ChildProcess>> spawn(const std::string& path,
                                                     const std::vector<std::string>& args);
  ~ChildProcess();
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  pid_t pid() const { return pid_; }

  /**
   * Reads stdout until a line starting with `prefix` appears (lines seen earlier count too).
   * @return the rest of that line, or an error on timeout or when the child closed stdout.
   */
  Result<std::string> waitForLine(const std::string& prefix, std::chrono::milliseconds timeout);

  /** Port from the "listening on 127.0.0.1:PORT" line. */
  Result<int> waitForListeningPort(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  /** Port from the "control port: N" line. */
  Result<int> waitForControlPort(std::chrono::milliseconds timeout = std::chrono::seconds(5));

  /** Sends `signal` to the child (no-op once it has been reaped). */
  void sendSignal(int signal);

  /**
   * Waits for the child to exit.
   * @return its exit code, or -SIGNAL when a signal killed it; nullopt on timeout.
   */
  std::optional<int> waitExit(std::chrono::milliseconds timeout);

  /** True while the child has not been reaped and has not exited. */
  bool running();

  /** Everything read from the child's stdout so far. */
  const std::string& output() const { return output_; }

private:
  ChildProcess(pid_t pid, int stdout_fd) : pid_(pid), stdout_fd_(stdout_fd) {}
  bool readMore(std::chrono::steady_clock::time_point deadline);

  pid_t pid_;
  int stdout_fd_;
  std::string output_;
  std::optional<int> exit_status_;
  /** Copies the child's stderr to ours into stderr_ until the child closes it. */
  std::thread stderr_copier_;
  std::string stderr_;  // written by stderr_copier_ only; read after it is joined
};

/** A spawned example server and the ports it printed. */
struct SpawnedServer {
  std::unique_ptr<ChildProcess> process;
  int port = 0;
  /** 0 when the server printed no "control port: N" line. */
  int control_port = 0;
};

/**
 * Spawns an example server (pass "--port", "0" yourself) and waits for its listening line; the
 * control port is read too when the server printed one before it (the examples do).
 */
Result<SpawnedServer> spawnServer(const std::string& path, const std::vector<std::string>& args,
                                  std::chrono::milliseconds timeout = std::chrono::seconds(5));

}  // namespace bulwark::examples::testing
