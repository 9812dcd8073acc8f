#include "examples/common/replica_id.h"

#include <unistd.h>

#include <cstdio>

#include <CLI/CLI.hpp>

namespace bulwark::examples {

void addReplicaIdFlag(CLI::App& app, std::string& replica_id) {
  app.add_option("--replica-id", replica_id,
                 "replica name sent as x-replica-id (default HOSTNAME:PORT)");
}

std::string resolveReplicaId(const std::string& configured, int port) {
  if (!configured.empty()) {
    return configured;
  }
  char host[256] = {};
  if (gethostname(host, sizeof(host) - 1) == 0 && host[0] != '\0') {
    return std::string(host) + ":" + std::to_string(port);
  }
  return "replica-" + std::to_string(port);
}

void printListeningLine(int port) {
  std::printf("listening on 127.0.0.1:%d\n", port);
  std::fflush(stdout);
}

void printControlPortLine(int port) {
  std::printf("control port: %d\n", port);
  std::fflush(stdout);
}

}  // namespace bulwark::examples
