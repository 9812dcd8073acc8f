#pragma once

// Builds the YAML config of a test's bulwark, so every integration test writes its config the
// same way and a schema change is made in one place. Thread: value type.

#include <cstdint>
#include <string>
#include <vector>

namespace bulwark::testing {

/**
 * A bulwark config built piece by piece:
 *
 *   std::string yaml = ConfigBuilder()
 *                          .listener("h2c")
 *                          .upstream("http2", hosts.addresses(), "  loadBalancer: {simple:
 * RANDOM}\n") .route("  timeouts: {request: 2s}\n") .yaml();
 *
 * Defaults: admin on 127.0.0.1:0, 2 workers, drain {minDuration: 0s, timeout: 10s}. "Extra"
 * arguments are YAML lines appended to the map of the listener / upstream / route, already
 * indented as its entries (two spaces, e.g. "  retries: {attempts: 2}\n"). Listeners, upstreams
 * and routes appear in the order they were added (route order is match order).
 */
class ConfigBuilder {
public:
  /** One static endpoint with a load-balancing weight. */
  struct WeightedEndpoint {
    std::string address;
    int weight = 1;
  };

  ConfigBuilder& concurrency(int workers);
  ConfigBuilder& drain(const std::string& min_duration, const std::string& timeout);
  /** Extra entries of the runtime flow map, e.g. "maxConnectionsPerWorker: 4". */
  ConfigBuilder& runtimeExtra(const std::string& flow_entries);
  ConfigBuilder& adminAddress(const std::string& address);
  /** Extra entries of the admin flow map, e.g. "readiness: {requireUpstreams: [backend]}". */
  ConfigBuilder& adminExtra(const std::string& flow_entries);
  /** Top-level YAML (observability, defaults, ...), written before the listeners. */
  ConfigBuilder& topLevel(const std::string& yaml);

  ConfigBuilder& listener(const std::string& protocol, const std::string& extra = "",
                          const std::string& name = "public",
                          const std::string& address = "127.0.0.1:0");
  ConfigBuilder& upstream(const std::string& protocol, const std::vector<std::string>& endpoints,
                          const std::string& extra = "", const std::string& name = "backend");
  ConfigBuilder& weightedUpstream(const std::string& protocol,
                                  const std::vector<WeightedEndpoint>& endpoints,
                                  const std::string& extra = "",
                                  const std::string& name = "backend");
  /** An upstream discovered by DNS: `endpoints: {dns: {name, port, refreshInterval}}`. */
  ConfigBuilder& dnsUpstream(const std::string& protocol, const std::string& dns_name,
                             uint16_t port, const std::string& refresh_interval,
                             const std::string& extra = "", const std::string& name = "backend");
  ConfigBuilder& route(const std::string& extra = "", const std::string& prefix = "/",
                       const std::string& name = "all", const std::string& upstream = "backend");
  /** A route written out in full ("- name: ...\n  match: ...\n"), for matches route() lacks. */
  ConfigBuilder& rawRoute(const std::string& yaml);

  std::string yaml() const;

private:
  int concurrency_ = 2;
  std::string drain_min_ = "0s";
  std::string drain_timeout_ = "10s";
  std::string runtime_extra_;
  std::string admin_address_ = "127.0.0.1:0";
  std::string admin_extra_;
  std::string top_level_;
  std::string listeners_;
  std::string upstreams_;
  std::string routes_;
};

/**
 * The config most tests need: listener "public" (protocol given), upstream "backend" (protocol
 * and endpoints given) and one catch-all route "all". `route_extra` / `listener_extra` are
 * entries of the route / listener map; `top_extra` is top-level YAML.
 */
std::string simpleConfig(const std::string& listener_protocol, const std::string& upstream_protocol,
                         const std::vector<std::string>& endpoints,
                         const std::string& route_extra = "",
                         const std::string& listener_extra = "", const std::string& top_extra = "");

}  // namespace bulwark::testing
