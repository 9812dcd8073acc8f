#pragma once

// Runs the real `bulwark` binary for integration tests: writes a YAML config to a temp file,
// starts `bulwark run` on port 0 listeners, reads back the bound ports from its stdout, and
// stops it with a signal. Thread: the test thread.

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "tests/integration/config_builder.h"
#include "tests/support/process.h"
#include "tests/support/wait.h"

namespace bulwark::testing {

/** Path of the bulwark binary under test: $BULWARK_TEST_BINARY if set, else the build's. */
std::string bulwarkBinary();

/** Writes text to a fresh file in a per-test temp dir and returns its path. */
std::string writeTempFile(const std::string& name, const std::string& text);

/** How to start bulwark. Thread: value type. */
struct BulwarkStartOptions {
  /** Listeners whose "listening on" line to wait for (their ports become port(name)). */
  std::vector<std::string> listeners{"public"};
  /** Arguments after `run -c FILE [--log-level L]`. */
  std::vector<std::string> extra_args;
  /** Environment variables set for the child (the test's own environment is inherited). */
  std::vector<std::pair<std::string, std::string>> env;
  /** `--log-level` on the command line; empty = none (BULWARK_LOG_LEVEL or the default). */
  std::string log_level = "warn";
  /** The config file as `-c FILE` (true) or only through BULWARK_CONFIG (false). */
  bool config_flag = true;
};

class BulwarkProcess {
public:
  /**
   * Starts `bulwark run -c <yaml>`; waits until every listener in `options.listeners` and the
   * admin port are bound. Returns nullptr (and sets error) on failure.
   */
  static std::unique_ptr<BulwarkProcess> start(const std::string& yaml,
                                               const BulwarkStartOptions& options,
                                               std::string* error);
  /** Same, with the listeners and extra arguments given directly. */
  static std::unique_ptr<BulwarkProcess> start(const std::string& yaml,
                                               const std::vector<std::string>& listener_names,
                                               std::string* error,
                                               std::vector<std::string> extra_args = {});
  ~BulwarkProcess();

  uint16_t port(const std::string& listener) const { return ports_.at(listener); }
  /** The host a listener announced (e.g. "127.0.0.1"). */
  const std::string& host(const std::string& listener) const { return hosts_.at(listener); }
  uint16_t adminPort() const { return admin_port_; }
  /** The host the admin listener announced. */
  const std::string& adminHost() const { return admin_host_; }
  const std::string& configPath() const { return config_path_; }
  ChildProcess& process() { return *child_; }
  /** Rewrites the config file in place (for reload tests). */
  void rewriteConfig(const std::string& yaml);
  /** Sends sig and waits for exit; returns the exit code (or -signal). */
  std::optional<int> stop(int sig, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  /** Waits for an exit already under way; the exit code (or -signal), nullopt at the timeout. */
  std::optional<int> waitForExit(std::chrono::milliseconds timeout = std::chrono::seconds(10));

private:
  std::unique_ptr<ChildProcess> child_;
  std::map<std::string, uint16_t> ports_;
  std::map<std::string, std::string> hosts_;
  uint16_t admin_port_ = 0;
  std::string admin_host_;
  std::string config_path_;
};

/**
 * Starts bulwark with `yaml` and records a test failure naming what went wrong when it does not
 * come up; callers `ASSERT_TRUE(proxy)`.
 */
std::unique_ptr<BulwarkProcess> startBulwark(const std::string& yaml,
                                             const BulwarkStartOptions& options = {});

/** Runs the bulwark binary with `args` to its exit (CLI tests). Thread: the test thread. */
struct CliRun {
  /** Exit code; nullopt when it did not start, was killed, or outlived the deadline. */
  std::optional<int> code;
  std::string stdout_text;
  std::string stderr_text;
};
CliRun runBulwarkCli(const std::vector<std::string>& args,
                     const std::vector<std::pair<std::string, std::string>>& env = {},
                     Deadline deadline = defaultDeadline());

/**
 * A loopback port that refuses connections: bound but never listening, and held while this
 * lives, so no other process (tests run in parallel) can start listening on it meanwhile.
 * Thread: the test thread.
 */
class RefusingPort {
public:
  /** Port 0: the kernel picks; otherwise that port (e.g. one a FakeUpstream just let go of). */
  explicit RefusingPort(uint16_t port = 0);
  ~RefusingPort();
  RefusingPort(const RefusingPort&) = delete;
  RefusingPort& operator=(const RefusingPort&) = delete;
  /** "127.0.0.1:PORT". */
  std::string address() const;

private:
  int fd_ = -1;
  uint16_t port_ = 0;
};

}  // namespace bulwark::testing
