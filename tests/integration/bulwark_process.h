#pragma once

// Runs the real `bulwark` binary for integration tests: writes a YAML config to a temp file,
// starts `bulwark run` on port 0 listeners, reads back the bound ports from its stdout, and
// stops it with a signal. Thread: the test thread.

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>

#include "tests/support/process.h"
#include "tests/support/wait.h"

namespace bulwark::testing {

/** Path of the bulwark binary under test: $BULWARK_TEST_BINARY if set, else the build's. */
std::string bulwarkBinary();

/** Writes text to a fresh file in a per-test temp dir and returns its path. */
std::string writeTempFile(const std::string& name, const std::string& text);

class BulwarkProcess {
public:
  /**
   * Starts `bulwark run -c <yaml>` with extra args; waits until every listener in
   * `listener_names` and the admin port are bound. Returns nullptr (and sets error) on failure.
   */
  static std::unique_ptr<BulwarkProcess> start(const std::string& yaml,
                                               const std::vector<std::string>& listener_names,
                                               std::string* error,
                                               std::vector<std::string> extra_args = {});
  ~BulwarkProcess();

  uint16_t port(const std::string& listener) const { return ports_.at(listener); }
  uint16_t adminPort() const { return admin_port_; }
  const std::string& configPath() const { return config_path_; }
  ChildProcess& process() { return *child_; }
  /** Rewrites the config file in place (for reload tests). */
  void rewriteConfig(const std::string& yaml);
  /** Sends sig and waits for exit; returns the exit code (or -signal). */
  std::optional<int> stop(int sig, std::chrono::milliseconds timeout = std::chrono::seconds(10));

private:
  std::unique_ptr<ChildProcess> child_;
  std::map<std::string, uint16_t> ports_;
  uint16_t admin_port_ = 0;
  std::string config_path_;
};

/**
 * A minimal valid config with one listener "public" on 127.0.0.1:0 (protocol given), one
 * upstream "backend" (protocol given, the endpoints given) and one catch-all route "all".
 * `route_extra` and `listener_extra` are YAML lines appended to the route / listener maps
 * (already indented as map entries, e.g. "  timeouts: {request: 200ms}").
 */
std::string simpleConfig(const std::string& listener_protocol, const std::string& upstream_protocol,
                         const std::vector<std::string>& endpoints,
                         const std::string& route_extra = "",
                         const std::string& listener_extra = "", const std::string& top_extra = "");

}  // namespace bulwark::testing
