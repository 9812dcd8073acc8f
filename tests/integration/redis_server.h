#pragma once

// A real redis-server (Debian's) for the shared-state tests: started on a free loopback port,
// stopped (SIGSTOP), resumed, killed and restarted on the same port. Thread: the test thread.

#include <cstdint>
#include <memory>
#include <string>

#include "tests/support/process.h"

namespace bulwark::testing {

class RedisServer {
public:
  /** Starts redis-server without persistence; nullptr (and a test failure) when it cannot. */
  static std::unique_ptr<RedisServer> start();
  ~RedisServer();

  uint16_t port() const { return port_; }
  /** "127.0.0.1:PORT". */
  std::string address() const;
  /** Freezes the server: connections stay open, nothing is answered. */
  bool pause();
  bool resume();
  /** SIGKILL and reap. */
  void kill();
  /** Starts a fresh (empty) server on the same port after kill(). */
  bool restart();
  bool running() const { return child_ != nullptr; }
  /** Runs one command with redis-cli; its output (trimmed). */
  std::string cli(const std::string& command) const;

private:
  explicit RedisServer(uint16_t port) : port_(port) {}
  bool spawn(std::string* error);

  uint16_t port_;
  std::unique_ptr<ChildProcess> child_;
};

}  // namespace bulwark::testing
