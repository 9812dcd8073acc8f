#pragma once

// The example gRPC ranking backend (examples/ranking) for integration tests: ranking-server
// replicas and runs of the grpc++ ranking-client, whose JSON report says where the calls went.
// Thread: the test thread.

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "tests/support/process.h"
#include "tests/support/wait.h"

namespace bulwark::testing {

/** One running ranking-server. */
struct RankingReplica {
  std::unique_ptr<ChildProcess> process;
  std::string id;
  std::string host;
  /** 0 when it did not start (a test failure was recorded). */
  uint16_t port = 0;
  uint16_t control_port = 0;

  std::string address() const { return host + ":" + std::to_string(port); }
};

/**
 * Starts ranking-server `id` on host:port (0 = a free port) with a control port and the `extra`
 * arguments; waits for both ports.
 */
RankingReplica startRankingReplica(const std::string& id,
                                   const std::vector<std::string>& extra = {},
                                   const std::string& host = "127.0.0.1", uint16_t port = 0);

/** Starts ranking-client with `args` plus --json (in the background). */
std::unique_ptr<ChildProcess> spawnRankingClient(std::vector<std::string> args);

/** Waits for the client's JSON report and its exit; {} (with a failure) when there is none. */
nlohmann::json readRankingReport(ChildProcess& client, Deadline deadline);

/** Runs ranking-client with `args` to completion and returns its JSON report. */
nlohmann::json runRankingClient(std::vector<std::string> args,
                                Deadline deadline = deadlineIn(std::chrono::seconds(60)));

}  // namespace bulwark::testing
