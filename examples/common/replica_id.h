#pragma once

#include <string>

namespace CLI {
class App;
}

namespace bulwark::examples {

/** Every response of an example backend names its replica in this header (gRPC: metadata key). */
inline constexpr char kReplicaIdHeader[] = "x-replica-id";

/** Adds --replica-id (empty = derive from hostname and port, see resolveReplicaId()). */
void addReplicaIdFlag(CLI::App& app, std::string& replica_id);

/**
 * @return `configured` when set; otherwise "HOSTNAME:PORT", or "replica-PORT" when the host name
 *         is unavailable. Call after binding so that --port 0 yields the real port.
 */
std::string resolveReplicaId(const std::string& configured, int port);

/**
 * Prints "listening on 127.0.0.1:PORT" as the only line a server writes for this purpose on
 * stdout, and flushes, so that scripts and tests (testing/process.h) can read the port.
 */
void printListeningLine(int port);

/** Prints "control port: N" on stdout and flushes. */
void printControlPortLine(int port);

}  // namespace bulwark::examples
