#include "tests/integration/ranking_backend.h"

#include <gtest/gtest.h>

namespace bulwark::testing {

using namespace std::chrono_literals;

RankingReplica startRankingReplica(const std::string& id, const std::vector<std::string>& extra,
                                   const std::string& host, uint16_t port) {
  ProcessOptions options;
  options.path = RANKING_SERVER_PATH;
  options.args = {"--host",       host, "--port",         std::to_string(port),
                  "--replica-id", id,   "--control-port", "0"};
  options.args.insert(options.args.end(), extra.begin(), extra.end());
  std::string error;
  RankingReplica r;
  r.id = id;
  r.host = host;
  r.process = ChildProcess::spawn(options, &error);
  EXPECT_TRUE(r.process) << error;
  if (!r.process) {
    return r;
  }
  auto control = r.process->waitForLine(std::string(R"(control port: (\d+))"), deadlineIn(10s));
  auto listening =
      r.process->waitForLine(std::string(R"(listening on ([0-9.]+):(\d+))"), deadlineIn(10s));
  EXPECT_TRUE(control && listening) << r.process->output();
  if (control && listening) {
    r.control_port = static_cast<uint16_t>(std::stoi((*control)[1]));
    r.port = static_cast<uint16_t>(std::stoi((*listening)[2]));
  }
  return r;
}

std::unique_ptr<ChildProcess> spawnRankingClient(std::vector<std::string> args) {
  ProcessOptions options;
  options.path = RANKING_CLIENT_PATH;
  options.args = std::move(args);
  options.args.push_back("--json");
  std::string error;
  auto client = ChildProcess::spawn(options, &error);
  EXPECT_TRUE(client) << error;
  return client;
}

nlohmann::json readRankingReport(ChildProcess& client, Deadline deadline) {
  // Wait for the output line itself: the process can be reaped before its output is read.
  auto line = client.waitForLine(std::string(R"(^(\{.*\})$)"), deadline);
  auto status = client.waitForExit(deadlineIn(10s));
  EXPECT_TRUE(status && status->exited) << client.output();
  if (!line) {
    ADD_FAILURE() << "no JSON from ranking-client: " << client.output();
    return {};
  }
  return nlohmann::json::parse((*line)[1], nullptr, /*allow_exceptions=*/false);
}

nlohmann::json runRankingClient(std::vector<std::string> args, Deadline deadline) {
  auto client = spawnRankingClient(std::move(args));
  if (!client) {
    return {};
  }
  return readRankingReport(*client, deadline);
}

}  // namespace bulwark::testing
