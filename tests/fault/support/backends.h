#pragma once

// Real backends for the fault runs: examples/recommendation `recommendation-server` replicas
// (spawned, faults set through their control port), bulwark configs derived from the shipped
// examples/recommendation/bulwark.yaml, and what the runs read back from bulwark (/upstreams,
// peak RSS).

#include <sys/types.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <yaml-cpp/yaml.h>

#include "tests/support/http1_client.h"
#include "tests/support/process.h"

namespace bulwark::testing::fault {

/** One running recommendation-server. Thread: the test thread. */
struct Replica {
  std::string id;
  std::unique_ptr<ChildProcess> process;
  uint16_t port = 0;
  uint16_t control_port = 0;

  std::string address() const { return "127.0.0.1:" + std::to_string(port); }
  /** POST /_fault with `json` (the whole spec; "{}" clears). False on failure. */
  bool setFault(const std::string& json) const;
};

/**
 * Spawns recommendation-server --port 0 --replica-id id --control-port 0 plus `extra` flags
 * (small catalogs by default so scoring costs little next to the proxy). nullptr and *error on
 * failure.
 */
std::unique_ptr<Replica> spawnRecommendation(const std::string& id,
                                             const std::vector<std::string>& extra,
                                             std::string* error);

/** The listener name of examples/recommendation/bulwark.yaml. */
inline constexpr char kRecommendationListener[] = "recommendation-http";

/**
 * examples/recommendation/bulwark.yaml with admin and listener on port 0, the upstream's static
 * endpoints replaced by `endpoints`, then `edit` applied to the parsed document (policy changes
 * a run states). Returns the YAML text.
 */
std::string recommendationConfig(const std::vector<std::string>& endpoints,
                                 const std::function<void(YAML::Node&)>& edit = {});

/** POST /v1/recommend for `tenant` (a read; the example's main API). */
Http1Request recommendRequest(const std::string& tenant, uint64_t user);

/** The host entry of `address` in bulwark's /upstreams for upstream `upstream`, as JSON text
 *  fields: health ("healthy", "ejected", "circuit_open", ...); nullopt when unreachable. */
std::optional<std::string> hostHealth(uint16_t admin_port, const std::string& upstream,
                                      const std::string& address);
/** The circuit-breaker state of one host (perHost) or of the upstream (address ""). */
std::optional<std::string> breakerState(uint16_t admin_port, const std::string& upstream,
                                        const std::string& address);

/** Peak resident set (VmHWM) of `pid` in KiB, from /proc/<pid>/status; 0 when unreadable. */
uint64_t peakRssKiB(pid_t pid);

}  // namespace bulwark::testing::fault
